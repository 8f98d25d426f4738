"""Mixed precision, channels-last and compile switches: same math, recorded, refused where unsupported."""
import json

import pytest
import torch

import gankit
from gankit.checkpoint import load_checkpoint
from gankit.config import list_presets, preset_config
from gankit.data import Dataset
from gankit.training.accel import Autocast


def cfg(preset="seed", **kw):
    over = {"data.name": "digits", "train.steps": 20, "train.progress": False, "train.log_every": 5,
            "train.sample_every": 0, "train.checkpoint_every": 0}
    if preset == "dcgan-mnist":
        over.update({"model.g_channels": 4, "model.d_channels": 4, "train.batch_size": 64})
    over.update(kw)
    return gankit.preset(preset).with_overrides(over)


def quiet(*_):
    pass


def test_autocast_wrapper_runs_bf16_inside_and_returns_float32():
    lin = torch.nn.Linear(8, 4)
    seen = []
    lin.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    out = Autocast(lin, "cpu", torch.bfloat16)(torch.randn(3, 8))
    assert seen == [torch.bfloat16] and out.dtype == torch.float32


def test_bf16_training_tracks_fp32_at_the_start_and_stays_finite(tmp_path):
    a = gankit.train(cfg(), tmp_path / "fp32", log=quiet)
    b = gankit.train(cfg(**{"train.precision": "bf16"}), tmp_path / "bf16", log=quiet)
    # bf16 keeps ~3 significant digits: the first losses agree to about 1 %, and nothing overflows
    assert b.history["d_loss"][0] == pytest.approx(a.history["d_loss"][0], rel=2e-2)
    assert b.history["g_loss"][0] == pytest.approx(a.history["g_loss"][0], rel=2e-2)
    assert all(torch.isfinite(torch.tensor(b.history["d_loss"])))
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["train"]["precision"] == "bf16"
    assert load_checkpoint(tmp_path / "bf16")["config"]["train"]["precision"] == "bf16"


def test_channels_last_changes_memory_layout_not_results(tmp_path):
    a = gankit.train(cfg("dcgan-mnist"), tmp_path / "a", log=quiet)
    b = gankit.train(cfg("dcgan-mnist", **{"train.channels_last": True}), tmp_path / "b", log=quiet)
    assert b.history["d_loss"] == pytest.approx(a.history["d_loss"], rel=1e-3, abs=1e-4)
    conv = next(m for m in b.G.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("over,msg", [
    ({"train.precision": "fp16"}, "fp16 needs CUDA"),
    ({"train.precision": "fp8"}, "train.precision must be one of fp32, bf16, fp16"),
])
def test_unsupported_precisions_are_refused(tmp_path, over, msg):
    with pytest.raises(gankit.GankitError, match=msg):
        gankit.train(cfg(**over), tmp_path / "r", log=quiet)
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_compiled_step_matches_eager(tmp_path):
    a = gankit.train(cfg(), tmp_path / "a", log=quiet)
    b = gankit.train(cfg(**{"train.compile": True}), tmp_path / "b", log=quiet)
    assert b.history["d_loss"] == pytest.approx(a.history["d_loss"], rel=1e-3, abs=1e-4)


IMAGE_PRESETS = [p for p in list_presets() if preset_config(p).model.arch != "toy"]
SHAPES = {"cifar10": (3, 32, 32), "stacked-mnist": (3, 28, 28)}  # the others: 28x28 grey


@pytest.mark.parametrize("switch", [{"train.precision": "bf16"},
                                    {"train.precision": "bf16", "train.channels_last": True}], ids=["bf16", "bf16-cl"])
@pytest.mark.parametrize("preset", IMAGE_PRESETS)
def test_every_image_preset_trains_under_the_cpu_switches(tmp_path, preset, switch):
    """train.precision bf16 (alone and with channels-last) is a CPU switch of every image preset, at the preset's
    own image size and nets: no op lacks a bf16 CPU kernel (R3GAN's antialiased downsample did: a traceback at the
    first step), and a step's losses are finite. The images are random uint8 of the preset's shape (the
    question is the ops)."""
    c = preset_config(preset)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (640, *SHAPES.get(c.data.name, (1, 28, 28))), generator=g, dtype=torch.uint8)
    name = "fashion-mnist" if c.data.name == "auto" else c.data.name
    data = Dataset(name, images, torch.randint(0, 10, (640,), generator=g), "random", 10)
    run = c.with_overrides({"data.name": name, "train.steps": 1, "train.progress": False, "train.log_every": 1,
                            "train.sample_every": 0, "train.checkpoint_every": 0, **switch})
    res = gankit.train(run, tmp_path / "r", dataset=data, log=quiet)
    assert len(res.history["d_loss"]) == 1
    assert torch.isfinite(torch.tensor(res.history["d_loss"] + res.history["g_loss"])).all()


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["wgan-gp-mnist", "r3gan-mnist"])
def test_compile_trains_presets_with_gradient_penalties_as_eager_does(tmp_path, preset):
    """train.compile with a gradient penalty (wgan-gp-mnist's GP, r3gan-mnist's R1 and R2) used to stop at the
    first step: a compiled backward cannot be differentiated again. The penalties' passes now run D eagerly; the
    compiled run's losses follow the eager run's (same seed, same random 28x28 images)."""
    c = preset_config(preset)
    g = torch.Generator().manual_seed(0)
    data = Dataset("fashion-mnist", torch.randint(0, 256, (640, 1, 28, 28), generator=g, dtype=torch.uint8),
                   torch.randint(0, 10, (640,), generator=g), "random", 10)
    over = {"data.name": "fashion-mnist", "train.steps": 2, "train.progress": False, "train.log_every": 1,
            "train.sample_every": 0, "train.checkpoint_every": 0}
    a = gankit.train(c.with_overrides(over), tmp_path / "a", dataset=data, log=quiet)
    b = gankit.train(c.with_overrides({**over, "train.compile": True}), tmp_path / "b", dataset=data, log=quiet)
    assert b.history["d_loss"] == pytest.approx(a.history["d_loss"], rel=1e-3, abs=1e-4)
    assert b.history["g_loss"] == pytest.approx(a.history["g_loss"], rel=1e-3, abs=1e-4)
