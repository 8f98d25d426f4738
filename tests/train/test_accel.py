"""Mixed precision, channels-last and compile switches: same math, recorded, refused where unsupported."""
import json
import math

import pytest
import torch

import gankit
from gankit.checkpoint import load_checkpoint
from gankit.config import list_presets, preset_config
from gankit.data import Dataset
from gankit.training import accel
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


def _conv_kernels(dtype: torch.dtype) -> set[str]:
    """The ATen kernels one 32->64 stride-2 convolution (quick-mnist D's second layer) runs in ``dtype`` on CPU."""
    from torch.profiler import ProfilerActivity, profile

    conv = torch.nn.Conv2d(32, 64, 4, 2, 1)
    x = torch.randn(8, 32, 14, 14)
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as p:
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            conv(x)
    return {e.key for e in p.key_averages()}


def test_auto_takes_bf16_only_where_the_cpu_runs_it_in_onednn():
    """train.precision auto's CPU rule against what torch does here: a bf16 convolution runs in oneDNN exactly where
    torch's oneDNN bf16 check passes (elsewhere in its slow reference loop, ~10x slower than fp32 on an AVX2 CPU), and
    auto takes bf16 only where that check passes (and the cores have bf16 instructions)."""
    onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    kernels = _conv_kernels(torch.bfloat16)
    assert ("aten::mkldnn_convolution" in kernels) == onednn, kernels
    assert ("aten::_slow_conv2d_forward" in kernels) == (not onednn), kernels
    assert "aten::mkldnn_convolution" in _conv_kernels(torch.float32)  # fp32 always has oneDNN's kernel
    assert not accel.native_bf16("cpu") or onednn
    assert accel.auto_precision("cpu") == ("bf16" if accel.native_bf16("cpu") else "fp32")
    assert accel.auto_precision("mps") == "fp32"  # a device gankit has no rule for: fp32, the safe pick


def test_precision_auto_trains_as_the_precision_it_takes_and_records_it(tmp_path):
    """A run with train.precision auto is the run in the precision auto takes on this machine, step for step (same
    losses bit for bit); its config keeps "auto", its manifest and checkpoint record what ran, and the log says it."""
    took = accel.auto_precision("cpu")
    lines: list[str] = []
    a = gankit.train(cfg("dcgan-mnist", **{"train.precision": "auto"}), tmp_path / "auto", log=lines.append)
    b = gankit.train(cfg("dcgan-mnist", **{"train.precision": took}), tmp_path / "took", log=quiet)
    assert a.history["d_loss"] == b.history["d_loss"] and a.history["g_loss"] == b.history["g_loss"]
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["train"]["precision"] == "auto"
    assert json.loads((tmp_path / "auto" / "manifest.json").read_text())["precision"] == took
    assert load_checkpoint(tmp_path / "auto")["precision"] == took
    assert f"train.precision auto: {took} (this cpu has{'' if took == 'bf16' else ' no'} bf16 in hardware)" in lines


def test_seed_preset_under_auto_keeps_the_fused_step_where_auto_takes_fp32(tmp_path):
    """The fused MLP step takes fp32 runs only: under auto it is taken exactly where auto takes fp32, and the
    manifest says why not elsewhere."""
    gankit.train(cfg(**{"train.precision": "auto"}), tmp_path / "r", log=quiet)
    step = json.loads((tmp_path / "r" / "manifest.json").read_text())["step"]
    want = "fused-mlp" if accel.auto_precision("cpu") == "fp32" else "autograd (precision auto (bf16 on this cpu))"
    assert step == want


def test_resuming_under_auto_says_when_the_precision_changes(tmp_path):
    """A run trained in the precision auto does not take here, resumed under auto: it goes on in auto's precision
    and says in one line that the continuation is not bit-identical; the manifest then records the new one."""
    took = accel.auto_precision("cpu")
    other = "fp32" if took == "bf16" else "bf16"
    gankit.train(cfg("dcgan-mnist", **{"train.precision": other, "train.steps": 5}), tmp_path / "r", log=quiet)
    lines: list[str] = []
    gankit.train(cfg("dcgan-mnist", **{"train.precision": "auto", "train.steps": 10}), tmp_path / "r", resume=True,
                 log=lines.append)
    assert any(f"train.precision auto takes {took} on this cpu; this run trained in {other} until now" in ln
               for ln in lines), lines
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["precision"] == took
    assert load_checkpoint(tmp_path / "r")["precision"] == took


def test_explicit_bf16_on_a_cpu_without_bf16_trains_as_asked_with_a_note(tmp_path):
    """bf16 asked of a CPU without bf16 instructions is honoured (the run trains in bf16: its manifest says so), and
    the log says in one line that it is slow here and what auto would take; where the CPU has bf16, no note."""
    lines: list[str] = []
    gankit.train(cfg(**{"train.precision": "bf16", "train.steps": 2}), tmp_path / "r", log=lines.append)
    notes = [ln for ln in lines if ln.startswith("note: train.precision bf16 on a CPU without bf16 instructions")]
    assert len(notes) == (0 if accel.native_bf16("cpu") else 1), lines
    assert all("--train.precision auto takes fp32 here" in n for n in notes)
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["precision"] == "bf16"


@pytest.mark.parametrize("over,msg", [
    ({"train.precision": "fp16"}, "fp16 needs CUDA"),
    ({"train.precision": "fp8"}, "train.precision must be one of fp32, bf16, fp16, auto"),
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
    question is the ops). On a CPU without bf16 instructions torch runs bf16 in its slow reference loops
    (sngan-cifar10's step took about a minute), so there the step takes the smallest batch the preset allows and one
    D update: which kernels exist does not depend on the batch."""
    c = preset_config(preset)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (640, *SHAPES.get(c.data.name, (1, 28, 28))), generator=g, dtype=torch.uint8)
    name = "fashion-mnist" if c.data.name == "auto" else c.data.name
    data = Dataset(name, images, torch.randint(0, 10, (640,), generator=g), "random", 10)
    run = c.with_overrides({"data.name": name, "train.steps": 1, "train.progress": False, "train.log_every": 1,
                            "train.sample_every": 0, "train.checkpoint_every": 0, **switch})
    if not accel.native_bf16("cpu"):
        m = c.model
        run = run.with_overrides({"train.batch_size": math.lcm(2 * m.pack, max(1, m.d_mbstd), m.g_norm_slots),
                                  "train.d_steps": 1})
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


def test_dry_run_says_what_auto_takes_on_this_machine(tmp_path, monkeypatch, capsys):
    """`gankit train --dry-run` of a preset with train.precision auto (quick-mnist) names the precision the run
    would take here; a fixed precision adds no line."""
    from gankit import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--preset", "quick-mnist", "--dataset", "digits", "--device", "cpu", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert f"# train.precision auto: {accel.auto_precision('cpu')} on this cpu\n" in err
    assert cli.main(["train", "--dataset", "digits", "--dry-run"]) == 0
    assert "train.precision" not in capsys.readouterr().err
