"""GPU paths: CUDA graphs, mixed precision, channels-last, compile and NCCL. Skipped without a CUDA device
(CI has none); run on a GPU machine with ``python -m pytest tests/test_gpu.py``."""
import json
import subprocess
import sys

import pytest
import torch

import gankit
from gankit.checkpoint import load_checkpoint
from gankit.training.loop import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def cfg(preset="seed", **kw):
    over = {"data.name": "digits", "train.steps": 40, "train.progress": False, "train.log_every": 10,
            "train.sample_every": 0, "train.checkpoint_every": 0, "train.device": "cuda"}
    if preset in ("dcgan-mnist", "cgan-mnist"):
        over.update({"model.g_channels": 8, "model.d_channels": 8, "train.batch_size": 32})
    over.update(kw)
    return gankit.preset(preset).with_overrides(over)


def quiet(*_):
    pass


def params(res):
    return torch.cat([p.detach().flatten().cpu() for p in list(res.G.parameters()) + list(res.D.parameters())])


@pytest.mark.parametrize("preset,over", [
    ("seed", {}),
    ("seed", {"train.d_steps": 2}),
    ("dcgan-mnist", {"optim.ema_beta": 0.99}),
    ("cgan-mnist", {}),
    ("dcgan-mnist", {"model.cond": "acgan", "model.num_classes": 10}),
    ("dcgan-mnist", {"model.d_spectral_norm": True, "loss.name": "hinge", "loss.real_target": 1.0,
                     "loss.r1_gamma": 1.0}),
    # R3GAN: relativistic loss (G's step runs D on reals), R1 and R2 (double backward), G_ema
    ("r3gan-mnist", {"model.stage_channels": (16, 32), "model.group_channels": 8, "train.batch_size": 32}),
])
def test_cuda_graph_step_follows_the_eager_step(tmp_path, preset, over):
    eager = gankit.train(cfg(preset, **over), tmp_path / "eager", log=quiet)
    graph = gankit.train(cfg(preset, **over, **{"train.cuda_graphs": True}), tmp_path / "graph", log=quiet)
    assert graph.step == eager.step == 40
    # same kernels, same random numbers: the trajectories agree to float rounding
    assert graph.history["d_loss"] == pytest.approx(eager.history["d_loss"], rel=1e-3, abs=1e-4)
    assert torch.allclose(params(graph), params(eager), rtol=1e-3, atol=1e-4)


def test_precision_auto_takes_bf16_on_a_gpu_with_bf16_units(tmp_path):
    """quick-mnist's train.precision auto on CUDA: bf16 on a GPU from Ampere on (compute capability 8+), fp32 before;
    the run follows the explicit one (GPU kernels may pick other algorithms run to run: float rounding), and its
    manifest says what it took."""
    from gankit.training.accel import auto_precision

    want = "bf16" if torch.cuda.get_device_capability()[0] >= 8 else "fp32"
    assert auto_precision("cuda") == want
    a = gankit.train(cfg("dcgan-mnist", **{"train.precision": "auto", "train.steps": 20}), tmp_path / "a", log=quiet)
    b = gankit.train(cfg("dcgan-mnist", **{"train.precision": want, "train.steps": 20}), tmp_path / "b", log=quiet)
    assert a.history["d_loss"] == pytest.approx(b.history["d_loss"], rel=1e-3, abs=1e-4)
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["precision"] == want


def test_cuda_graph_bf16_channels_last_runs_and_stays_close(tmp_path):
    over = {"train.precision": "bf16", "train.channels_last": True}
    eager = gankit.train(cfg("dcgan-mnist", **over), tmp_path / "eager", log=quiet)
    graph = gankit.train(cfg("dcgan-mnist", **over, **{"train.cuda_graphs": True}), tmp_path / "graph", log=quiet)
    assert graph.history["d_loss"] == pytest.approx(eager.history["d_loss"], rel=2e-2, abs=1e-3)


def test_cuda_graph_run_resumes_to_the_uninterrupted_result(tmp_path):
    g = {"train.cuda_graphs": True}
    whole = gankit.train(cfg(**g), tmp_path / "whole", log=quiet)
    gankit.train(cfg(**g, **{"train.steps": 20}), tmp_path / "split", log=quiet)
    resumed = Trainer(cfg(**g), tmp_path / "split", resume=True, log=quiet).fit()
    assert resumed.step == 40
    assert torch.allclose(params(resumed), params(whole), rtol=1e-4, atol=1e-5)
    state = load_checkpoint(tmp_path / "split")
    assert all(g["capturable"] for g in state["opt_G"]["param_groups"])


def test_a_nan_under_cuda_graphs_rolls_back_and_recaptures(tmp_path):
    msgs = []
    tr = Trainer(cfg(**{"train.cuda_graphs": True}), tmp_path / "r", log=msgs.append)
    hit = []

    def poison(t):  # step 10 is a flush (log_every 10; digits has 17 steps per epoch)
        if t.step == 10 and not hit:
            hit.append(1)
            with torch.no_grad():
                t.G.net[-2].bias[0] = float("nan")
    tr.add_callback("on_log", poison)
    res = tr.fit()
    assert res.step == 40 and any("rolled back to step 10" in m for m in msgs)
    assert all(torch.isfinite(torch.tensor(res.history["d_loss"])))
    assert torch.isfinite(params(res)).all()


@pytest.mark.parametrize("over", [{"train.precision": "bf16"}, {"train.precision": "fp16"},
                                  {"train.channels_last": True}])
def test_mixed_precision_and_layouts_train_on_cuda(tmp_path, over):
    eager = gankit.train(cfg("dcgan-mnist"), tmp_path / "fp32", log=quiet)
    res = gankit.train(cfg("dcgan-mnist", **over), tmp_path / "x", log=quiet)
    assert all(torch.isfinite(torch.tensor(res.history["d_loss"])))
    assert res.history["d_loss"][0] == pytest.approx(eager.history["d_loss"][0], rel=5e-2)


def test_compile_on_cuda_matches_eager(tmp_path):
    eager = gankit.train(cfg(**{"train.steps": 20}), tmp_path / "a", log=quiet)
    comp = gankit.train(cfg(**{"train.steps": 20, "train.compile": True}), tmp_path / "b", log=quiet)
    assert comp.history["d_loss"] == pytest.approx(eager.history["d_loss"], rel=1e-3, abs=1e-4)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL needs one GPU per process")
def test_two_nccl_processes_train_and_only_rank_0_writes(tmp_path):
    args = ["train", "--preset", "seed", "--dataset", "digits", "--steps", "10", "--no-progress",
            "--device", "cuda", "--train.log_every", "5"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gankit",
           *args, "--out", str(tmp_path / "ddp")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert load_checkpoint(tmp_path / "ddp")["step"] == 10
    manifest = json.loads((tmp_path / "ddp" / "manifest.json").read_text())
    assert manifest["backend"] == "nccl" and manifest["world_size"] == 2


def test_graphed_ensemble_follows_the_eager_ensemble(tmp_path):
    """--seeds under train.cuda_graphs: the captured ensemble step (batch gather, both updates, statistics) replays
    what the eager ensemble computes; members stay ordinary run folders."""
    from gankit.training.ensemble import Ensemble, seed_configs

    over = {"data.name": "ring8", "data.size": 4000, "train.epochs": 3, "train.steps": None,
            "model.g_hidden": (64, 64), "model.d_hidden": (32, 32)}
    runs = {}
    for mode in (False, True):
        cfgs = seed_configs(cfg("pacgan-ring8", **over, **{"train.cuda_graphs": mode}), [0, 1, 2])
        ens = Ensemble(cfgs, [tmp_path / f"{mode}{k}" for k in range(3)], log=quiet)
        ens.fit()
        runs[mode] = ens
    for k in range(3):
        for net in ("G", "D"):
            a, b = getattr(runs[False], net).member_state(k), getattr(runs[True], net).member_state(k)
            for key in a:
                torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-4)
        g = gankit.load(tmp_path / f"True{k}")
        assert g.step == 3 * runs[True].spe


def test_ensembles_graphed_together_equal_each_graphed_alone(tmp_path):
    """fit_together under CUDA graphs: each ensemble's captured step replayed in turn; each ensemble must end where
    it ends when graphed alone."""
    from gankit.training.ensemble import Ensemble, fit_together, seed_configs

    over = {"train.epochs": 2, "train.steps": None, "train.cuda_graphs": True,
            "model.g_hidden": (64, 64), "model.d_hidden": (32, 32)}
    size = {"gan-ring8": 1000, "pacgan-grid25": 4000}  # batches of 100 and 400 points: 10 steps per epoch each

    def two(tag):
        return [Ensemble(seed_configs(cfg(p, **over, **{"data.name": p.split("-")[1], "data.size": size[p]}), [0, 1]),
                         [tmp_path / f"{tag}{p}{k}" for k in range(2)], log=quiet)
                for p in ("gan-ring8", "pacgan-grid25")]
    alone = two("a")
    for e in alone:
        e.fit()
    together = two("t")
    fit_together(together)
    for a, t in zip(alone, together):
        for net in ("G", "D"):
            for k in range(2):
                sa, st = getattr(a, net).member_state(k), getattr(t, net).member_state(k)
                for key in sa:
                    torch.testing.assert_close(st[key], sa[key], rtol=1e-5, atol=1e-6)


def test_tf32_switches_float32_matmuls_per_run(tmp_path):
    gankit.train(cfg(**{"train.tf32": True, "train.steps": 5}), tmp_path / "a", log=quiet)
    assert torch.backends.cuda.matmul.allow_tf32
    gankit.train(cfg(**{"train.steps": 5}), tmp_path / "b", log=quiet)
    assert not torch.backends.cuda.matmul.allow_tf32


def test_time_curves_gpu_row_trains_resumes_and_scores_on_cuda(tmp_path, load_script):
    """scripts/time_curves.py --device cuda (issue #19's GPU row) on tiny settings: the 2s point resumes the 1s run
    on the GPU, both are scored there, and the row goes to its own JSON and doc region."""
    tc = load_script("time_curves")
    args = ["--presets", "seed", "--dataset", "digits", "--override", "model.g_hidden=16", "--override",
            "model.d_hidden=16", "--override", "train.epochs=10000", "--n-samples", "200", "--budgets", "1s,2s",
            "--seeds-at", "", "--device", "cuda", "--order", "chain", "--runs", str(tmp_path / "runs"),
            "--doc", str(tmp_path / "ZOO.md")]
    assert tc.main(args) == 0
    points = json.loads((tmp_path / "zoo" / "time_runs_cuda.json").read_text())["points"]
    assert sorted(points) == ["seed/seed0/1s", "seed/seed0/2s"]
    first, second = points["seed/seed0/1s"], points["seed/seed0/2s"]
    assert second["resumes"] == "1s" and second["steps"] > first["steps"] > 0
    assert torch.cuda.get_device_name() in second["machine"]
    assert second["scores"]["n"] == 200 and second["scores"]["fd"] > 0
    assert "<!-- time-curves-cuda:start -->" in (tmp_path / "ZOO.md").read_text()
