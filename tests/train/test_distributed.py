"""Real torch.distributed runs (gloo, 2 processes on this machine) against a single-process run."""
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import gankit
from gankit.checkpoint import load_checkpoint
from gankit.rundir import read_log

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
ARGS = ["train", "--dataset", "digits", "--steps", "20", "--no-progress", "--train.log_every", "5",
        "--train.sample_every", "0", "--train.checkpoint_every", "0"]
README = Path(__file__).resolve().parents[2] / "README.md"


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


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The same 20 steps as ARGS in this process: the reference for the multi-process runs."""
    cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.steps": 20, "train.progress": False,
                                                "train.log_every": 5, "train.sample_every": 0,
                                                "train.checkpoint_every": 0})
    return gankit.train(cfg, tmp_path_factory.mktemp("single") / "run", log=lambda *_: None)


def assert_matches_one_process(single, run):
    a, b = load_checkpoint(single.checkpoint()), load_checkpoint(run)
    for net in ("G", "D"):
        for k in a[net]:
            # same batches, same z; only the order of float sums in the all-reduce differs
            assert torch.allclose(a[net][k], b[net][k], atol=1e-4, rtol=1e-3), (net, k)
    la, lb = read_log(single.run_dir / "log.csv"), read_log(run / "log.csv")
    assert la["step"] == lb["step"]
    assert la["d_loss"] == pytest.approx(lb["d_loss"], rel=1e-3, abs=1e-4)


def assert_one_writer(run, stdout):
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.pt"]
    rows = (run / "log.csv").read_text().splitlines()[1:]
    assert [int(x.split(",")[0]) for x in rows] == list(range(1, 21))  # one row per step: one writer
    assert stdout.count("done: 20 steps") == 1
    manifest = (run / "manifest.json").read_text()
    assert '"world_size": 2' in manifest and '"backend": "gloo"' in manifest


def test_two_processes_match_one_process_at_the_same_global_batch(two_proc, single):
    root, _ = two_proc
    assert_matches_one_process(single, root / "ddp")


def test_only_rank_0_writes(two_proc):
    root, r = two_proc
    assert_one_writer(root / "ddp", r.stdout)


# ---- two nodes: the README's multi-node command, as two torchrun agents of one process each on loopback ----

def readme_multinode_flags(port):
    """The torchrun flags of the README's multi-node example, for 2 one-process "nodes" on this machine."""
    text = README.read_text().replace("\\\n", " ")  # join the example's continuation line
    (line,) = [ln for ln in text.splitlines() if ln.startswith("torchrun --nnodes")]
    words = shlex.split(line)
    flags = words[1:words.index("-m")]
    subst = {"HOST": "127.0.0.1", "NODE_ADDR": "127.0.0.1", "29500": str(port)}
    flags = [re.sub("|".join(subst), lambda m: subst[m.group()], f) for f in flags]
    return [re.sub(r"^--nproc_per_node=\d+$", "--nproc_per_node=1", f) for f in flags]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_agent(p):
    """SIGKILL a torchrun agent and its workers (each worker runs in a session of its own)."""
    workers = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == p.pid:
                workers.append(int(d.name))
        except (OSError, ValueError):
            pass
    for pid in [p.pid, *workers]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait()


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("nodes")
    flags = readme_multinode_flags(free_port())
    # the same command on each "node", one shared run folder (the README's /shared/runs/...)
    cmd = [sys.executable, "-m", "torch.distributed.run", *flags, "-m", "gankit", *ARGS, "--out", str(root / "run")]
    logs = [(open(root / f"node{i}.out", "w+"), open(root / f"node{i}.err", "w+")) for i in range(2)]
    agents = [subprocess.Popen(cmd, stdout=o, stderr=e, text=True, env=ENV) for o, e in logs]
    try:
        deadline = time.monotonic() + 240
        # stop at the first failed node too: the other would wait out torchrun's exit barrier (300 s)
        while time.monotonic() < deadline and not all(p.poll() == 0 for p in agents):
            if any(p.poll() not in (None, 0) for p in agents):
                break
            time.sleep(0.2)
    finally:
        for p in agents:
            if p.poll() is None:
                kill_agent(p)
    out = []
    for (o, e), p in zip(logs, agents):
        o.seek(0), e.seek(0)
        out.append((p.returncode, o.read(), e.read()))
        o.close(), e.close()
    for rc, _, err in out:
        assert rc == 0, err[-3000:]
    return root / "run", flags, "".join(o for _, o, _ in out)


def test_two_nodes_match_one_process_at_the_same_global_batch(two_nodes, single):
    run, flags, _ = two_nodes
    assert "--rdzv-backend=c10d" in flags and "--nnodes=2" in flags  # the README's rendezvous, not --standalone
    assert_matches_one_process(single, run)


def test_two_nodes_share_one_run_folder_and_only_rank_0_writes(two_nodes):
    run, _, stdout = two_nodes
    assert_one_writer(run, stdout)


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


def test_a_time_budget_stops_every_rank_at_one_log_flush(tmp_path):
    """--time under torchrun: the ranks agree on the stop at a log flush (every 5 steps of an epoch, or its end: 17 steps),
    none is left waiting, rank 0 prints the one stop line, and the exit status is 0."""
    args = [a for a in ARGS if a != "20"]
    args[args.index("--steps") + 1:args.index("--steps") + 1] = ["100000"]
    r = torchrun(2, args + ["--time", "2s", "--out", str(tmp_path / "t")])
    assert r.returncode == 0, r.stderr[-3000:]
    step = load_checkpoint(tmp_path / "t")["step"]
    assert 0 < step < 100000 and step % 17 % 5 == 0  # the window restarts at each epoch's end
    assert r.stdout.count("gankit: time budget 2s reached at step") == 1
    assert f"reached at step {step} of 100000" in r.stdout
