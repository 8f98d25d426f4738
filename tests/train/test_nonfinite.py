"""Non-finite losses: rolled back to the last good state with halved learning rates, or a clear stop."""
import math

import pytest
import torch

import gankit
from gankit.train.checkpoint import load_checkpoint
from gankit.train.loop import Trainer
from gankit.train.rundir import read_log


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


def test_persistent_nans_stop_with_a_message_after_bounded_retries(tmp_path):
    tr = Trainer(cfg(**{"train.nonfinite_retries": 2}), tmp_path / "r", log=lambda *_: None)

    def always(t):
        with torch.no_grad():
            t.G.net[-2].bias[0] = float("nan")
    tr.add_callback("on_log", always)
    tr.G.net[-2].bias.data[0] = float("nan")
    with pytest.raises(gankit.GankitError, match=r"non-finite loss at step 1 .* after 2 rollbacks"):
        tr.fit()
    assert (tmp_path / "r" / "checkpoints" / "nonfinite_step_1.pt").is_file()
