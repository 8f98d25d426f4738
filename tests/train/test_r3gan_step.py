"""R3GAN's training step (Huang et al. 2024) through Trainer.fit against a plain-PyTorch re-implementation: the
relativistic pairing loss, R1 and R2 on D, Adam with β1 = 0, G_ema; tiny r3gan nets on digits upsampled to 28×28.

Float32 as in test_zoo_step.py: the Trainer hands D float32 reals, so the reference runs the same dtype with its own
op order (separate real and fake passes where the step concatenates them, ‖·‖² as a sum of squares where the step
squares a norm, the EMA as a multiply-add where the step lerps) and torch's plain Adam.
"""
import copy

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.data import Dataset, load_digits
from gankit.training.loop import Trainer, epoch_permutation

B, STEPS = 16, 3
RTOL, ATOL = 1e-5, 1e-6  # float32 rounding of two op orders over 3 steps (observed: up to 0.12 of this)
TINY = {"model.z_dim": 8, "model.stage_channels": (16,), "model.group_channels": 8,  # D 16@28, 16@14, 16@7
        "train.batch_size": B, "train.steps": STEPS, "train.epochs": None, "train.progress": False,
        "train.sample_every": 0, "train.checkpoint_every": 0, "train.grid_size": 4, "train.threads": 1,
        "train.device": "cpu", "train.seed": 3,
        # γ 1 and 0.5, not the preset's 0.05: at 0.05 R1 and R2 move D's gradient by ~0.1 %, too little for three
        # float32 steps to tell a missing penalty from rounding; unequal γs tell R1 from R2 (equal at init, where
        # every residual block is the identity and D is linear in x)
        "loss.r1_gamma": 1.0, "loss.r2_gamma": 0.5,
        # β 0.9, not the preset's 0.999: at 0.999 G_ema moves a few 1e-7 in three steps, below the tolerance (and not
        # 0.5, where β and 1 - β swapped would give the same G_ema)
        "optim.ema_beta": 0.9,
        "optim.eps": 1e-3}
# optim.eps 1e-3: some of D's gradients are 0 up to float32 rounding (~1e-9, different in the step's single
# real+fake pass and the reference's two passes): its head bias's always (the relativistic loss and both penalties are
# blind to a constant shift of the logits) and its first conv's bias's at step 1 (D is linear at init). Adam with eps
# 1e-8 turns that noise into steps of ~lr in random directions (measured: from_img.bias off by up to 2e-4, and D's
# blocks follow). A large eps keeps Adam's update near g/|g| for gradients of 1e-2 and up and proportional to smaller
# ones (the blocks' inner convs, ~1e-4 once their zero-initialised last conv has moved: they still move 20-60 times
# the tolerance), so the test checks the gradients' size too.


def digits_28() -> Dataset:
    """scikit-learn's 1,797 digits, bilinearly upsampled 8×8 -> 28×28 (uint8, (N, 1, 28, 28)): r3gan at its presets'
    resolution (three stages, 28, 14, 7) on real images."""
    d = load_digits()
    x = F.interpolate(d.images.float(), size=28, mode="bilinear", align_corners=False)
    return Dataset("digits-28", x.round().clamp(0, 255).to(torch.uint8), d.labels, "test", d.num_classes)


def sq_grad_norms(D, x):
    """‖∇ₓD(x)‖₂² per sample, differentiable in D's weights, not in x."""
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return g.reshape(len(x), -1).pow(2).sum(1)


def apply(opt, params, loss):
    for p, g in zip(params, torch.autograd.grad(loss, params)):
        p.grad = g
    opt.step()


def reference_fit(G, D, cfg, images, g_real="updated"):
    """STEPS R3GAN steps written out by hand; trains G and D in place, returns (G_ema, [(d_loss, g_loss)] per step).
    Randomness as the Trainer draws it: real batches in the order of epoch 0's permutation, z from one generator
    seeded seed + 1. ``g_real``: where the G loss's real logits come from, "updated" (D after its update, as R3GAN
    does) or "stale" (the D step's, before the update: a wrong reference the test must tell apart)."""
    L, o, t = cfg.loss, cfg.optim, cfg.train
    G_ema = copy.deepcopy(G)
    opt_G = torch.optim.Adam(G.parameters(), lr=o.g_lr, betas=(o.beta1, o.beta2), eps=o.eps)
    opt_D = torch.optim.Adam(D.parameters(), lr=o.d_lr, betas=(o.beta1, o.beta2), eps=o.eps)
    perm = epoch_permutation(len(images), t.seed, 0)
    noise = torch.Generator().manual_seed(t.seed + 1)
    losses = []
    for step in range(STEPS):
        real = images[perm[step * B:(step + 1) * B]].float() * (2.0 / 255.0) - 1.0  # (B, 1, 28, 28) in [-1, 1]
        z = torch.randn(B, cfg.model.z_dim, generator=noise)
        fake = G(z)
        # D: relativistic pairing, softplus(D(x̃_i) - D(x_i)), plus γ/2·R1 on the reals and γ/2·R2 on the fakes
        real_logits, fake_logits = D(real), D(fake.detach())
        d_loss = (F.softplus(fake_logits - real_logits).mean()
                  + L.r1_gamma / 2 * sq_grad_norms(D, real).mean()
                  + L.r2_gamma / 2 * sq_grad_norms(D, fake).mean())
        apply(opt_D, list(D.parameters()), d_loss)
        # G: softplus(D(x_i) - D(x̃_i)) through the updated D, on the same reals and fakes; D frozen
        D.requires_grad_(False)
        r = D(real) if g_real == "updated" else real_logits.detach()
        g_loss = F.softplus(r - D(fake)).mean()
        apply(opt_G, list(G.parameters()), g_loss)
        D.requires_grad_(True)
        with torch.no_grad():  # ema.py: θ_ema ← β·θ_ema + (1 - β)·θ, buffers copied
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.mul_(o.ema_beta).add_(p, alpha=1.0 - o.ema_beta)
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)
        losses.append((d_loss.item(), g_loss.item()))
    return G_ema, losses


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(cfg, data, initial G, initial D, the Trainer after STEPS steps, its (d_loss, g_loss) per step)."""
    cfg = gankit.preset("r3gan-mnist").with_overrides(TINY)
    data = digits_28()
    tr = Trainer(cfg, tmp_path_factory.mktemp("r3gan") / "r", dataset=data, log=lambda *_: None)
    assert tr.step_kind.startswith("autograd")
    assert tr.G_ema is not None and not list(tr.G.buffers())  # no buffers: the EMA is the parameters' alone
    G0, D0 = copy.deepcopy(tr.G), copy.deepcopy(tr.D)
    result = tr.fit()
    assert result.step == STEPS
    return cfg, data, G0, D0, tr, list(zip(result.history["d_loss"], result.history["g_loss"]))


def test_the_preset_is_the_recipe_the_reference_writes_out(trained):
    cfg = trained[0]
    L, o = cfg.loss, cfg.optim
    assert (cfg.model.arch, L.name, L.gp_weight, L.augment, L.instance_noise) == ("r3gan", "relativistic", 0.0, "", 0.0)
    assert (o.beta1, o.beta2, cfg.train.d_steps, cfg.train.updates) == (0.0, 0.99, 1, "alternating")


def test_r3gan_steps_match_the_hand_written_steps(trained):
    cfg, data, G0, D0, tr, losses = trained
    G, D = copy.deepcopy(G0), copy.deepcopy(D0)
    G_ema, ref_losses = reference_fit(G, D, cfg, data.images)
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(ref_losses), rtol=RTOL, atol=ATOL)
    for what, mine, ref in (("G", tr.G, G), ("D", tr.D, D), ("G_ema", tr.G_ema, G_ema)):
        for (name, a), b in zip(mine.state_dict().items(), ref.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL, msg=f"{what}.{name}")
    # the comparison sees the EMA: G_ema differs from G's start and from its end by far more than the tolerance
    # (observed: 1.2e-4 and 5e-4)
    for other in (G0, G):
        gap = max((a - b).abs().max().item() for a, b in zip(G_ema.parameters(), other.parameters()))
        assert gap > 20 * ATOL


def test_the_g_step_reads_real_logits_from_the_updated_d(trained):
    """The G loss's D(x) comes from D after this step's update: a reference that reuses the D step's real logits
    (D before the update) gives G losses ~5e-3 away from the step's at every step, hundreds of times the tolerance.
    (G's weights hardly tell the two apart: Adam with β1 = 0 divides out most of the gradient's change in scale.)"""
    cfg, data, G0, D0, _, losses = trained
    G, D = copy.deepcopy(G0), copy.deepcopy(D0)
    _, stale = reference_fit(G, D, cfg, data.images, g_real="stale")
    for step, ((_, g_loss), (_, g_stale)) in enumerate(zip(losses, stale)):
        assert abs(g_loss - g_stale) > 100 * (ATOL + RTOL * abs(g_loss)), step
