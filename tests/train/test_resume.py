"""Exact resume and crash safety: stop anywhere, resume, get the same bits."""
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

import gankit
from gankit.checkpoint import load_checkpoint


def cfg(steps, **kw):
    over = {"data.name": "digits", "train.steps": steps, "train.progress": False, "train.log_every": 7,
            "train.sample_every": 0, "train.checkpoint_every": 0}
    over.update(kw)
    return gankit.preset("seed").with_overrides(over)


def params(path):
    state = load_checkpoint(path)
    return state["G"], state["D"], state["opt_G"], state["opt_D"]


def assert_same_state(a, b):
    for sa, sb in zip(params(a), params(b)):
        flat_a, flat_b = _flatten(sa), _flatten(sb)
        assert flat_a.keys() == flat_b.keys()
        for k in flat_a:
            if torch.is_tensor(flat_a[k]):
                assert torch.equal(flat_a[k], flat_b[k]), k
            else:
                assert flat_a[k] == flat_b[k], k


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def quiet(*_):
    pass


def assert_split_run_equals_full_run(make_cfg, n, tmp_path):
    """2n steps in one go vs n steps, stop, resume, n more: the same parameters, optimizer state and log."""
    full = gankit.train(make_cfg(2 * n), tmp_path / "full", log=quiet)
    gankit.train(make_cfg(n), tmp_path / "split", log=quiet)
    resumed = gankit.train(make_cfg(2 * n), tmp_path / "split", resume=True, log=quiet)
    assert resumed.step == 2 * n
    assert_same_state(full.checkpoint(), resumed.checkpoint())
    assert (tmp_path / "full" / "log.csv").read_text() == (tmp_path / "split" / "log.csv").read_text()


@pytest.mark.parametrize("n", [10, 17, 25])  # 17 steps = one epoch of digits: before, at, after the boundary
def test_n_plus_n_steps_equals_2n_steps_bit_for_bit(tmp_path, n):
    assert_split_run_equals_full_run(cfg, n, tmp_path)


def test_resume_refuses_a_changed_model(tmp_path):
    gankit.train(cfg(5), tmp_path / "r", log=quiet)
    with pytest.raises(gankit.GankitError, match="model settings differ"):
        gankit.train(cfg(10, **{"model.g_hidden": "64"}), tmp_path / "r", resume=True, log=quiet)


def _start(out, steps, extra=()):
    cmd = [sys.executable, "-m", "gankit", "train", "--dataset", "digits", "--steps", str(steps), "--out", str(out),
           "--train.log_every", "5", "--train.sample_every", "0", "--train.checkpoint_every", "3", *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(path, timeout=60):
    t0 = time.time()
    while not path.exists():
        if time.time() - t0 > timeout:
            raise TimeoutError(path)
        time.sleep(0.02)


def test_sigint_saves_a_checkpoint_and_resume_finishes(tmp_path):
    out = tmp_path / "r"
    p = _start(out, 100_000)
    _wait_for(out / "checkpoints" / "last.pt")
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "resume with: gankit train --resume" in err
    step = load_checkpoint(out)["step"]
    assert 0 < step < 100_000
    # resume to a short total: finishes at once, the log has one row per step
    r = subprocess.run([sys.executable, "-m", "gankit", "train", "--resume", str(out), "--steps", str(step + 10)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = (out / "log.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, step + 11))


def test_kill_9_at_random_moments_never_loses_a_checkpoint(tmp_path):
    """SIGKILL during training (and so, sometimes, during a checkpoint write), then resume, five times over;
    the result equals an uninterrupted run."""
    rng = random.Random(0)
    total = 17 * 14  # 14 epochs of digits; a checkpoint every epoch
    out = tmp_path / "killed"
    last_step = 0
    for attempt in range(5):
        extra = ["--resume", str(out)] if attempt else []
        p = _start(out, total, extra) if not attempt else subprocess.Popen(
            [sys.executable, "-m", "gankit", "train", "--resume", str(out), "--steps", str(total)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for(out / "checkpoints" / "last.pt")
        time.sleep(rng.uniform(0.0, 0.6))
        p.kill()
        p.communicate()
        state = load_checkpoint(out)  # never torn: the atomic rename leaves old or new
        assert state["step"] >= last_step
        last_step = state["step"]
    r = subprocess.run([sys.executable, "-m", "gankit", "train", "--resume", str(out), "--steps", str(total)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert not list(out.rglob("*.tmp"))  # leftovers of killed writes are cleaned on resume
    ref = _start(tmp_path / "ref", total)
    assert ref.wait(timeout=300) == 0
    assert_same_state(tmp_path / "ref", out)
    assert (tmp_path / "ref" / "log.csv").read_text() == (out / "log.csv").read_text()


def test_deterministic_switch_turns_on_deterministic_kernels(tmp_path):
    from gankit.training.loop import Trainer

    seen = []
    try:
        tr = Trainer(cfg(5, **{"train.deterministic": True}), tmp_path / "r", log=quiet)
        tr.add_callback("on_log", lambda t: seen.append(torch.are_deterministic_algorithms_enabled()))
        tr.fit()
    finally:
        torch.use_deterministic_algorithms(False)
    assert seen and all(seen)


@pytest.mark.parametrize("n", [7, 12])  # digits at batch 128: 14 steps per epoch; 2n = 14 and 24
def test_conv_preset_resumes_bit_for_bit(tmp_path, n):
    """dcgan-mnist (BatchNorm running stats, two-pass D) with tiny widths on digits, across an epoch boundary."""
    def dc(steps):
        return gankit.preset("dcgan-mnist").with_overrides({
            "data.name": "digits", "train.steps": steps, "train.progress": False, "train.batch_size": 128,
            "model.g_channels": 4, "model.d_channels": 4, "train.sample_every": 0, "train.checkpoint_every": 0,
            "train.log_every": 5})
    assert_split_run_equals_full_run(dc, n, tmp_path)


def test_python_and_numpy_rng_states_survive_resume(tmp_path):
    import random

    import numpy as np

    random.seed(5)
    np.random.seed(6)
    gankit.train(cfg(3), tmp_path / "r", log=quiet)
    expect = (random.random(), np.random.rand())
    random.seed(99)
    np.random.seed(99)
    from gankit.training.loop import Trainer

    Trainer(cfg(3), tmp_path / "r", resume=True, log=quiet)  # restores the states saved at step 3
    assert (random.random(), np.random.rand()) == expect
