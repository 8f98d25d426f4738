"""Every preset trains a few steps on CPU (tiny sizes) and its checkpoint samples through gankit.load; the seed
keeps its exact step; errors for options that do not fit the data."""
from __future__ import annotations

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.cli import main
from gankit.config import PRESETS, list_presets, preset_config
from gankit.data import Dataset, load_dataset
from gankit.errors import GankitError
from gankit.models import model_keys
from gankit.training.loop import Trainer

TRAIN = {"train.steps": 2, "train.epochs": None, "train.batch_size": 8, "train.log_every": 1, "train.progress": False,
         "train.grid_size": 4, "train.device": "cpu", "train.threads": 0}
WIDTHS = {"model.g_channels": 4, "model.d_channels": 4, "model.g_hidden": (8, 8), "model.d_hidden": (8,)}


def tiny(preset: str) -> dict:
    """Tiny sizes for ``preset``: TRAIN and the WIDTHS its model family reads (a family refuses the others)."""
    keys = model_keys(preset_config(preset).model.arch)
    return {**TRAIN, **{k: v for k, v in WIDTHS.items() if k.split(".")[1] in keys}}


def _images(shape, n=64, classes=10, seed=0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, classes, (n,), generator=g)
    return Dataset("synthetic", images, labels, "test", classes)


def _dataset(cfg):
    name = cfg.data.name
    if name in ("ring8", "grid25"):
        return load_dataset(cfg.data.__class__(name=name, size=400))
    if name == "cifar10":
        return _images((3, 32, 32))
    if name == "stacked-mnist":
        return _images((3, 28, 28), classes=1000)
    return _images((1, 28, 28))


def _quiet(*_):
    pass


# No preset keeps G_ema, so one case adds it: the checkpoint must then hold the average, and gankit.load use it.
CASES = [(name, {}) for name in list_presets()] + [("seed", {"optim.ema_beta": 0.9})]


@pytest.mark.parametrize("name,extra", CASES, ids=[n + ("-ema" if e else "") for n, e in CASES])
def test_preset_trains_and_samples(name, extra, tmp_path):
    cfg = preset_config(name).with_overrides({**tiny(name), **extra})
    trainer = Trainer(cfg, tmp_path / name, dataset=_dataset(cfg), log=_quiet)
    g_states = [{k: v.double() for k, v in trainer.G.state_dict().items()}]  # G after steps 0, 1, 2 (log_every 1)
    trainer.add_callback("on_log", lambda t: g_states.append({k: v.double() for k, v in t.G.state_dict().items()}))
    result = trainer.fit()
    assert result.step == 2
    assert all(math.isfinite(v) for key in ("d_loss", "g_loss") for v in result.history[key])
    assert (result.run_dir / "samples" / "final.png").is_file()
    G = gankit.load(result.run_dir)
    x = G.sample(4, seed=1)
    assert x.shape == (4, *_dataset(cfg).shape)
    if cfg.model.cond != "none":
        a, b = G.sample(2, labels=torch.tensor([0, 0])), G.sample(2, labels=torch.tensor([1, 1]))
        assert not torch.equal(a, b)
        with pytest.raises(GankitError, match="class indices"):
            G.sample(2, labels=torch.tensor([0, cfg.model.num_classes]))  # one past the last class
    if cfg.optim.ema_beta > 0:
        # θ_ema = β²·θ0 + β(1-β)·θ1 + (1-β)·θ2 after two G steps; buffers (BN statistics) are G's own
        assert G.weights == "G_ema" and len(g_states) == 3
        b = cfg.optim.ema_beta
        g0, g1, g2 = g_states
        params = {k for k, _ in trainer.G.named_parameters()}
        for k, v in G.G.state_dict().items():
            want = b * b * g0[k] + b * (1 - b) * g1[k] + (1 - b) * g2[k] if k in params else g2[k]
            torch.testing.assert_close(v.double(), want, rtol=1e-5, atol=1e-6)
            if k in params:
                assert not torch.allclose(v.double(), g2[k])  # the average is not G itself
    if len(G.img_shape) == 1:
        with pytest.raises(GankitError, match="not images"):
            G.images(4)


def _seed_step(tr, batches, labels=None, inputs=None):
    """The seed's step written out (the tutorial's update, as gankit's own seed-only step computed it before the
    one step object replaced it): D on [real; fake] in one pass, then G through D on the same fakes."""
    from gankit.data import to_unit_range

    L, B = tr.cfg.loss, tr.local_batch
    for real_u8 in batches:
        z = torch.randn(B, tr.cfg.model.z_dim, generator=tr.noise)
        fake = tr.G(z)
        real_logits, fake_logits = tr.D(torch.cat([to_unit_range(real_u8), fake.detach()])).split(B)
        d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, L.real_target))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.full_like(fake_logits, L.fake_target)))
        tr.opt_D.zero_grad()
        d_loss.backward()
        tr.opt_D.step()
    tr.D.requires_grad_(False)
    g_loss = F.softplus(-tr.D(fake)).mean()
    tr.opt_G.zero_grad()
    g_loss.backward()
    tr.opt_G.step()
    tr.D.requires_grad_(True)
    with torch.no_grad():
        return torch.stack([d_loss, g_loss, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()])


def test_seed_takes_the_seed_step_and_the_general_step_matches_it(tmp_path):
    # the autograd step on the seed (the fused one is checked against autograd in tests/train/test_fused.py)
    cfg = preset_config("seed").with_overrides({**tiny("seed"), "train.steps": 3, "model.g_hidden": (16,),
                                                "model.d_hidden": (16,), "train.fused_step": False})
    data = _images((1, 8, 8))
    plain = Trainer(cfg, tmp_path / "a", dataset=data, log=_quiet)
    assert plain.step_kind == "autograd (train.fused_step is off)"
    plain.train_step = partial(_seed_step, plain)
    general = Trainer(cfg, tmp_path / "b", dataset=data, log=_quiet)
    ha, hb = plain.fit().history, general.fit().history  # the general step must reproduce the seed's exactly
    assert ha["d_loss"] == hb["d_loss"] and ha["g_loss"] == hb["g_loss"]


def test_batchnorm_d_is_judged_in_separate_passes(tmp_path):
    cfg = preset_config("dcgan-mnist").with_overrides(tiny("dcgan-mnist"))
    t = Trainer(cfg, tmp_path / "r", dataset=_images((1, 28, 28)), log=_quiet)
    assert t.train_step.two_pass and t.step_kind.startswith("autograd")


def test_presets_command_lists_each_preset_on_one_line(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == list_presets()
    assert len(lines) == len(PRESETS) >= 10


@pytest.mark.parametrize("overrides,data,match", [
    ({"loss.name": "hinge"}, (1, 8, 8), "has no targets"),
    ({"model.cond": "concat", "model.num_classes": 3}, (1, 8, 8), "has 10 classes"),
    ({"model.pack": 3}, (1, 8, 8), "not a multiple of model.pack"),
    ({"loss.augment": "color"}, (2,), "needs images"),
])
def test_option_errors(overrides, data, match, tmp_path):
    cfg = preset_config("seed").with_overrides({**tiny("seed"), **overrides})
    with pytest.raises(GankitError, match=match):
        Trainer(cfg, tmp_path / "r", dataset=_images(data) if len(data) == 3 else
                Dataset("pts", torch.randn(64, 2), None, "test"), log=_quiet)


def test_conditional_needs_labels(tmp_path):
    cfg = preset_config("cgan-mnist").with_overrides(tiny("cgan-mnist"))
    unlabelled = Dataset("folder", torch.zeros(64, 1, 28, 28, dtype=torch.uint8), None, "test")
    with pytest.raises(GankitError, match="needs labels"):
        Trainer(cfg, tmp_path / "r", dataset=unlabelled, log=_quiet)


def test_regularizers_in_the_loop(tmp_path):
    """R1, instance noise, DiffAugment, ACGAN, projection, linear lr decay and G_ema together for a few steps."""
    for cond in ("acgan", "projection"):
        cfg = preset_config("dcgan-mnist").with_overrides({
            **tiny("dcgan-mnist"), "model.d_norm": "none", "model.cond": cond, "model.num_classes": 10,
            "loss.r1_gamma": 1.0, "loss.instance_noise": 0.1, "loss.augment": "color,translation,cutout",
            "optim.lr_schedule": "linear", "optim.ema_beta": 0.9, "train.steps": 3})
        t = Trainer(cfg, tmp_path / cond, dataset=_images((1, 28, 28)), log=_quiet)
        before = [p.clone() for p in t.G_ema.parameters()]
        r = t.fit()
        assert all(math.isfinite(v) for v in r.history["d_loss"])
        assert t.opt_G.param_groups[0]["lr"] == pytest.approx(2e-4 * (1 - 2 / 3))
        assert any(not torch.equal(a, b) for a, b in zip(before, t.G_ema.parameters()))


def test_g_ema_survives_resume(tmp_path):
    """2 steps + resume to 4 give the same G_ema as 4 steps straight, and gankit.load samples from it."""
    cfg = preset_config("seed").with_overrides({**tiny("seed"), "train.steps": 4, "model.g_hidden": (8,),
                                                "model.d_hidden": (8,), "optim.ema_beta": 0.9})
    data = _images((1, 8, 8))
    straight = Trainer(cfg, tmp_path / "a", dataset=data, log=_quiet)
    straight.fit()
    half = Trainer(cfg.with_overrides({"train.steps": 2}), tmp_path / "b", dataset=data, log=_quiet)
    half.fit()
    resumed = Trainer(cfg, tmp_path / "b", dataset=data, resume=True, log=_quiet)
    resumed.fit()
    for a, b in zip(straight.G_ema.state_dict().values(), resumed.G_ema.state_dict().values()):
        assert torch.equal(a, b)
    loaded = gankit.load(tmp_path / "b")
    assert loaded.weights == "G_ema"
    assert torch.equal(loaded.G.state_dict()["net.0.weight"], resumed.G_ema.state_dict()["net.0.weight"])


def test_sample_writes_toy_points_and_a_scatter_plot(tmp_path):
    import numpy as np

    from gankit import cli

    cfg = gankit.preset("pacgan-ring8").with_overrides({"train.steps": 2, "train.progress": False,
                                                        "data.size": 1000, "train.sample_every": 0})
    gankit.train(cfg, tmp_path / "ring", log=lambda *_: None)
    assert cli.main(["sample", str(tmp_path / "ring"), "--n", "300", "--out", str(tmp_path / "p.npz")]) == 0
    pts = np.load(tmp_path / "p.npz")["points"]
    assert pts.shape == (300, 2) and pts.dtype == np.float32
    assert np.allclose(pts, gankit.load(tmp_path / "ring").sample(300, seed=0).numpy(), atol=1e-6)
    assert (tmp_path / "p_scatter.png").stat().st_size > 0
    assert cli.main(["sample", str(tmp_path / "ring"), "--n", "3", "--out", str(tmp_path / "dir")]) == 2
