"""What one metric kind declares: its state, what it reads from a batch, its real side, its result and its text.

A :class:`Metric` is plain data, defined in the file that holds the metric's state and computation
(``frechet.FD``, ``prdc.PR``, ...) and registered in :mod:`gankit.metrics.registry`. The streaming loop in
:mod:`gankit.metrics.evaluate` reads only these fields; it never branches on a metric's name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..errors import GankitError


def fmt(v) -> str:
    """A number as the reports print it: 4 significant digits, 1 decimal from 10,000 on, ``inf``."""
    if isinstance(v, float):
        if math.isinf(v):
            return "inf"
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"
    return str(v)


def show_fields(*keys: str) -> Callable[[dict], str]:
    """A headline listing ``key value`` pairs: ``precision 0.65, recall 0.077``."""
    return lambda res: ", ".join(f"{k} {fmt(res[k])}" for k in keys)


def show_mean_std(key: str, std: str) -> Callable[[dict], str]:
    """A headline ``key mean ± std``: ``kid 0.0123 ± 0.0004``."""
    return lambda res: f"{key} {fmt(res[key])} ± {fmt(res[std])}"


def show_reached(reached: str, total: str, kl: str) -> Callable[[dict], str]:
    """A headline ``reached/total reached, KL kl``: ``9/10 reached, KL 0.94``."""
    return lambda res: f"{res[reached]}/{res[total]} reached, KL {fmt(res[kl])}"


def read_features(x: torch.Tensor, emb) -> torch.Tensor:
    """The evaluator's feature rows, float32 (N, d)."""
    return emb.features


def read_probs(x: torch.Tensor, emb) -> torch.Tensor:
    """The evaluator's class probabilities, float32 (N, K)."""
    return emb.probs


def read_labels(x: torch.Tensor, emb) -> torch.Tensor:
    """The evaluator's predicted classes, int64 (N,)."""
    return emb.labels


def read_samples(x: torch.Tensor, emb) -> torch.Tensor:
    """The samples themselves, as the sampler returned them (points of a 2-D mixture: (N, 2))."""
    return x


@dataclass(frozen=True)
class Metric:
    """One metric kind. The name a user types is ``kind[N][_kK]`` (``fd10k``, ``pr5k_k3``).

    ``state(spec, evaluator, mixture)``: a fresh state with ``update(tensor)`` and ``compute()`` for one stream of
    samples (``spec`` a :class:`~gankit.metrics.evaluate.MetricSpec`); it raises a GankitError where the metric
    cannot run (no mixture for modes2d). ``read(x, emb)``: what the state is fed from a batch ``x`` (N, C, H, W) in
    [-1, 1] and its embedding ``emb`` (None unless ``features``). ``compute(state, real, spec)``: the result fields,
    added after ``n_fake`` and ``n_real`` (a returned ``n_real`` replaces the count; None prints as "-"); ``real``
    is the real side below, or None. ``headline(result)``: the one-line text of a result.

    The real side, at most one of: ``real_n(n, n_test)``, the real test images streamed into a second ``state``
    (all of them for FD, ``min(n, n_test)`` for the point-set metrics), all real streams sharing one pass; or
    ``real_data(real_test, real_train)``, anything built from the splits directly (Parzen's image sets).

    The real-vs-real floor scores a seeded training subset like the fakes, unless ``floor_sampler(mixture,
    seed)`` gives its own sampler (modes2d: the mixture). ``holdout(n_train)``: training images kept out of every
    floor (Parzen's validation slice). ``n``: a fixed protocol size (the name then takes none); ``k``: the default
    k, for metrics that take ``_kK``. ``features``: needs the evaluator. A metric without ``state`` is scored
    outside the streaming loop (the torch-fidelity Inception metrics)."""

    kind: str
    description: str
    state: Callable[..., Any] | None = None
    read: Callable[[torch.Tensor, Any], torch.Tensor] | None = None
    compute: Callable[[Any, Any, Any], dict] | None = None
    headline: Callable[[dict], str] | None = None
    features: bool = False
    real_n: Callable[[int, int], int] | None = None
    real_data: Callable[[Any, Any], Any] | None = None
    floor_sampler: Callable[[str | None, int], Callable[[int], torch.Tensor]] | None = None
    holdout: Callable[[int], slice] | None = None
    n: int | None = None
    k: int | None = None

    @property
    def streamed(self) -> bool:
        """Scored by :func:`gankit.metrics.evaluate` (False: by torch-fidelity, see :mod:`.inception`)."""
        return self.state is not None


def tensor_sampler(x: torch.Tensor) -> Callable[[int], torch.Tensor]:
    """A sampler returning the rows of ``x`` in order (e.g. points of a 2-D mixture, or precomputed samples)."""
    pos = [0]

    def sample(n: int) -> torch.Tensor:
        if pos[0] + n > len(x):
            raise GankitError(f"asked for more than the {len(x)} samples available")
        pos[0] += n
        return x[pos[0] - n:pos[0]]
    return sample


def all_real(n: int, n_test: int) -> int:
    """``real_n`` of statistics over the whole real test split (FD, class frequencies)."""
    return n_test


def same_size(n: int, n_test: int) -> int:
    """``real_n`` of point-set metrics: as many real images as fakes, at most the whole test split."""
    return min(n, n_test)
