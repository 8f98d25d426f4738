"""The metric registry: kind -> :class:`~gankit.metrics.metric.Metric`, in the order ``gankit eval`` lists them.

Adding a metric takes one file and one line:

1. ``src/gankit/metrics/mymetric.py``: the state (``update(tensor)``, ``compute()``) and a module constant
   ``MYMETRIC = Metric("mymetric", "what it measures", state=..., read=..., compute=..., headline=...)``, with
   the real side and the floor it needs (see :class:`~gankit.metrics.metric.Metric`);
2. here: ``register_metric(mymetric.MYMETRIC)`` (and ``mymetric`` added to the import line below).

:func:`gankit.metrics.evaluate`, ``gankit eval``, the training callback and :func:`gankit.metrics.score_run`
then accept ``mymetric10k``; nothing else changes. Code outside gankit registers its own metric the same way,
with :func:`register_metric` before scoring (tests/metrics/test_registry.py does, with a mean-pixel metric).
"""
from __future__ import annotations

import re

from ..errors import GankitError
from . import classes, frechet, inception, mixtures, parzen, prdc
from .metric import Metric

METRICS: dict[str, Metric] = {}
_KIND = re.compile(r"^[a-z]+$")  # sized names are kind + count (+ _kK): digits would be ambiguous


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the registry; returns it. Kinds are unique, and only metrics with a fixed protocol size
    (``n``) may have digits in their kind (``modes2d``): the others are parsed as ``kind[N][_kK]``."""
    if metric.kind in METRICS:
        raise GankitError(f"a metric named {metric.kind!r} is already registered")
    if not (_KIND.match(metric.kind) or (metric.n is not None and re.match(r"^[a-z][a-z0-9]*$", metric.kind))):
        raise GankitError(f"metric kind {metric.kind!r}: use lowercase letters (digits only with a fixed n)")
    if metric.streamed and (metric.read is None or metric.compute is None or metric.headline is None):
        raise GankitError(f"metric {metric.kind!r}: a metric with a state needs read, compute and headline")
    if metric.real_n is not None and metric.real_data is not None:
        raise GankitError(f"metric {metric.kind!r}: give real_n or real_data, not both")
    METRICS[metric.kind] = metric
    return metric


def list_metrics() -> list[str]:
    """The registered kinds, in registration order."""
    return list(METRICS)


register_metric(frechet.FD)
register_metric(frechet.KID)
register_metric(classes.IS)
register_metric(prdc.PR)
register_metric(prdc.DC)
register_metric(classes.CLASSES)
register_metric(mixtures.MODES2D)
register_metric(classes.STACKED)
register_metric(parzen.PARZEN)
register_metric(inception.IFID)
register_metric(inception.IKID)
register_metric(inception.IIS)
