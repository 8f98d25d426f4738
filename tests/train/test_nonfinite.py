"""Non-finite losses: rolled back to the last good state with halved learning rates, or a clear stop."""
import math

import pytest
import torch

import gankit
from gankit.checkpoint import load_checkpoint
from gankit.training.loop import Trainer
from gankit.rundir import read_log


def cfg(**kw):
    over = {"data.name": "digits", "train.steps": 60, "train.progress": False, "train.log_every": 10,
            "train.sample_every": 0, "train.checkpoint_every": 0}
    over.update(kw)
    return gankit.preset("seed").with_overrides(over)


def poison_at(steps):
    """An on_log hook that writes NaN into G's last bias right after the flush at each of ``steps``."""
    pending = set(steps)

    def hook(tr):
        if tr.step in pending:
            pending.discard(tr.step)
            with torch.no_grad():
                tr.G.net[-2].bias[0] = float("nan")
    return hook


def test_a_nan_is_rolled_back_and_the_run_finishes(tmp_path):
    msgs = []
    tr = Trainer(cfg(), tmp_path / "r", log=msgs.append)
    tr.add_callback("on_log", poison_at({10}))
    res = tr.fit()
    assert res.step == 60
    assert any("non-finite loss at step 11" in m and "rolled back to step 10" in m and "retry 1 of 3" in m
               for m in msgs)
    log = read_log(tmp_path / "r" / "log.csv")
    assert log["step"] == [float(s) for s in range(1, 61)]  # no gap, no duplicate
    assert all(math.isfinite(v) for v in log["d_loss"] + log["g_loss"])
    state = load_checkpoint(tmp_path / "r")
    assert state["opt_G"]["param_groups"][0]["lr"] == pytest.approx(0.5e-3)
    assert state["opt_D"]["param_groups"][0]["lr"] == pytest.approx(0.5e-3)
    assert state["lr_scale"] == 0.5
    assert all(torch.isfinite(v).all() for v in state["G"].values())


def wrap_step(tr, before=None, after=None):
    """Replace the trainer's step: ``before(step)`` / ``after(step)`` run around the update that makes step
    number ``step`` (1-based, as log.csv counts), each attempt of it."""
    inner = tr.train_step

    def step(batches, labels=None, inputs=None):
        n = tr.step + 1
        if before is not None:
            before(n)
        out = inner(batches, labels, inputs)
        if after is not None:
            after(n)
        return out
    tr.train_step = step


def poison(tr):
    with torch.no_grad():
        tr.G.net[-2].bias[0] = float("nan")


def finite(state):
    return all(torch.isfinite(v).all() for k in ("G", "D") for v in state[k].values())


def test_retries_compound_the_learning_rate(tmp_path):
    """Two rollbacks before any good flush: the rates are 1/4 of the configured ones, as lr_scale says."""
    tr = Trainer(cfg(), tmp_path / "r", log=lambda *_: None)
    attempts, lrs = [], []

    def before(n):
        if n == 15:
            attempts.append(n)
            if len(attempts) <= 2:
                poison(tr)
        if n == 16:
            lrs.append((tr.opt_G.param_groups[0]["lr"], tr.opt_D.param_groups[0]["lr"]))
    wrap_step(tr, before=before)
    res = tr.fit()
    assert res.step == 60 and len(attempts) == 3
    assert lrs[-1] == (pytest.approx(0.25e-3), pytest.approx(0.25e-3))
    state = load_checkpoint(tmp_path / "r")
    assert state["lr_scale"] == 0.25
    assert state["opt_G"]["param_groups"][0]["lr"] == pytest.approx(0.25e-3)
    assert state["opt_D"]["param_groups"][0]["lr"] == pytest.approx(0.25e-3)


def test_an_update_that_breaks_the_weights_at_a_flush_is_rolled_back(tmp_path):
    """The window's last update makes the weights NaN while every logged loss is finite: the flush must not
    snapshot that state; the run rolls back to the previous flush and finishes finite."""
    msgs = []
    tr = Trainer(cfg(), tmp_path / "r", log=msgs.append)
    done = []

    def after(n):
        if n == 27 and not done:  # 17 steps an epoch: windows end at 10, 17, 27
            done.append(n)
            poison(tr)
    wrap_step(tr, after=after)
    res = tr.fit()
    assert res.step == 60
    assert any("non-finite weights after step 27" in m and "rolled back to step 17" in m for m in msgs)
    state = load_checkpoint(tmp_path / "r")
    assert finite(state) and state["lr_scale"] == 0.5
    log = read_log(tmp_path / "r" / "log.csv")
    assert log["step"] == [float(s) for s in range(1, 61)]


def test_persistent_nans_stop_with_a_message_after_bounded_retries(tmp_path):
    """Step 14 fails every time: after 2 rollbacks the run replays to step 13 and keeps that (finite) state in
    nonfinite_step_14.pt, the state step 14 starts from."""
    tr = Trainer(cfg(**{"train.nonfinite_retries": 2}), tmp_path / "r", log=lambda *_: None)
    wrap_step(tr, before=lambda n: poison(tr) if n == 14 else None)
    with pytest.raises(gankit.GankitError, match=r"non-finite loss at step 14 .* after 2 rollbacks.*"
                                                 r"nonfinite_step_14.pt holds the state step 14 starts from"):
        tr.fit()
    state = load_checkpoint(tmp_path / "r" / "checkpoints" / "nonfinite_step_14.pt")
    assert state["step"] == 13 and state["nonfinite"]["step"] == 14 and state["nonfinite"]["what"] == "loss"
    assert finite(state) and state["lr_scale"] == 0.25
    log = read_log(tmp_path / "r" / "log.csv")
    assert log["step"] == [float(s) for s in range(1, 14)]
    assert all(math.isfinite(v) for v in log["d_loss"] + log["g_loss"])


def test_nan_weights_are_never_saved_on_interrupt(tmp_path):
    """A stop request right after an update that broke the weights: last.pt holds the last good state."""
    tr = Trainer(cfg(), tmp_path / "r", log=lambda *_: None)

    def after(n):
        if n == 15:
            poison(tr)
            tr.stop()
    wrap_step(tr, after=after)
    res = tr.fit()
    assert res.step == 10
    state = load_checkpoint(tmp_path / "r")
    assert state["step"] == 10 and finite(state)
    assert read_log(tmp_path / "r" / "log.csv")["step"] == [float(s) for s in range(1, 11)]


def test_a_checkpoint_with_nan_weights_is_refused(tmp_path):
    """Resuming or sampling a checkpoint whose weights hold NaN: one line, exit 2, nothing written."""
    import subprocess
    import sys

    gankit.train(cfg(**{"train.steps": 20}), tmp_path / "r", log=lambda *_: None)
    ck = tmp_path / "r" / "checkpoints" / "last.pt"
    state = torch.load(ck, weights_only=True)
    state["G"]["net.0.weight"][0, 0] = float("nan")
    torch.save(state, ck)
    before = ck.read_bytes()
    with pytest.raises(gankit.GankitError, match=r"NaN/inf at step 20, before training"):
        Trainer(None, tmp_path / "r", resume=True, log=lambda *_: None).fit()
    r = subprocess.run([sys.executable, "-m", "gankit", "sample", str(ck), "--n", "4", "--out",
                        str(tmp_path / "s.npz")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "hold NaN/inf" in r.stderr and not (tmp_path / "s.npz").exists()
    assert ck.read_bytes() == before
