"""scripts/time_curves.py on tiny settings: the seed preset with 16-wide nets on 8x8 digits, budgets of a second
or two, 200 samples scored by the pinned digits evaluator. A longer budget resumes the shorter run; a rerun
trains nothing and writes the same section; --cached needs no run folders; only the marked region of the doc
changes; a loaded machine is flagged."""
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from gankit.checkpoint import load_checkpoint

BEFORE = "# Zoo\n\nkept text before, with trailing spaces  \n\n"
AFTER = "\n\n## Later section\n\nkept after\n"


@pytest.fixture(scope="module")
def tc(load_script):
    return load_script("time_curves")


def tiny(root: Path, budgets: str, seeds_at: str, *extra: str) -> list[str]:
    # train.epochs 10,000: the schedule cannot end inside the budgets, so each point stops by time
    return ["--presets", "seed,no-such-preset", "--dataset", "digits", "--override", "model.g_hidden=16",
            "--override", "model.d_hidden=16", "--override", "train.epochs=10000", "--n-samples", "200",
            "--budgets", budgets, "--seeds-at", seeds_at, "--runs", str(root / "runs"), "--doc",
            str(root / "ZOO.md"), *extra]


def region(text: str) -> str:
    return text[text.index("<!-- time-curves:start -->"):text.index("<!-- time-curves:end -->")]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def curves(tc, tmp_path_factory):
    """Two sessions: the 0.5s point alone, then 0.5s,1s with two seeds at 1s (seed 0's 1s resumes its 0.5s run)."""
    root = tmp_path_factory.mktemp("curves")
    (root / "ZOO.md").write_text(BEFORE + "<!-- time-curves:start -->\nold body\n<!-- time-curves:end -->" + AFTER)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))  # a quiet machine, whatever the neighbours do
        assert tc.main(tiny(root, "0.5s", "")) == 0
        at_first = root / "runs" / "seed" / "seed0" / "checkpoints" / "at_0.5s.pt"
        first = {"sha": sha(at_first), "step": load_checkpoint(at_first)["step"]}
        assert tc.main(tiny(root, "0.5s,1s", "1s:2")) == 0
    return root, first


def test_a_longer_budget_resumes_the_shorter_run_and_keeps_its_checkpoint(curves):
    root, first = curves
    run = root / "runs" / "seed" / "seed0"
    points = json.loads((root / "zoo" / "time_runs.json").read_text())["points"]
    assert sorted(points) == ["seed/seed0/0.5s", "seed/seed0/1s", "seed/seed1/1s"]
    p1, p2 = points["seed/seed0/0.5s"], points["seed/seed0/1s"]
    assert sha(run / "checkpoints" / "at_0.5s.pt") == first["sha"]  # the earlier point is kept, unchanged
    assert p1["steps"] == first["step"] < p2["steps"] == load_checkpoint(run / "checkpoints" / "at_1s.pt")["step"]
    assert p2["resumes"] == "0.5s" and p1["resumes"] is None and not p2["finished"]
    assert p1["wall_s"] >= 0.5 and p2["wall_s"] >= 1 and p2["wall_s"] == pytest.approx(p1["wall_s"] + p2["segment_s"])
    starts = [inv["step"] for inv in json.loads((run / "manifest.json").read_text())["invocations"]]
    assert starts == [0, p1["steps"]]  # one fresh start, then a resume from the 0.5s point's step
    seed1 = points["seed/seed1/1s"]
    assert seed1["resumes"] is None and seed1["wall_s"] >= 1  # extra seeds train straight to their budget
    for p in points.values():
        assert p["scores"]["n"] == 200 and p["scores"]["fd"] >= 0 and 0 <= p["scores"]["recall"] <= 1
        assert p["cores"] >= 1 and p["threads"] >= 1 and p["torch"] and len(p["load"]["load_before"]) == 3


def test_the_section_has_the_table_plot_grid_and_command(curves):
    root, _ = curves
    text = (root / "ZOO.md").read_text()
    body = region(text)
    assert text.startswith(BEFORE) and text.endswith(AFTER) and "old body" not in text
    assert "python scripts/time_curves.py --presets seed,no-such-preset --dataset digits" in body
    assert "--budgets 0.5s,1s --seeds-at 1s:2" in body
    rows = [ln for ln in body.splitlines() if ln.startswith("| seed |")]
    assert [r.split(" | ")[1] for r in rows] == ["0.5s", "1s"]
    assert "[" in rows[1] and "[" not in rows[0]  # the min-max over two seeds at 1s only
    assert "![FD and recall against the training budget](zoo/time_curves.png)" in body
    assert "![seed](zoo/time-seed.png)" in body
    assert (root / "zoo" / "time_curves.png").stat().st_size > 0 and (root / "zoo" / "time-seed.png").is_file()
    assert "CPU cores" in body and "Not run yet" not in body


def test_a_rerun_trains_nothing_and_cached_needs_no_run_folders(tc, curves, monkeypatch, capsys):
    root, _ = curves
    args = tiny(root, "0.5s,1s", "1s:2")
    doc, cache = (root / "ZOO.md").read_text(), (root / "zoo" / "time_runs.json").read_text()

    def refuse(*a, **k):
        raise AssertionError("trained or scored again")
    monkeypatch.setattr("gankit.training.loop.Trainer.__init__", refuse)
    monkeypatch.setattr(tc, "make_scorer", refuse)
    capsys.readouterr()
    assert tc.main(args) == 0
    out = capsys.readouterr().out
    assert "warning: unknown preset 'no-such-preset' skipped" in out
    assert (root / "ZOO.md").read_text() == doc and (root / "zoo" / "time_runs.json").read_text() == cache
    shutil.rmtree(root / "runs")
    assert tc.main(args + ["--cached"]) == 0  # --cached stays out of the command the doc states
    assert (root / "ZOO.md").read_text() == doc


def test_cached_lists_what_is_missing_and_replaces_only_the_marked_region(tc, tmp_path):
    doc = tmp_path / "ZOO.md"
    doc.write_text(BEFORE + "<!-- time-curves:start -->\nstale\n<!-- time-curves:end -->" + AFTER)
    assert tc.main(tiny(tmp_path, "1s,2s", "2s:2", "--cached")) == 0
    text = doc.read_text()
    assert text.startswith(BEFORE + "<!-- time-curves:start -->\n") and text.endswith("<!-- time-curves:end -->"
                                                                                       + AFTER)
    assert "Not run yet (3): seed/seed0/1s, seed/seed0/2s, seed/seed1/2s" in text
    assert not (tmp_path / "runs").exists()
    plain = tmp_path / "plain.md"  # no markers yet: the region goes at the end, under its heading
    plain.write_text("# Zoo\n\nkept\n")
    assert tc.main(tiny(tmp_path, "1s", "", "--cached", "--doc", str(plain))) == 0
    assert plain.read_text().startswith("# Zoo\n\nkept\n\n## Best samples per CPU-minute\n\n<!-- time-curves:start")


def test_dry_run_prints_the_plan_and_writes_nothing(tc, tmp_path, capsys):
    assert tc.main(tiny(tmp_path, "1s,2s", "2s:3", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "seed/seed0/2s: resume 1s to 2s, score" in out and "seed/seed2/2s: train 2s from scratch" in out
    assert "4 points to do of 4; estimated" in out
    assert list(tmp_path.iterdir()) == []


def test_a_loaded_machine_is_flagged(tc, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert tc.main(tiny(tmp_path, "0.3s", "")) == 0
    out = capsys.readouterr().out
    assert "warning: the 1-minute load average reached 9.00 during seed/seed0/0.3s" in out
    assert "not a quiet-machine number" in out
    (p,) = json.loads((tmp_path / "zoo" / "time_runs.json").read_text())["points"].values()
    assert p["load"]["load_before"] == [9.0, 9.0, 9.0] and p["load"]["quiet"] is False
    assert "| seed | 0.3s † |" in (tmp_path / "ZOO.md").read_text()


def test_the_gpu_row_has_its_own_files_region_and_defaults_and_leaves_the_cpu_table_alone(tc, tmp_path, capsys):
    """--device cuda --cached needs no GPU: it writes the GPU row's region (15s, 60s, 5m; three seeds at 60s) at
    the end under its own heading and its own JSON and plot; the CPU table's region and files are not touched."""
    doc = tmp_path / "ZOO.md"
    cpu_region = "<!-- time-curves:start -->\ncpu body\n<!-- time-curves:end -->"
    doc.write_text(BEFORE + cpu_region + AFTER)
    args = ["--presets", "seed,quick-mnist", "--device", "cuda", "--doc", str(doc), "--runs", str(tmp_path / "r")]
    assert tc.main(args + ["--cached"]) == 0
    text = doc.read_text()
    assert text.startswith(BEFORE + cpu_region + AFTER + "\n## Best samples per GPU-minute (cuda)\n\n"
                           "<!-- time-curves-cuda:start -->\nEvery number here comes from `python "
                           "scripts/time_curves.py --presets seed,quick-mnist --device cuda")
    assert text.endswith("<!-- time-curves-cuda:end -->\n")
    assert ("Not run yet (10): seed/seed0/15s, quick-mnist/seed0/15s, seed/seed0/1m, seed/seed1/1m, seed/seed2/1m, "
            "quick-mnist/seed0/1m, quick-mnist/seed1/1m, quick-mnist/seed2/1m, seed/seed0/5m, quick-mnist/seed0/5m"
            in text)
    assert sorted(f.name for f in (tmp_path / "zoo").iterdir()) == ["time_runs_cuda.json"]  # no plot of nothing
    assert "![FD and recall" not in text
    assert json.loads((tmp_path / "zoo" / "time_runs_cuda.json").read_text())["protocol"]["device"] == "cuda"
    assert tc.main(args + ["--cached"]) == 0 and doc.read_text() == text  # a rerun replaces its own region only
    assert tc.main(tiny(tmp_path, "1s", "", "--cached")) == 0  # the CPU table's rerun leaves the GPU row
    after = doc.read_text()
    assert "<!-- time-curves-cuda:start -->\nEvery number here comes from `python scripts/time_curves.py --presets " \
           "seed,quick-mnist --device cuda" in after and "cpu body" not in after
    capsys.readouterr()
    assert tc.main(args + ["--dry-run", "--order", "chain"]) == 0  # each run's budgets in a row
    plan = [ln.split(":")[0].strip() for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ")]
    assert plan == ["seed/seed0/15s", "seed/seed0/1m", "seed/seed0/5m", "seed/seed1/1m", "seed/seed2/1m",
                    "quick-mnist/seed0/15s", "quick-mnist/seed0/1m", "quick-mnist/seed0/5m", "quick-mnist/seed1/1m",
                    "quick-mnist/seed2/1m"]


def test_order_chain_starts_no_run_that_cannot_finish_in_max_minutes(tc, tmp_path):
    """Each run (0.5s then 1s for seed 0; 1s for seed 1) needs its budget plus ~6 s a stop of setup and scoring
    (the script's estimate): --max-minutes 0.1 (6 s) starts none under --order chain, where --order budget starts
    the first point at once."""
    args = tiny(tmp_path, "0.5s,1s", "1s:2", "--max-minutes", "0.1")
    assert tc.main(args + ["--order", "chain"]) == 0
    assert json.loads((tmp_path / "zoo" / "time_runs.json").read_text())["points"] == {}
    assert "Not run yet (3)" in (tmp_path / "ZOO.md").read_text()
    assert tc.main(args) == 0
    assert "seed/seed0/0.5s" in json.loads((tmp_path / "zoo" / "time_runs.json").read_text())["points"]


def test_bad_arguments_are_refused_in_one_line(tc, tmp_path, capsys):
    for extra, match in ((["--seeds-at", "5m:3"], "5m is not one of --budgets"),
                         (["--override", "model.g_hidden"], "expected KEY=VALUE"),
                         (["--device", "gpu0"], "--device 'gpu0': ")):
        with pytest.raises(SystemExit):
            tc.main(tiny(tmp_path, "1s", "") + extra)
        assert match in capsys.readouterr().err


def test_a_changed_preset_is_retrained_and_retrain_forces_it(tc, curves, tmp_path, monkeypatch, capsys):
    root = tmp_path / "copy"
    shutil.copytree(curves[0], root)
    args = tiny(root, "0.5s,1s", "1s:2")
    cache = root / "zoo" / "time_runs.json"
    before = cache.read_text()
    (fp,) = {p["config_sha"] for p in json.loads(before)["points"].values()}  # one config: one fingerprint
    assert len(fp) == 16 and int(fp, 16) >= 0
    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert tc.main(args + ["--dry-run"]) == 0  # unchanged: nothing to do
    assert "0 points to do of 3" in capsys.readouterr().out
    from gankit import config

    desc, over = config.PRESETS["seed"]
    monkeypatch.setitem(config.PRESETS, "seed", (desc, {**over, "optim.g_lr": 5e-4}))
    assert tc.main(args + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "seed: its points were trained under another config" in out and "3 points to do of 3" in out
    assert cache.read_text() == before  # a dry run changes nothing
    assert tc.main(args + ["--cached"]) == 0  # the stale numbers leave the JSON and the doc
    assert json.loads(cache.read_text())["points"] == {}
    assert "Not run yet (3)" in (root / "ZOO.md").read_text() and not (root / "zoo" / "time-seed.png").exists()
    monkeypatch.setitem(config.PRESETS, "seed", (desc, over))
    (root / "zoo" / "time_runs.json").write_text(before)
    assert tc.main(args + ["--cached", "--retrain", "seed"]) == 0
    assert json.loads(cache.read_text())["points"] == {}
    assert "--retrain" not in region((root / "ZOO.md").read_text())


def test_a_key_added_to_gankit_leaves_the_points_valid_while_it_holds_its_default(tc, curves, tmp_path, monkeypatch,
                                                                                   capsys):
    """The stored fingerprints cover the config keys of their day (the JSON's config_keys). A key added since is
    left out of the hash at its default (the runs did not change) and the points are restamped to today's keys; a
    preset that sets it is stale. Simulated by storing fingerprints taken without model.d_mbstd."""
    from types import SimpleNamespace

    root = tmp_path / "copy"
    shutil.copytree(curves[0], root)
    args = tiny(root, "0.5s,1s", "1s:2")
    cache = root / "zoo" / "time_runs.json"
    data = json.loads(cache.read_text())
    today = tc.config_keys()
    assert data["config_keys"] == today and "model.d_mbstd" in today
    old_keys = [k for k in today if k != "model.d_mbstd"]
    ns = SimpleNamespace(dataset="digits", device="cpu", threads=0,
                         overrides={"model.g_hidden": "16", "model.d_hidden": "16", "train.epochs": "10000"})
    now, then = tc.fingerprint(ns, "seed"), tc.fingerprint(ns, "seed", old_keys)
    assert {p["config_sha"] for p in data["points"].values()} == {now} and then != now
    old = {**data, "config_keys": old_keys,
           "points": {k: {**p, "config_sha": then} for k, p in data["points"].items()}}
    cache.write_text(json.dumps(old))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert tc.main(args + ["--dry-run"]) == 0
    assert "0 points to do of 3" in capsys.readouterr().out and json.loads(cache.read_text()) == old
    assert tc.main(args + ["--cached"]) == 0  # restamped to today's keys, nothing dropped
    new = json.loads(cache.read_text())
    assert new["config_keys"] == today and new["points"] == data["points"]
    cache.write_text(json.dumps(old))
    from gankit import config

    desc, over = config.PRESETS["seed"]
    monkeypatch.setitem(config.PRESETS, "seed", (desc, {**over, "model.d_mbstd": 4}))
    assert tc.fingerprint(ns, "seed", old_keys) is None
    assert tc.main(args + ["--dry-run"]) == 0
    assert "3 points to do of 3" in capsys.readouterr().out
