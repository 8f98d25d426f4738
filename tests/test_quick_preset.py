"""The quick-mnist preset (issue #19): it builds, its nets have the documented sizes, and one training step under
the preset's precision and memory format matches the plain fp32 step (self-conditioned, as shipped)."""
from __future__ import annotations

import pytest
import torch

from gankit.config import PRESETS, preset_config
from gankit.data import Dataset
from gankit.models import build_discriminator, build_generator, has_batch_coupling
from gankit.training.accel import auto_precision
from gankit.training.loop import Trainer

SHAPE = (1, 28, 28)
COS_BOUND = 0.95  # bf16 against fp32, per tensor of G's update; measured 0.993 (fc.weight: z and the cluster's
# one-hot in) to 1.0 with 30 clusters and a projection D (0.968 with 10 and a concat D; unconditional 0.985)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_preset_builds_with_documented_nets():
    cfg = preset_config("quick-mnist")
    assert PRESETS["quick-mnist"][0]  # a one-line description for `gankit train --help`
    # no human label: the 30 classes are k-means clusters of the pixels (data.clusters); D reads them by projection
    assert (cfg.data.clusters, cfg.model.cond, cfg.model.num_classes) == (30, "projection", 30)
    G, D = build_generator(cfg.model, SHAPE), build_discriminator(cfg.model, SHAPE)
    # G: Linear 100 + 30 -> 64·7·7, BN, ConvT 64 -> 32 (7 -> 14), BN, ConvT 32 -> 1 (14 -> 28), tanh
    assert _count(G) == (130 * 3136 + 3136) + 2 * 64 + (64 * 32 * 16 + 32) + 2 * 32 + (32 * 16 + 1) == 444_321
    # D: Conv 1 -> 32 (28 -> 14), Conv 32 -> 64 (14 -> 7), BN, Linear 3136 -> 1, and the projection: one 3136-wide
    # embedding per cluster, dotted with the features (Miyato & Koyama 2018)
    assert _count(D) == (16 * 32 + 32) + (32 * 64 * 16 + 64) + 2 * 64 + (3136 + 1) + 30 * 3136 == 130_721
    assert has_batch_coupling(D)  # so the step runs D on real and fake apart
    cgan = preset_config("cgan-mnist")
    half = {"model.g_channels": 32, "model.d_channels": 32, "model.cond": "projection", "model.num_classes": 30}
    assert cfg.model == cgan.with_overrides(half).model and cfg.loss == cgan.loss
    assert (cfg.optim.g_lr, cfg.optim.d_lr, cfg.optim.beta1, cfg.optim.ema_beta) == (1e-3, 1e-3, 0.5, 0.995)
    # the switches that won (bench/quick_speed.py): bf16 where the CPU has it (auto; fp32 on an AVX2 CPU), no compile
    assert cfg.train.precision == "auto" and not cfg.train.compile
    z, y = torch.randn(3, cfg.model.z_dim), torch.tensor([0, 4, 9])
    assert G(z, y).shape == (3, *SHAPE) and D(G(z, y), y).shape == (3,)
    # a --time 5m run is cut by the clock, not by its length: the default length outlasts 5 minutes on 2 cores
    assert cfg.train.steps is not None and cfg.train.steps >= 5 * 60 * 50
    assert cfg.optim.lr_schedule == "constant"  # so a run cut anywhere has trained at full rate throughout


def _one_step(cfg, data, tmp_path, name):
    # Adam's eps at 1e3: its first step lr·g/(|g| + eps) is then ≈ lr·g/eps, proportional to the gradient, so the
    # update compares the gradients themselves (at eps 1e-8 it is ≈ lr·sign(g), which rounding flips wherever g ≈ 0)
    cfg = cfg.with_overrides({"train.steps": 1, "train.progress": False, "train.sample_every": 0,
                              "train.checkpoint_every": 0, "train.threads": 1, "optim.eps": 1e3})
    torch.manual_seed(0)
    tr = Trainer(cfg, tmp_path / name, dataset=data, log=lambda *_: None)
    before = {k: v.detach().clone() for k, v in tr.G.named_parameters()}
    labels = [tr.data.labels[: cfg.train.batch_size]] if cfg.model.cond != "none" else None  # the run's clusters
    stats = tr.train_step([data.images[: cfg.train.batch_size]], labels)
    return stats.float(), {k: (v.detach() - before[k]).flatten() for k, v in tr.G.named_parameters()}


@pytest.mark.parametrize("precision", ["auto", "bf16"], ids=["as-shipped", "bf16"])
def test_step_under_preset_switches_matches_fp32(tmp_path, precision):
    """The preset as shipped (auto: bf16 where the CPU has it) and in bf16 on any CPU: one step against fp32."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, *SHAPE), dtype=torch.uint8, generator=g)
    data = Dataset(name="quick-test", images=images, labels=None, source="random uint8")
    cfg = preset_config("quick-mnist").with_overrides({"train.precision": precision})
    plain = cfg.with_overrides({"train.precision": "fp32", "train.channels_last": False, "train.compile": False})
    s_ref, d_ref = _one_step(plain, data, tmp_path, "fp32")
    s, d = _one_step(cfg, data, tmp_path, "preset")
    # [d_loss, g_loss, D(x), D(G(z))]: same init, same z; bf16 keeps 8 mantissa bits (relative rounding 2^-9 per
    # op), a handful of layers deep, so 3 % bounds it; fp32 in another memory format only reorders the sums (1e-4)
    took = auto_precision("cpu") if precision == "auto" else precision
    tol = 3e-2 if took == "bf16" else 1e-4
    torch.testing.assert_close(s, s_ref, rtol=tol, atol=tol)
    # G's update, tensor by tensor: the direction of each layer's gradient survives bf16. Skipped: a tensor whose
    # update vanishes in fp32 (the bias of the conv that batch norm follows, zero in exact arithmetic: 1.7e-13; the
    # norms' gains, near 1.0, where an update of ~1e-9 is below float32's resolution). A missed layer or a stale
    # weight gives a cosine near 0 or a zero update.
    checked = 0
    for name, ref in d_ref.items():
        if ref.norm() < 1e-9:
            continue
        cos = torch.nn.functional.cosine_similarity(d[name], ref, dim=0)
        assert cos > COS_BOUND, (name, cos)
        checked += 1
    assert checked >= len(d_ref) - 3
