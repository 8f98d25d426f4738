"""Metrics during training: a callback for ``Trainer.add_callback("on_epoch_end", fn)``.

It only reads what any trainer exposes (``G`` or ``G_ema``, ``cfg``, ``step``, ``steps_per_epoch``, ``run_dir``,
``device``, ``log``), so this package never imports :mod:`gankit.train`. Each evaluation appends one JSON line to
``run_dir/metrics.jsonl`` and logs one line; the evaluator, the real statistics and the floor are computed
once, at the first evaluation, and reused.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any, Callable

from ..errors import GankitError
from .evaluate import Reference, format_report, generator_sampler, parse_metrics
from .evaluator import load_evaluator, real_splits
from .mixtures import MIXTURES

METRICS_FILE = "metrics.jsonl"


def _compact(res: dict) -> dict:
    return {k: v for k, v in res.items() if k not in ("histogram", "valid_log_likelihood", "caveat")}


def training_callback(metrics: str | list[str] = "fd5k", every: int = 1, *, batch_size: int = 500, seed: int = 0,
                      floor: bool = True, evaluator_dataset: str | None = None) -> Callable[[Any], None]:
    """A function ``fn(trainer)`` that scores ``trainer.G`` on ``metrics`` every ``every`` epochs.

    ``metrics``: names as in :func:`gankit.metrics.parse_metric` (a name without a size uses 5,000 samples).
    ``evaluator_dataset``: the evaluator family, when it differs from the training data's name."""
    if every < 1:
        raise GankitError(f"--eval-every must be >= 1 epoch, got {every}")
    specs = parse_metrics(metrics, default_n=5000)
    cache: dict[str, Any] = {}

    def on_epoch_end(trainer) -> None:
        epoch = trainer.step // trainer.steps_per_epoch
        if epoch % every:
            return
        if "reference" not in cache:
            data = trainer.cfg.data
            if evaluator_dataset:
                data = replace(data, name=evaluator_dataset)
            mixture = data.name if data.name in MIXTURES else None
            evaluator = (load_evaluator(data, device=trainer.device, log=trainer.log)
                         if any(s.needs_features for s in specs) else None)
            train, test = real_splits(data, trainer.log) if mixture is None else (None, None)
            cache["reference"] = Reference(specs, evaluator, test, train, mixture=mixture, floor=floor,
                                           batch_size=batch_size, seed=seed)
        ref: Reference = cache["reference"]
        t0 = time.perf_counter()
        G = getattr(trainer, "G_ema", None) or trainer.G  # G_ema, where kept, is what sampling uses
        m = trainer.cfg.model
        k = m.num_classes if getattr(m, "cond", "none") != "none" else 0
        sampler = generator_sampler(G, m.z_dim, seed=seed, device=trainer.device, num_classes=k)
        scores = ref.score(sampler, specs, batch_size)
        for name, res in scores.items():
            res["floor"] = (ref.floor or {}).get(name)
        report: dict = {"metrics": scores}
        if ref.evaluator is not None:
            report["evaluator"] = {k: ref.evaluator.card[k] for k in ("family", "sha256", "test_accuracy",
                                                                      "feature_layer", "feature_dim")}
        record = {"step": trainer.step, "epoch": epoch, "seconds": round(time.perf_counter() - t0, 2),
                  "metrics": {n: {**_compact(r), "floor": _compact(r["floor"]) if r["floor"] else None}
                              for n, r in scores.items()},
                  "evaluator": report.get("evaluator", {}).get("sha256")}
        with open(trainer.run_dir / METRICS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        for line in format_report(report).splitlines():
            if not line.startswith(("evaluator:", "  scores are")):
                trainer.log(f"eval epoch {epoch}: {line}")
    return on_epoch_end
