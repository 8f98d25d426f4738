"""train.time_limit / gankit train --time: parse, stop at a step boundary, save, say how to resume, resume exactly.

The budget stops are forced deterministically: the loops read ``gankit.training.budget.clock``, which the tests
replace by the trainer's step count (one "second" per step) instead of waiting.
"""
import itertools

import pytest

import gankit
from gankit import cli
from gankit.config import RunConfig
from gankit.errors import GankitError
from gankit.training import budget
from gankit.checkpoint import load_checkpoint
from gankit.training.ensemble import Ensemble, seed_configs
from gankit.training.loop import Trainer

from test_resume import assert_same_state  # tests/train on sys.path (rootdir-relative imports)


def quiet(*_):
    pass


def cfg(steps, **kw):
    over = {"data.name": "digits", "train.steps": steps, "train.progress": False, "train.log_every": 7,
            "train.sample_every": 0, "train.checkpoint_every": 0}
    over.update(kw)
    return gankit.preset("seed").with_overrides(over)


@pytest.mark.parametrize("text, seconds", [("90s", 90.0), ("10m", 600.0), ("1.5h", 5400.0), ("120", 120.0),
                                           ("0.5", 0.5), (" 2M ", 120.0), (".5h", 1800.0)])
def test_durations_parse_to_seconds(text, seconds):
    assert budget.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10x", "", "m", "-5s", "0", "0s", "1e3", "10 m s", "inf", "nan", "400d",
                                  "9000h"])
def test_bad_durations_are_refused_in_one_line(text):
    with pytest.raises(GankitError, match="--time") as e:
        budget.parse_duration(text)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("seconds, text", [(90, "90s"), (600, "10m"), (5400, "1.5h"), (3600, "1h"), (45.5, "45.5s"),
                                           (150, "150s")])
def test_durations_format_short(seconds, text):
    assert budget.format_duration(seconds) == text
    assert budget.parse_duration(text) == seconds


def test_config_field_is_typed_and_bounded():
    c = cfg(10).with_overrides({"train.time_limit": "600"})
    assert c.train.time_limit == 600.0
    assert RunConfig.from_dict(c.to_dict()) == c
    for bad in ("0", "-1", str(400 * 86400)):
        with pytest.raises(GankitError, match=r"train.time_limit must be in \(0, "):
            cfg(10).with_overrides({"train.time_limit": bad})
    with pytest.raises(GankitError, match="expects float"):
        cfg(10).with_overrides({"train.time_limit": "10m"})  # durations are the CLI's --time; the field is seconds


def test_cli_refuses_a_bad_time_in_one_line(tmp_path, refused):
    refused(["train", "--dataset", "digits", "--steps", "5", "--time", "10x", "--out", tmp_path / "r"], tmp_path,
            r"--time '10x': expected a duration like 90s, 10m, 1.5h")
    refused(["train", "--dataset", "digits", "--steps", "5", "--time", "0s", "--out", tmp_path / "r"], tmp_path,
            r"--time '0s': must be more than 0")


def test_cli_time_sets_the_field_and_a_resume_drops_it(tmp_path, capsys):
    import json

    assert cli.main(["train", "--dataset", "digits", "--steps", "5", "--time", "1.5h", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["train"]["time_limit"] == 5400.0
    gankit.train(cfg(3, **{"train.time_limit": 60.0}), tmp_path / "r", log=quiet)
    assert cli.main(["train", "--resume", str(tmp_path / "r"), "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["train"]["time_limit"] is None
    assert cli.main(["train", "--resume", str(tmp_path / "r"), "--time", "90s", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["train"]["time_limit"] == 90.0


def test_train_help_shows_a_time_example_and_how_schedules_are_handled():
    lines = [ln for ln in cli.TRAIN_EXAMPLES.splitlines() if "--time" in ln]
    assert any(ln.strip().startswith("gankit train") and "--time 10m" in ln for ln in lines)
    assert "lr_schedule linear" in cli.TRAIN_EXAMPLES  # (tests/test_cli.py runs every example with --dry-run)


def _fit_with_step_clock(monkeypatch, c, out, **kw):
    """Train with the budget's clock reading the trainer's step: a budget of N "seconds" stops after N steps."""
    lines = []
    tr = Trainer(c, out, log=lines.append, **kw)
    monkeypatch.setattr(budget, "clock", lambda: float(tr.step))
    return tr.fit(), lines


def test_budget_stop_saves_at_that_step_and_resume_equals_the_straight_run(tmp_path, monkeypatch):
    """Digits, the linear lr schedule (it depends on the total length): stop by the budget at step 10 of 40
    (mid-epoch, mid log window), resume to 40: the same bits and log as 40 steps in one go."""
    over = {"optim.lr_schedule": "linear", "model.g_hidden": (32,), "model.d_hidden": (32,)}
    full = gankit.train(cfg(40, **over), tmp_path / "full", log=quiet)
    res, lines = _fit_with_step_clock(monkeypatch, cfg(40, **over, **{"train.time_limit": 10.0}), tmp_path / "split")
    assert res.stopped_by_time and not res.interrupted and res.step == 10
    assert load_checkpoint(res.checkpoint())["step"] == 10
    assert (tmp_path / "split" / "samples" / "final.png").is_file()
    assert lines[-1] == (f"gankit: time budget 10s reached at step 10 of 40; continue with: "
                         f"gankit.train(out={str(tmp_path / 'split')!r}, resume=True) (lr schedule linear is "
                         f"defined over 40 steps; resume to finish it)")
    log = (tmp_path / "split" / "log.csv").read_text().splitlines()
    assert log[-1].startswith("10,")
    resumed = gankit.train(out=tmp_path / "split", resume=True, log=quiet)  # no budget this time
    assert resumed.step == 40 and not resumed.stopped_by_time
    assert resumed.config.train.time_limit is None
    assert_same_state(full.checkpoint(), resumed.checkpoint())
    assert (tmp_path / "full" / "log.csv").read_text() == (tmp_path / "split" / "log.csv").read_text()


def test_resumed_run_gets_a_fresh_budget_and_a_budget_past_the_end_changes_nothing(tmp_path, monkeypatch):
    straight = gankit.train(cfg(30), tmp_path / "full", log=quiet)
    a, _ = _fit_with_step_clock(monkeypatch, cfg(30, **{"train.time_limit": 12.0}), tmp_path / "split")
    assert a.step == 12
    b, _ = _fit_with_step_clock(monkeypatch, cfg(30, **{"train.time_limit": 12.0}), tmp_path / "split",
                                resume=True)
    assert b.step == 24 and b.stopped_by_time  # counted from its own start, at step 12
    c, lines = _fit_with_step_clock(monkeypatch, cfg(30, **{"train.time_limit": 12.0}), tmp_path / "split",
                                    resume=True)
    assert c.step == 30 and not c.stopped_by_time  # finished inside the budget: a normal end
    assert not any("time budget" in ln for ln in lines)
    assert_same_state(straight.checkpoint(), c.checkpoint())


def test_cli_budget_stop_exits_0_with_the_line_and_resumes(tmp_path, monkeypatch, capsys):
    ticks = itertools.count()  # one clock read at the start and one per step: stops after 6 steps
    monkeypatch.setattr(budget, "clock", lambda: float(next(ticks)))
    out = tmp_path / "r"
    code = cli.main(["train", "--dataset", "digits", "--steps", "20", "--no-progress", "--time", "6",
                     "--train.sample_every", "0", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert f"gankit: time budget 6s reached at step 6 of 20; continue with: gankit train --resume {out}" in text
    assert "done:" not in text
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 6
    assert cli.main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert "done: 20 steps" in capsys.readouterr().out


def test_ensemble_honours_the_budget_and_resumes_exactly(tmp_path, monkeypatch):
    base = gankit.preset("pacgan-ring8").with_overrides({
        "model.g_hidden": (24, 24), "model.d_hidden": (16, 16), "model.maxout_pieces": 3, "data.size": 1200,
        "train.steps": 8, "train.epochs": None, "train.device": "cpu", "train.progress": False,
        "train.sample_every": 0, "train.checkpoint_every": 0, "train.log_every": 2})
    full = Ensemble(seed_configs(base, [0, 1]), [tmp_path / "full" / f"s{i}" for i in range(2)], log=quiet).fit()
    cfgs = seed_configs(base.with_overrides({"train.time_limit": 5.0}), [0, 1])
    outs = [tmp_path / "split" / f"s{i}" for i in range(2)]
    lines = []
    ens = Ensemble(cfgs, outs, log=lines.append)
    monkeypatch.setattr(budget, "clock", lambda: float(ens.step))
    res = ens.fit()
    assert [r.step for r in res] == [5, 5] and all(r.stopped_by_time and not r.interrupted for r in res)
    assert lines[-1].startswith("gankit: time budget 5s reached at step 5 of 8; continue with: ")
    resumed = Ensemble(seed_configs(base, [0, 1]), outs, resume=True, log=quiet).fit()
    assert [r.step for r in resumed] == [8, 8] and not resumed[0].stopped_by_time
    for a, b in zip(full, resumed):
        assert_same_state(a.checkpoint(), b.checkpoint())
        assert (a.run_dir / "log.csv").read_text() == (b.run_dir / "log.csv").read_text()
