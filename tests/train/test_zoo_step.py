"""The autograd step (steps.AutogradStep) against a plain-PyTorch re-implementation: WGAN-GP with n_critic, R1, two
time-scale learning rates and ACGAN's auxiliary terms, over a few real steps of Trainer.fit.

Float32: to_unit_range hands D float32 reals and the models are built in float32, so a float64 run is not
possible through the Trainer; the reference runs the same dtype with its own op order and torch's plain Adam.
"""
import copy

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.training.loop import Trainer

B, STEPS = 16, 3
TINY = {"data.name": "digits", "model.z_dim": 8, "model.g_hidden": (16,), "model.d_hidden": (12,),
        "train.batch_size": B, "train.steps": STEPS, "train.progress": False, "train.sample_every": 0,
        "train.checkpoint_every": 0, "train.grid_size": 4, "train.threads": 1, "train.device": "cpu",
        "train.seed": 3, "optim.eps": 1e-3}
# optim.eps 1e-3: with the linear critic losses some hidden units of D see every sample on one side of the leaky
# ReLU, so their bias gradient is 0 up to float32 rounding (~1e-8, different in the step's single real+fake pass and
# the reference's two passes); Adam with eps 1e-8 turns that noise into steps of ~lr. A large eps keeps Adam's
# update near g/|g| for real gradients (~1e-2) and makes it depend on the gradient's size, which the test checks.
CASES = {
    # Gulrajani et al. 2017, Alg. 1 (betas 0, 0.9); two critic updates per G update
    "wgan-gp": {"loss.name": "wasserstein", "loss.real_target": 1.0, "loss.gp_weight": 10.0, "train.d_steps": 2,
                "optim.beta1": 0.0, "optim.beta2": 0.9},
    "r1": {"loss.name": "nonsaturating", "loss.r1_gamma": 5.0},  # with the default real target 0.9
    "ttur": {"loss.name": "hinge", "loss.real_target": 1.0, "loss.gp_weight": 1.0, "optim.g_lr": 1e-4,
             "optim.d_lr": 4e-3},
    "acgan": {"model.cond": "acgan", "model.num_classes": 10, "loss.aux_weight": 0.5, "loss.r1_gamma": 1.0},
}


def d_outputs(D, x, acgan):
    """(logits (N,), class logits (N, K) or None)."""
    return D.forward_with_aux(x) if acgan else (D(x), None)


def grad_norms(D, x, acgan):
    """‖∇ₓ logit(x)‖₂ per sample, differentiable in D's weights."""
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(d_outputs(D, x, acgan)[0].sum(), x, create_graph=True)
    return g.reshape(len(x), -1).pow(2).sum(1).sqrt()


def apply(opt, params, loss):
    for p, g in zip(params, torch.autograd.grad(loss, params)):
        p.grad = g
    opt.step()


def reference_fit(G, D, cfg, images, labels):
    """STEPS steps written out by hand. Randomness as the Trainer draws it: real batches in the order of epoch 0's
    permutation, seeded by (seed, epoch); z, fake labels and each sample's ε from one generator seeded seed + 1,
    in that order within each D update (a single process: the penalties share the latents' generator)."""
    L, o, t, m = cfg.loss, cfg.optim, cfg.train, cfg.model
    acgan = m.cond == "acgan"
    opt_G = torch.optim.Adam(G.parameters(), lr=o.g_lr, betas=(o.beta1, o.beta2), eps=o.eps)
    opt_D = torch.optim.Adam(D.parameters(), lr=o.d_lr, betas=(o.beta1, o.beta2), eps=o.eps)
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(t.seed * 1_000_003 + 17))
    noise = torch.Generator().manual_seed(t.seed + 1)
    batch = 0
    for _ in range(STEPS):
        for _ in range(t.d_steps):  # each D update: a fresh real batch, fresh z (and fake labels)
            idx = perm[batch * B:(batch + 1) * B]
            batch += 1
            real = images[idx].float() * (2.0 / 255.0) - 1.0  # (B, 1, 8, 8) in [-1, 1]
            y_real = labels[idx]
            z = torch.randn(B, m.z_dim, generator=noise)
            y_fake = torch.randint(0, m.num_classes, (B,), generator=noise) if acgan else None
            fake = G(z, y_fake) if acgan else G(z)
            (l_real, a_real), (l_fake, a_fake) = d_outputs(D, real, acgan), d_outputs(D, fake.detach(), acgan)
            if L.name == "wasserstein":
                loss = l_fake.mean() - l_real.mean()
            elif L.name == "hinge":
                loss = (1 - l_real).clamp(min=0).mean() + (1 + l_fake).clamp(min=0).mean()
            else:
                loss = (F.binary_cross_entropy_with_logits(l_real, torch.full((B,), L.real_target))
                        + F.binary_cross_entropy_with_logits(l_fake, torch.full((B,), L.fake_target)))
            if acgan:
                loss = loss + L.aux_weight * (F.cross_entropy(a_real, y_real) + F.cross_entropy(a_fake, y_fake))
            if L.gp_weight:
                eps = torch.rand(B, 1, 1, 1, generator=noise)  # one ε per sample
                x_hat = eps * real + (1 - eps) * fake.detach()
                loss = loss + L.gp_weight * ((grad_norms(D, x_hat, acgan) - 1) ** 2).mean()
            if L.r1_gamma:
                loss = loss + L.r1_gamma / 2 * (grad_norms(D, real, acgan) ** 2).mean()
            apply(opt_D, list(D.parameters()), loss)
        lg, ag = d_outputs(D, fake, acgan)  # the last fakes, through the updated D
        g_loss = -lg.mean() if L.name in ("wasserstein", "hinge") else F.softplus(-lg).mean()
        if acgan:
            g_loss = g_loss + L.aux_weight * F.cross_entropy(ag, y_fake)
        apply(opt_G, list(G.parameters()), g_loss)


@pytest.mark.parametrize("case", CASES)
def test_zoo_step_matches_the_hand_written_steps(tmp_path, case):
    cfg = gankit.preset("seed").with_overrides({**TINY, **CASES[case]})
    tr = Trainer(cfg, tmp_path / "r", log=lambda *_: None)
    assert tr.step_kind.startswith("autograd")  # the autograd step runs, not the fused one
    G, D = copy.deepcopy(tr.G), copy.deepcopy(tr.D)
    result = tr.fit()
    assert result.step == STEPS
    reference_fit(G, D, cfg, tr.data.images, tr.data.labels)
    for mine, ref in ((tr.G, G), (tr.D, D)):
        for (name, a), b in zip(mine.state_dict().items(), ref.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert [g["lr"] for g in tr.opt_G.param_groups] == [cfg.optim.g_lr]
    assert [g["lr"] for g in tr.opt_D.param_groups] == [cfg.optim.d_lr]
