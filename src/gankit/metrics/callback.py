"""Metrics during training: a callback for ``Trainer.add_callback("on_epoch_end", fn)``.

It only reads what any trainer exposes (``G`` or ``G_ema``, ``cfg``, ``step``, ``steps_per_epoch``, ``run_dir``,
``device``, ``log``), so this package never imports :mod:`gankit.training`. Each evaluation appends one JSON line
to ``run_dir/metrics.jsonl`` and logs one line; scoring is :class:`~gankit.metrics.scoring.Scorer`'s, whose
evaluator, real statistics and floor are computed once, at the first evaluation, and reused.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import GankitError
from ..io import atomic_write_text
from .evaluate import format_report, parse_metrics
from .scoring import Scorer, num_classes

METRICS_FILE = "metrics.jsonl"
DEFAULT_N = 5000  # samples of a metric named without a size: a tenth of the offline protocol's cost, every epoch


def _drop_from(path: Path, step: int) -> None:
    """Remove the records of ``step`` and later: a run resumed from an earlier checkpoint trains those steps again
    (as log.csv is cut back to the checkpoint's step)."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    keep = []
    for line in lines:
        try:
            if int(json.loads(line)["step"]) >= step:
                continue
        except (ValueError, KeyError, TypeError):
            pass  # not ours to judge: kept as it was
        keep.append(line)
    if len(keep) != len(lines):
        atomic_write_text(path, "".join(k + "\n" for k in keep))


def _compact(res: dict) -> dict:
    return {k: v for k, v in res.items() if k not in ("histogram", "valid_log_likelihood", "caveat")}


def training_callback(metrics: str | list[str] = "fd5k", every: int = 1, *, batch_size: int = 500, seed: int = 0,
                      floor: bool = True, evaluator_dataset: str | None = None) -> Callable[[Any], None]:
    """A function ``fn(trainer)`` that scores ``trainer.G`` on ``metrics`` every ``every`` epochs.

    ``metrics``: names as in :func:`gankit.metrics.parse_metric` (a name without a size uses 5,000 samples).
    ``evaluator_dataset``: the evaluator family, when it differs from the training data's name."""
    if every < 1:
        raise GankitError(f"--eval-every must be >= 1 epoch, got {every}")
    parse_metrics(metrics, default_n=DEFAULT_N)  # a bad name fails before training starts
    cache: dict[str, Scorer] = {}

    def on_epoch_end(trainer) -> None:
        epoch = trainer.step // trainer.steps_per_epoch
        if epoch % every:
            return
        if "scorer" not in cache:  # the trainer's device and log are known from here on
            cache["scorer"] = Scorer(metrics, default_n=DEFAULT_N, seed=seed, device=trainer.device, floor=floor,
                                     batch_size=batch_size, evaluator_dataset=evaluator_dataset, log=trainer.log)
        scorer = cache["scorer"]
        data = scorer.resolve_data(trainer.cfg.data)
        scorer.side(data)  # the real side, once: not part of the time an evaluation takes
        t0 = time.perf_counter()
        G = getattr(trainer, "G_ema", None) or trainer.G  # G_ema, where kept, is what sampling uses
        m = trainer.cfg.model
        report = scorer.score_generator(G, m.z_dim, data, num_classes=num_classes(m),
                                        label_shares=getattr(trainer, "label_shares", None))
        scores = report["metrics"]
        record = {"step": trainer.step, "epoch": epoch, "seconds": round(time.perf_counter() - t0, 2),
                  "metrics": {n: {**_compact(r), "floor": _compact(r["floor"]) if r["floor"] else None}
                              for n, r in scores.items()},
                  "evaluator": report.get("evaluator", {}).get("sha256")}
        _drop_from(trainer.run_dir / METRICS_FILE, trainer.step)
        with open(trainer.run_dir / METRICS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        for line in format_report(report).splitlines():
            if not line.startswith(("evaluator:", "  scores are")):
                trainer.log(f"eval epoch {epoch}: {line}")
    return on_epoch_end
