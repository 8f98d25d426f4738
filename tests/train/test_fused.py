"""The fused MLP step (train/fused.py): hand-derived gradients against autograd, and when it applies."""
import json

import pytest
import torch

import gankit
from gankit.data import to_unit_range
from gankit.losses import get_loss
from gankit.training import fused
from gankit.training.fused import FusedMLPStep
from gankit.training.loop import Trainer


def cfg(**kw):
    over = {"data.name": "digits", "train.steps": 30, "train.progress": False, "train.log_every": 10,
            "train.sample_every": 0, "train.checkpoint_every": 0}
    over.update(kw)
    return gankit.preset("seed").with_overrides(over)


def quiet(*_):
    pass


def autograd_grads(tr, real, z):
    """D's gradients of the D loss, then G's gradients of the G loss (D fixed), by autograd."""
    c = tr.cfg
    fake = tr.G(z)
    logits = tr.D(torch.cat([real.view(-1, *tr.img_shape), fake.detach()]))
    B = real.shape[0]
    d_loss = get_loss(c.loss.name)[0](logits[:B], logits[B:], real_target=c.loss.real_target, fake_target=c.loss.fake_target)
    dg = torch.autograd.grad(d_loss, list(tr.D.parameters()))
    g_loss = get_loss(c.loss.name)[1](tr.D(fake), None)  # the fused path has BCE losses only
    gg = torch.autograd.grad(g_loss, list(tr.G.parameters()))
    return d_loss.detach(), g_loss.detach(), dg, gg


@pytest.mark.parametrize("over", [
    {},
    {"model.g_hidden": (32, 16), "model.d_hidden": (24, 12), "model.leaky_slope": 0.1},
    {"loss.name": "minimax", "loss.real_target": 1.0, "loss.fake_target": 0.1},
])
def test_fused_gradients_equal_autograd(tmp_path, over):
    tr = Trainer(cfg(**over), tmp_path / "r", log=quiet)
    step = tr.train_step
    assert isinstance(step, FusedMLPStep)
    gen = torch.Generator().manual_seed(3)
    real = to_unit_range(tr.data.images[:100]).flatten(1)
    z = torch.randn(100, tr.cfg.model.z_dim, generator=gen)
    d_ref, g_ref, dg_ref, gg_ref = autograd_grads(tr, real, z)
    step.ensure_grads()
    with torch.no_grad():
        fake, g_ins, g_pres = step.g_forward(z)
        d_loss, _ = step.d_grads(real, fake)
        g_loss = step.g_grads(fake, g_ins, g_pres)
    assert d_loss.item() == pytest.approx(d_ref.item(), rel=1e-6)
    assert g_loss.item() == pytest.approx(g_ref.item(), rel=1e-6)
    for p, ref in zip(tr.D.parameters(), dg_ref):
        assert torch.allclose(p.grad, ref, rtol=1e-4, atol=1e-7), (p.shape, (p.grad - ref).abs().max())
    for p, ref in zip(tr.G.parameters(), gg_ref):
        assert torch.allclose(p.grad, ref, rtol=1e-4, atol=1e-7), (p.shape, (p.grad - ref).abs().max())


def test_fast_adam_step_is_torchs_fused_adam_bit_for_bit():
    torch.manual_seed(0)
    ps_a = [torch.nn.Parameter(torch.randn(7, 5)), torch.nn.Parameter(torch.randn(5))]
    ps_b = [torch.nn.Parameter(p.detach().clone()) for p in ps_a]
    a = torch.optim.Adam(ps_a, lr=1e-3, betas=(0.5, 0.999), fused=True)
    b = torch.optim.Adam(ps_b, lr=1e-3, betas=(0.5, 0.999), fused=True)
    for i in range(4):
        grads = [torch.randn_like(p) for p in ps_a]
        for p, q, g in zip(ps_a, ps_b, grads):
            p.grad, q.grad = g.clone(), g.clone()
        a.step()
        fused.adam_step(b)  # the first call initialises the state through b.step()
    for p, q in zip(ps_a, ps_b):
        assert torch.equal(p, q)
        for k in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(a.state[p][k], b.state[q][k])


@pytest.mark.parametrize("over", [{}, {"train.d_steps": 2}])
def test_fused_and_autograd_runs_follow_the_same_trajectory(tmp_path, over):
    a = gankit.train(cfg(**over, **{"train.fused_step": False}), tmp_path / "a", log=quiet)
    b = gankit.train(cfg(**over), tmp_path / "b", log=quiet)
    assert b.history["d_loss"][0] == pytest.approx(a.history["d_loss"][0], rel=1e-6)
    assert b.history["g_loss"] == pytest.approx(a.history["g_loss"], rel=1e-2)
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["step"] == "fused-mlp"
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["step"] == "autograd (train.fused_step is off)"


@pytest.mark.parametrize("over,why", [
    ({"model.d_dropout": 0.3}, "norm, dropout"),
    ({"model.g_norm": "batch"}, "norm, dropout"),
    ({"model.d_mbstd": 4}, "minibatch std"),
    ({"loss.name": "hinge", "loss.real_target": 1.0}, "loss hinge"),
    ({"train.precision": "bf16"}, "precision bf16"),
    ({"optim.ema_beta": 0.9}, "an EMA of G"),
    ({"model.arch": "dcgan"}, "not an MLP"),
])
def test_steps_the_fused_path_does_not_cover_use_autograd(tmp_path, over, why):
    tr = Trainer(cfg(**over), tmp_path / "r", log=quiet)
    assert not isinstance(tr.train_step, FusedMLPStep) and why in tr.step_kind
