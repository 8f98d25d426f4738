"""Every evaluation of a run, read from its folder, as flat rows for tables and as charts against step.

Evaluations come from two places in the run folder (nothing below it, nothing it links to outside ``root``):

- ``metrics.jsonl``: one line per ``gankit train --eval-every`` evaluation,
  ``{"step", "epoch", "seconds", "metrics": {name: result}, "evaluator"}``;
- every ``*.json`` file at the top of the folder that is a ``gankit eval --json`` report of one run:
  an object with ``"metrics": {name: result}`` and ``"run": {"step": int, ...}`` (e.g. ``RUN/eval.json``).
  Other JSON files (``config.json``, ``manifest.json``, a ``--seeds`` summary) are not reports and are skipped.

A *result* is what :mod:`gankit.metrics.evaluate` computes for one metric name, e.g. ``{"fd": 12.3,
"n_fake": 5000, "n_real": 1797, "floor": {"fd": 0.41, "n_fake": 5000, ...}}``. Each of its numbers is one
*score* (``fd``, ``kid``, ``precision``, ``recall``, ``classes_reached``, ...) except sample counts, sizes and
spreads (``kid_std``, ``is_std``, ``se``), which are shown next to the score they belong to.

Labels and chart text come in English or Chinese (``lang``) from the ``studio.*`` catalogue keys; the metric
names (``fd5k``, ``pr5k_k3``) are the same in every language, only the words for the scores change.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from .. import i18n
from .svgplot import line_chart

METRICS_FILE = "metrics.jsonl"  # written by gankit.metrics.callback (the serve package does not import it)
MAX_FILE_BYTES = 16 * 2**20  # larger files are not evaluation reports
NOT_SCORES = {"n_fake", "n_real", "n", "num_classes", "num_modes", "sigma", "se", "epoch", "seconds", "step"}
# The words of a score that names a part of its metric (``pr5k_k3 precision``); other scores keep their name.
SCORE_WORDS = {"precision": "studio.score.precision", "recall": "studio.score.recall",
               "density": "studio.score.density", "coverage": "studio.score.coverage",
               "classes_reached": "studio.score.classes_reached", "kl_to_real": "studio.score.kl_to_real",
               "modes": "studio.score.modes", "kl_to_uniform": "studio.score.kl_to_uniform",
               "high_quality": "studio.score.high_quality", "log_likelihood": "studio.score.log_likelihood"}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def fmt(v: Any) -> str:
    """A score as text: integers as they are, floats to 4 significant digits (``inf``, ``nan`` spelled out)."""
    if isinstance(v, bool) or not _number(v):
        return "" if v is None else str(v)
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"


def _json(v: float | None) -> float | str | None:
    """JSON has no NaN or Infinity: such scores become the strings "nan", "inf", "-inf"."""
    return fmt(v) if isinstance(v, float) and not math.isfinite(v) else v


def _spread(res: dict, key: str) -> float | None:
    s = res.get(f"{key}_std", res.get("se") if key == "log_likelihood" else None)
    return s if _number(s) else None


def label(metric: str, score: str, lang: str = "en") -> str:
    """``fd5k`` for the score ``fd`` of metric ``fd5k``; ``pr5k_k3 precision`` where the score names a part
    (``pr5k_k3 精确率`` in Chinese)."""
    kind = re.match(r"[a-z]*", metric).group(0)  # type: ignore[union-attr]
    if score == kind:
        return metric
    word = i18n.text(lang, SCORE_WORDS[score]) if score in SCORE_WORDS else score
    return f"{metric} {word}"


def _rows(step: int, source: str, metrics: Any, lang: str = "en") -> list[dict[str, Any]]:
    if not isinstance(metrics, dict):
        return []
    out = []
    for name, res in metrics.items():
        if not isinstance(res, dict):
            continue
        floor = res.get("floor") if isinstance(res.get("floor"), dict) else {}
        for key, v in res.items():
            if key in NOT_SCORES or key.endswith("_std") or not _number(v):
                continue
            fl = floor.get(key) if _number(floor.get(key)) else None
            sp = _spread(res, key)
            out.append({"step": step, "source": source, "metric": str(name), "score": key,
                        "label": label(str(name), key, lang), "value": _json(v), "spread": _json(sp),
                        "floor": _json(fl), "n_fake": res.get("n_fake") if _number(res.get("n_fake")) else None,
                        "text": fmt(v) + (f" ± {fmt(sp)}" if sp is not None else ""),
                        "floor_text": fmt(fl) if fl is not None else ""})
    return out


def _read_text(path: Path, root: Path | None) -> str | None:
    """The text of ``path``, or None when it is missing, too large, unreadable or (with ``root``) a link to
    a file outside ``root``."""
    try:
        if root is not None and not path.resolve().is_relative_to(root):
            return None
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return None


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def eval_report_step(obj: Any) -> int | None:
    """The step of a ``gankit eval --json`` report of one run, or None when ``obj`` is not one."""
    if not (isinstance(obj, dict) and isinstance(obj.get("metrics"), dict) and isinstance(obj.get("run"), dict)):
        return None
    step = obj["run"].get("step")
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def read_evaluations(run_dir: Path | None, root: Path | None = None, lang: str = "en") -> list[dict[str, Any]]:
    """Every score of every evaluation of ``run_dir``, one row each, sorted by step (then source, metric, score).

    A row: ``{"step", "source" (the file), "metric" (e.g. "pr5k_k3"), "score" (e.g. "precision"), "label"
    ("pr5k_k3 precision"), "value", "spread" (± where the metric has one), "floor" (the real-vs-real floor of
    this score, or None), "n_fake", "text", "floor_text"}``. ``root``: a resolved folder; files whose real
    path is outside it are not read; ``lang``: the labels' language. Lines and files that do not parse are
    skipped."""
    if run_dir is None:
        return []
    rows: list[dict[str, Any]] = []
    text = _read_text(run_dir / METRICS_FILE, root)
    for line in (text or "").splitlines():
        rec = _load(line)
        if isinstance(rec, dict) and isinstance(rec.get("step"), int) and not isinstance(rec["step"], bool):
            rows += _rows(rec["step"], METRICS_FILE, rec.get("metrics"), lang)
    try:
        candidates = sorted(run_dir.glob("*.json"))
    except OSError:
        candidates = []
    for path in candidates:
        text = _read_text(path, root)
        obj = _load(text) if text else None
        step = eval_report_step(obj)
        if step is None:
            continue
        rows += _rows(step, path.name, obj["metrics"], lang)
        inc = obj.get("inception")  # torch-fidelity's scores, when the report asked for ifid/ikid/iis
        if isinstance(inc, dict) and isinstance(inc.get("inception"), dict):
            rows += _rows(step, path.name, {"inception": {**inc["inception"], "n_fake": inc.get("n_fake")}}, lang)
    # sorted by the names, not by the labels, so every language lists the scores in the same order
    return sorted(rows, key=lambda r: (r["step"], r["source"] != METRICS_FILE, r["source"], r["metric"], r["score"]))


def _float(v: Any) -> float:
    try:
        return float(v)  # numbers, and the strings "inf", "-inf", "nan" of non-finite scores
    except (TypeError, ValueError):
        return math.nan


def charts(rows: list[dict[str, Any]], lang: str = "en") -> list[tuple[str, str]]:
    """One SVG line chart per score label: its value against step, with its real-vs-real floor as a dashed
    line (one level when every evaluation had the same floor, else a second curve), all on the same step axis.
    ``lang``: the language of the axis title and legend (the rows' labels are already in theirs).
    [(label, svg), ...]"""
    floor_name, step = i18n.text(lang, "studio.col.floor"), i18n.text(lang, "studio.col.step")
    no_data = i18n.text(lang, "studio.chart.no_data")
    out = []
    xlim = (min((r["step"] for r in rows), default=0), max((r["step"] for r in rows), default=0))
    for lab in dict.fromkeys(r["label"] for r in rows):
        pts = [r for r in rows if r["label"] == lab]
        steps = [r["step"] for r in pts]
        series = [(lab, steps, [_float(r["value"]) for r in pts])]
        floors = [(r["step"], _float(r["floor"])) for r in pts if r["floor"] is not None]
        levels = {v for _, v in floors}
        hline = None
        if len(levels) == 1 and math.isfinite(next(iter(levels))):
            hline = next(iter(levels))
        elif floors:
            series.append((floor_name, [s for s, _ in floors], [v for _, v in floors]))
        out.append((lab, line_chart(series, lab, xlabel=step, hline=hline, hline_label=floor_name, xlim=xlim,
                                    no_data=no_data)))
    return out
