"""Reading a run's evaluations (gankit.serve.evals): which files count, how each score becomes a row, and the
charts drawn from them."""
from __future__ import annotations

import json
import math
import re

from gankit.serve import svgplot
from gankit.serve.evals import charts, eval_report_step, fmt, label, read_evaluations


def record(step: int, fd: float, floor: float | None = 1.5, **extra) -> dict:
    """A metrics.jsonl line as gankit.metrics.callback writes it."""
    res = {"n_fake": 300, "n_real": 297, "fd": fd, "floor": {"n_fake": 300, "n_real": 297, "fd": floor}}
    if floor is None:
        res["floor"] = None
    return {"step": step, "epoch": step // 10, "seconds": 0.5, "metrics": {"fd300": res, **extra},
            "evaluator": "ab" * 32}


def test_which_files_are_evaluations(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        json.dumps(record(20, 40.0)) + "\nnot json\n[1, 2]\n" + json.dumps({"step": "x", "metrics": {}}) + "\n"
        + json.dumps(record(10, 80.0)) + "\n" + json.dumps({"step": True, "metrics": {"fd": {"fd": 1.0}}}) + "\n")
    eval_report = {"metrics": {"kid300": {"kid": 0.25, "kid_std": 0.01, "n_fake": 300, "n_real": 297,
                                          "floor": {"kid": 0.002, "kid_std": 0.001, "n_fake": 300}}},
                   "run": {"checkpoint": "x/checkpoints/last.pt", "step": 30, "dataset": "digits", "seed": 0}}
    (tmp_path / "eval.json").write_text(json.dumps(eval_report))
    (tmp_path / "config.json").write_text(json.dumps({"metrics": {}, "preset": "seed"}))  # no run.step
    (tmp_path / "manifest.json").write_text(json.dumps({"run": {"step": 3}}))  # no metrics
    (tmp_path / "seeds.json").write_text(json.dumps({"members": {"seed0": eval_report}, "summary": {}}))
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "eval.json").write_text(json.dumps(eval_report))  # only the folder's top level
    rows = read_evaluations(tmp_path)
    assert [(r["step"], r["label"], r["source"]) for r in rows] == [
        (10, "fd300", "metrics.jsonl"), (20, "fd300", "metrics.jsonl"), (30, "kid300", "eval.json")]
    kid = rows[-1]
    assert kid["text"] == "0.25 ± 0.01" and kid["floor"] == 0.002 and kid["floor_text"] == "0.002"
    assert (kid["metric"], kid["score"], kid["n_fake"]) == ("kid300", "kid", 300)
    assert eval_report_step(eval_report) == 30 and eval_report_step({"metrics": {}, "run": {"step": 1.5}}) is None
    assert read_evaluations(None) == [] and read_evaluations(tmp_path / "nowhere") == []


def test_scores_labels_and_numbers():
    assert label("fd5k", "fd") == "fd5k" and label("pr5k_k3", "precision") == "pr5k_k3 precision"
    assert label("modes2d", "modes") == "modes2d" and label("classes300", "kl_to_real") == "classes300 kl_to_real"
    assert [fmt(v) for v in (12.3456, 7, 0.0, 123456.7, math.inf, -math.inf, math.nan, None)] == [
        "12.35", "7", "0", "123456.7", "inf", "-inf", "nan", ""]


def test_every_numeric_score_is_a_row_and_counts_are_not(tmp_path):
    res = {"classes_reached": 7, "num_classes": 10, "kl_to_real": math.inf, "histogram": [0.5, 0.5],
           "n_fake": 300, "n_real": 297, "floor": None}
    ll = {"log_likelihood": -120.5, "se": 2.25, "sigma": 0.2, "caveat": "text", "n_fake": 300, "n_real": 10}
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 5, "metrics": {"classes300": res,
                                                                                "parzen": ll}}) + "\n")
    rows = read_evaluations(tmp_path)
    assert [(r["label"], r["value"], r["text"]) for r in rows] == [
        ("classes300 classes_reached", 7, "7"), ("classes300 kl_to_real", "inf", "inf"),
        ("parzen log_likelihood", -120.5, "-120.5 ± 2.25")]
    assert json.loads(json.dumps(rows, allow_nan=False)) == rows  # strict JSON: no NaN or Infinity


def test_charts_draw_each_score_against_step_with_its_floor(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(record(s, 100.0 / s)) + "\n" for s in (10, 20, 40)))
    [(lab, svg)] = charts(read_evaluations(tmp_path))
    assert lab == "fd300" and svg.count("<polyline") == 1 and len(svg.split('points="')[1].split('"')[0].split()) == 3
    assert "real-vs-real floor 1.5" in svg and svg.count('stroke-dasharray="4 3"') == 2
    # the floor (1.5) is drawn inside the chart although every score (2.5 .. 10) is far above it
    y = float(re.search(r'<line x1="56" x2="544" y1="([\d.]+)"[^>]*stroke-dasharray', svg).group(1))
    assert svgplot.TOP < y <= svgplot.H - svgplot.BOTTOM
    # a floor that changes between evaluations is a curve of its own, not one level
    (tmp_path / "metrics.jsonl").write_text(json.dumps(record(10, 9.0, 1.0)) + "\n"
                                            + json.dumps(record(20, 8.0, 2.0)) + "\n"
                                            + json.dumps(record(30, 7.0, None)) + "\n")
    [(_, svg)] = charts(read_evaluations(tmp_path))
    assert svg.count("<polyline") == 2 and "real-vs-real floor" in svg


def test_links_out_of_the_served_folder_are_not_read(tmp_path):
    outside, root = tmp_path / "outside", tmp_path / "root"
    outside.mkdir()
    (root / "run").mkdir(parents=True)
    (outside / "metrics.jsonl").write_text(json.dumps(record(10, 5.0)) + "\n")
    (outside / "eval.json").write_text(json.dumps({"metrics": {"fd300": {"fd": 1.0}}, "run": {"step": 3}}))
    (root / "run" / "metrics.jsonl").symlink_to(outside / "metrics.jsonl")
    (root / "run" / "eval.json").symlink_to(outside / "eval.json")
    assert read_evaluations(root / "run", root.resolve()) == []
    assert len(read_evaluations(root / "run")) == 2  # gankit report of a folder: the user's own links
