"""Real torch.distributed runs (gloo, 2 processes on this machine) against a single-process run."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import gankit
from gankit.train.checkpoint import load_checkpoint
from gankit.train.rundir import read_log

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
ARGS = ["train", "--dataset", "digits", "--steps", "20", "--no-progress", "--train.log_every", "5",
        "--train.sample_every", "0", "--train.checkpoint_every", "0"]


def torchrun(nproc, args, **kw):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "gankit", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300, **kw)


@pytest.fixture(scope="module")
def two_proc(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    r = torchrun(2, ARGS + ["--out", str(root / "ddp")])
    assert r.returncode == 0, r.stderr[-3000:]
    return root, r


def test_two_processes_match_one_process_at_the_same_global_batch(two_proc, tmp_path):
    root, _ = two_proc
    cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.steps": 20, "train.progress": False,
                                                "train.log_every": 5, "train.sample_every": 0,
                                                "train.checkpoint_every": 0})
    single = gankit.train(cfg, tmp_path / "single", log=lambda *_: None)
    a, b = load_checkpoint(single.checkpoint()), load_checkpoint(root / "ddp")
    for net in ("G", "D"):
        for k in a[net]:
            # same batches, same z; only the order of float sums in the all-reduce differs
            assert torch.allclose(a[net][k], b[net][k], atol=1e-4, rtol=1e-3), (net, k)
    la, lb = read_log(single.run_dir / "log.csv"), read_log(root / "ddp" / "log.csv")
    assert la["step"] == lb["step"]
    assert la["d_loss"] == pytest.approx(lb["d_loss"], rel=1e-3, abs=1e-4)


def test_only_rank_0_writes(two_proc):
    root, r = two_proc
    run = root / "ddp"
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.pt"]
    rows = (run / "log.csv").read_text().splitlines()[1:]
    assert [int(x.split(",")[0]) for x in rows] == list(range(1, 21))  # one row per step: one writer
    assert r.stdout.count("done: 20 steps") == 1
    manifest = (run / "manifest.json").read_text()
    assert '"world_size": 2' in manifest and '"backend": "gloo"' in manifest


def test_a_two_process_checkpoint_resumes_in_one_process(two_proc, tmp_path):
    import shutil

    root, _ = two_proc
    shutil.copytree(root / "ddp", tmp_path / "run")
    cfg = gankit.RunConfig.from_dict(load_checkpoint(tmp_path / "run")["config"]).with_overrides(
        {"train.steps": 30})
    res = gankit.train(cfg, tmp_path / "run", resume=True, log=lambda *_: None)
    assert res.step == 30
    assert read_log(tmp_path / "run" / "log.csv")["step"] == [float(s) for s in range(1, 31)]


def test_nproc_convenience_launches_torchrun(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gankit", *ARGS, "--steps", "6", "--nproc", "2", "--out",
                        str(tmp_path / "n")], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '"world_size": 2' in (tmp_path / "n" / "manifest.json").read_text()
    assert load_checkpoint(tmp_path / "n")["step"] == 6


def test_batch_must_divide_over_the_processes(tmp_path):
    r = torchrun(2, ARGS + ["--out", str(tmp_path / "x"), "--batch-size", "99"])
    assert r.returncode != 0
    assert "must divide evenly over 2 processes" in r.stderr


def test_a_dying_rank_ends_the_run_with_an_error_not_a_hang(tmp_path):
    out = tmp_path / "die"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gankit",
           "train", "--dataset", "digits", "--steps", "1000000", "--no-progress", "--out", str(out),
           "--train.dist_timeout", "30", "--train.sample_every", "0"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                         start_new_session=True)
    try:
        t0 = time.time()
        while not (out / "checkpoints" / "last.pt").exists():
            assert time.time() - t0 < 120 and p.poll() is None, "training did not start"
            time.sleep(0.1)
        ranks = subprocess.run(["pgrep", "-f", f"gankit train .*{out}"], capture_output=True, text=True).stdout.split()
        workers = [int(x) for x in ranks if int(x) != p.pid]
        assert len(workers) == 2
        os.kill(max(workers), signal.SIGKILL)  # one worker dies
        _, err = p.communicate(timeout=120)  # the rest must not hang
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode != 0
    assert load_checkpoint(out)["step"] > 0  # the last checkpoint survived


def test_double_backward_penalty_and_ema_under_ddp_match_one_process(tmp_path):
    """R1 (a gradient penalty: double backward through the DDP-wrapped D) and G_ema, on 2 processes: the same
    parameters as one process, so gradients are all-reduced exactly once per update. (R1 draws no random numbers;
    WGAN-GP's interpolation draws per-rank ones, so it is checked for running and finishing below.)"""
    extra = ["--loss.r1_gamma", "1.0", "--optim.ema_beta", "0.9"]
    r = torchrun(2, ARGS + extra + ["--out", str(tmp_path / "ddp")])
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.steps": 20, "train.progress": False,
                                                "train.log_every": 5, "train.sample_every": 0,
                                                "train.checkpoint_every": 0, "loss.r1_gamma": 1.0,
                                                "optim.ema_beta": 0.9})
    single = gankit.train(cfg, tmp_path / "single", log=lambda *_: None)
    a, b = load_checkpoint(single.checkpoint()), load_checkpoint(tmp_path / "ddp")
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            assert torch.allclose(a[net][k], b[net][k], atol=1e-4, rtol=1e-3), (net, k)
    gp = ["--loss.name", "wasserstein", "--loss.real_target", "1.0", "--loss.gp_weight", "10"]
    r = torchrun(2, ARGS + gp + ["--out", str(tmp_path / "gp")])
    assert r.returncode == 0, r.stderr[-3000:]
    assert all(torch.isfinite(v).all() for v in load_checkpoint(tmp_path / "gp")["D"].values())
