"""train.updates: alternating (G's gradient through the updated D) vs simultaneous (ALI/PacGAN: both gradients from
one D, then both updates), against a step written out by hand with torch.autograd.grad."""
import copy

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.training.loop import Trainer

TINY = {"model.g_hidden": (16, 16), "model.d_hidden": (12, 12), "model.maxout_pieces": 3, "data.size": 800,
        "train.batch_size": 40, "train.steps": 3, "train.progress": False, "train.sample_every": 0,
        "train.checkpoint_every": 0, "train.device": "cpu"}


def quiet(*_):
    pass


def reference_step(G, D, opt_G, opt_D, real, z, simultaneous):
    """One step by hand: D's BCE loss (real target 1) and G's non-saturating loss."""
    fake = G(z)
    logits = D(torch.cat([real, fake.detach()]))
    n = logits.shape[0] // 2
    d_loss = (F.binary_cross_entropy_with_logits(logits[:n], torch.ones(n))
              + F.binary_cross_entropy_with_logits(logits[n:], torch.zeros(n)))
    grads_D = torch.autograd.grad(d_loss, list(D.parameters()))
    if not simultaneous:
        for p, g in zip(D.parameters(), grads_D):
            p.grad = g
        opt_D.step()
    g_loss = F.softplus(-D(fake)).mean()
    grads_G = torch.autograd.grad(g_loss, list(G.parameters()))
    for p, g in zip(G.parameters(), grads_G):
        p.grad = g
    opt_G.step()
    if simultaneous:
        for p, g in zip(D.parameters(), grads_D):
            p.grad = g
        opt_D.step()


@pytest.mark.parametrize("preset", ["gan-ring8", "pacgan-ring8"])
@pytest.mark.parametrize("updates", ["alternating", "simultaneous"])
def test_step_matches_the_hand_written_update(tmp_path, preset, updates):
    cfg = gankit.preset(preset).with_overrides({**TINY, "train.updates": updates})
    tr = Trainer(cfg, tmp_path / "r", log=quiet)
    G, D = copy.deepcopy(tr.G), copy.deepcopy(tr.D)
    o = cfg.optim
    opt_G = torch.optim.Adam(G.parameters(), lr=o.g_lr, betas=(o.beta1, o.beta2), eps=o.eps)
    opt_D = torch.optim.Adam(D.parameters(), lr=o.d_lr, betas=(o.beta1, o.beta2), eps=o.eps)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        real = tr.data.images[torch.randperm(len(tr.data), generator=gen)[:40]]
        z = torch.randn(40, 2, generator=gen)
        tr.train_step([real], None, [(z, None)])
        reference_step(G, D, opt_G, opt_D, real, z, updates == "simultaneous")
    for mine, ref in ((tr.G, G), (tr.D, D)):
        for (name, a), b in zip(mine.state_dict().items(), ref.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_the_two_orders_differ(tmp_path):
    out = {}
    for updates in ("alternating", "simultaneous"):
        cfg = gankit.preset("gan-ring8").with_overrides({**TINY, "train.updates": updates, "train.steps": 1})
        out[updates] = gankit.train(cfg, tmp_path / updates, log=quiet)
    a, b = (torch.cat([p.flatten() for p in out[u].G.parameters()]) for u in ("alternating", "simultaneous"))
    assert not torch.allclose(a, b)
    da, db = (torch.cat([p.flatten() for p in out[u].D.parameters()]) for u in ("alternating", "simultaneous"))
    torch.testing.assert_close(da, db)  # the first D update comes before any G update in both orders


def test_simultaneous_with_several_d_steps_is_refused_before_the_folder(tmp_path):
    cfg = gankit.preset("gan-ring8").with_overrides({**TINY, "train.d_steps": 2})
    with pytest.raises(gankit.GankitError, match="train.updates simultaneous needs train.d_steps 1"):
        Trainer(cfg, tmp_path / "r", log=quiet)
    assert not (tmp_path / "r").exists()
    with pytest.raises(gankit.GankitError, match="alternating or simultaneous"):
        gankit.preset("seed").with_overrides({"train.updates": "both"})
