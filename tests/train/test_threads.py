"""The CPU thread count is part of the run: fixed by default, recorded, restored on resume; adaptive only on request.

CPU matmuls at MNIST sizes can differ between thread counts (MKL/oneDNN block the summed dimension differently),
so these tests train on real 784-wide Fashion-MNIST for hundreds of steps with a busy process beside them.
"""
import contextlib
import json
import os
import subprocess
import sys

import pytest
import torch

import gankit
from gankit.config import preset_config
from gankit.models import build_discriminator, build_generator
from gankit.checkpoint import load_checkpoint
from gankit.training.loop import Trainer
from gankit.training.threads import ThreadTuner, matmul_only


@contextlib.contextmanager
def busy_process():
    """A neighbour that keeps one core busy, as on a shared machine."""
    p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield p
    finally:
        p.kill()
        p.wait()


def gankit_cli(args, cwd, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    r = subprocess.run([sys.executable, "-m", "gankit", *args], cwd=cwd, capture_output=True, text=True, env=env,
                       timeout=600)
    return r


def fashion_args(fashion_dir, steps, out, *extra):
    return ["train", "--dataset", "fashion-mnist", "--data-dir", str(fashion_dir), "--steps", str(steps),
            "--out", str(out), "--no-progress", "--train.sample_every", "0", "--train.log_every", "25", *extra]


def weights(run):
    state = load_checkpoint(run)
    return state, {k: v for part in ("G", "D") for k, v in state[part].items()}


def assert_bit_identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs by {(a[k] - b[k]).abs().max().item():.3g}"


def test_default_thread_count_stays_fixed_under_load(tmp_path, fashion_dir):
    """train.threads 0 takes the process's count once and keeps it for every step, whatever the load."""
    cfg = gankit.preset("seed").with_overrides({
        "data.name": "fashion-mnist", "data.dir": str(fashion_dir), "train.steps": 400, "train.log_every": 10,
        "train.progress": False, "train.sample_every": 0})
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # a 2-core machine's default (the suite itself runs on one thread)
    try:
        seen = []
        with busy_process():
            tr = Trainer(cfg, tmp_path / "r", log=lambda *_: None)
            tr.add_callback("on_log", lambda t: seen.append(torch.get_num_threads()))
            tr.fit()
    finally:
        torch.set_num_threads(before)
    assert len(seen) == 40 and set(seen) == {2}
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["threads"] == 2
    assert load_checkpoint(tmp_path / "r")["threads"] == 2


def test_same_command_gives_the_same_run_quiet_or_under_load(tmp_path, fashion_dir):
    """The README's promise at MNIST size: a 400-step Fashion-MNIST run, once alone and once next to a busy
    process, with default settings, ends bit-identical."""
    quiet = gankit_cli(fashion_args(fashion_dir, 400, "quiet"), tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    with busy_process():
        loaded = gankit_cli(fashion_args(fashion_dir, 400, "loaded"), tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert_bit_identical(weights(tmp_path / "quiet")[1], weights(tmp_path / "loaded")[1])
    assert (tmp_path / "quiet" / "log.csv").read_text() == (tmp_path / "loaded" / "log.csv").read_text()


def test_resume_under_load_equals_the_uninterrupted_run(tmp_path, fashion_dir):
    """200 steps + --resume to 400, next to a busy process, equals 400 straight steps bit for bit."""
    straight = gankit_cli(fashion_args(fashion_dir, 400, "straight"), tmp_path)
    assert straight.returncode == 0, straight.stderr
    with busy_process():
        first = gankit_cli(fashion_args(fashion_dir, 200, "split"), tmp_path)
        assert first.returncode == 0, first.stderr
        second = gankit_cli(["train", "--resume", "split", "--steps", "400", "--no-progress"], tmp_path)
        assert second.returncode == 0, second.stderr
    assert_bit_identical(weights(tmp_path / "straight")[1], weights(tmp_path / "split")[1])
    assert (tmp_path / "straight" / "log.csv").read_text() == (tmp_path / "split" / "log.csv").read_text()


def test_resume_restores_the_runs_thread_count(tmp_path, fashion_dir):
    """A run started with 1 thread resumes with 1 thread in a process whose default is 2; asking for another
    count on resume is allowed, with one line saying the result will not be bit-identical."""
    first = gankit_cli(fashion_args(fashion_dir, 100, "r"), tmp_path, {"OMP_NUM_THREADS": "1"})
    assert first.returncode == 0, first.stderr
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["threads"] == 1
    again = gankit_cli(["train", "--resume", "r", "--steps", "200", "--no-progress"], tmp_path,
                       {"OMP_NUM_THREADS": "2"})
    assert again.returncode == 0, again.stderr
    assert "thread" not in again.stderr + again.stdout
    assert load_checkpoint(tmp_path / "r")["threads"] == 1
    other = gankit_cli(["train", "--resume", "r", "--steps", "300", "--no-progress", "--train.threads", "2"],
                       tmp_path)
    assert other.returncode == 0, other.stderr
    notes = [ln for ln in (other.stdout + other.stderr).splitlines() if "train.threads 2 differs" in ln]
    assert len(notes) == 1 and "not be bit-identical" in notes[0]
    assert load_checkpoint(tmp_path / "r")["threads"] == 2


@pytest.mark.slow
def test_wide_mlp_quiet_and_loaded_are_bit_identical(tmp_path, fashion_dir):
    """The issue's wider MLP (1024/512 G, 1024 D), where 1 and 2 threads were seen to differ by up to 0.31."""
    wide = ["--model.g_hidden", "1024,512", "--model.d_hidden", "1024"]
    quiet = gankit_cli(fashion_args(fashion_dir, 200, "quiet", *wide), tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    with busy_process():
        loaded = gankit_cli(fashion_args(fashion_dir, 200, "loaded", *wide), tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert_bit_identical(weights(tmp_path / "quiet")[1], weights(tmp_path / "loaded")[1])


def test_only_matmul_models_are_tuned():
    seed = preset_config("seed").model
    assert matmul_only(build_generator(seed, (1, 8, 8)), build_discriminator(seed, (1, 8, 8)))
    dc = gankit.preset("dcgan-mnist").model
    assert not matmul_only(build_generator(dc, (1, 28, 28)), build_discriminator(dc, (1, 28, 28)))


def test_adaptive_threads_is_opt_in_and_recorded(tmp_path):
    """train.adaptive_threads turns the tuner on (the manifest says so); the default leaves it off."""
    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for name, adaptive in (("off", False), ("on", True)):
            cfg = gankit.preset("seed").with_overrides({
                "data.name": "digits", "train.steps": 170, "train.log_every": 5, "train.progress": False,
                "train.sample_every": 0, "train.adaptive_threads": adaptive})
            tr = Trainer(cfg, tmp_path / name, log=lambda *_: None)
            counts = []
            tr.add_callback("on_log", lambda t, c=counts: c.append(torch.get_num_threads()))
            tr.fit()
            seen.append(set(counts))
            manifest = json.loads((tmp_path / name / "manifest.json").read_text())
            assert manifest["threads_adaptive"] is adaptive
    finally:
        torch.set_num_threads(before)
    assert seen[0] == {2}
    assert seen[1] == {1, 2}  # the tuner probes the other count at window 3 whatever the timings


def test_adaptive_threads_is_refused_where_it_cannot_apply(tmp_path, refused):
    """A conv model or several seeds at once: one line, exit 2, and no run folder."""
    dc = ["train", "--preset", "dcgan-mnist", "--dataset", "digits", "--steps", "2", "--device", "cpu",
          "--train.adaptive_threads", "true", "--out", tmp_path / "dc"]
    refused(dc, tmp_path, r"error: train\.adaptive_threads .* only MLP and toy models")
    seeds = ["train", "--dataset", "digits", "--steps", "2", "--seeds", "0-1", "--train.adaptive_threads", "true",
             "--out", tmp_path / "ens"]
    refused(seeds, tmp_path, r"several seeds at once does not combine with train\.adaptive_threads")


@pytest.mark.parametrize("fast", [1, 2])
def test_tuner_settles_on_the_faster_setting(fast):
    """Simulated step times: the setting named ``fast`` takes 1 ms a step, the other 3 ms."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        tuner = ThreadTuner(every=5)
        used = []  # the thread count each window ran with
        for _ in range(30):
            tuner.start()
            used.append(torch.get_num_threads())
            cost = 0.001 if used[-1] == fast else 0.003
            tuner.t0 -= cost * 10  # as if 10 steps had taken this long
            tuner.window_done(10)
        assert used[-20:].count(fast) >= 16  # only the occasional probe window leaves the faster setting
    finally:
        torch.set_num_threads(before)
