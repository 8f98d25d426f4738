"""Scoring a sampler against real data: metric names, the streaming loop, the real-vs-real floor, reports.

A *sampler* is any callable ``sampler(n) -> Tensor`` returning the next ``n`` samples as float (n, C, H, W)
in [-1, 1] (2-D points for the mixtures). Samples are drawn and embedded batch by batch; what is kept is the
metric state: O(d^2) sums for FD, class counts for IS and coverage, and the feature rows (never the images)
for KID and precision/recall/density/coverage. Parzen is the one exception: its protocol uses the 10,000
samples themselves as kernel centres.

Metric names carry their protocol: ``fd10k`` (FD on 10,000 samples), ``kid10k``, ``is10k``, ``pr10k_k3``
(precision/recall, k = 3), ``dc10k_k5`` (density/coverage, k = 5), ``classes10k``; without a size, ``--n``
decides. Fixed protocols: ``modes2d`` (2,500), ``stacked`` (26,000), ``parzen`` (10,000).

Every metric is a :class:`~gankit.metrics.metric.Metric` in :data:`gankit.metrics.registry.METRICS`; this loop
reads only its fields (state, what it reads, real side, floor, result, headline) and never a metric's name.
Adding a metric is one file and one line, and no edit here:

1. ``metrics/mymetric.py``: its state (``update``/``compute``) and ``MYMETRIC = Metric("mymetric", ...)``;
2. ``metrics/registry.py``: ``register_metric(mymetric.MYMETRIC)`` (outside gankit: call
   :func:`gankit.metrics.register_metric` before scoring).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import torch

from ..data import Dataset, to_unit_range
from ..data.clusters import spread_labels
from ..errors import GankitError
from .metric import Metric, tensor_sampler  # noqa: F401  (tensor_sampler: re-exported)
from .registry import METRICS, list_metrics

Sampler = Callable[[int], torch.Tensor]

_NAME = re.compile(r"^(?P<kind>[a-z]+?)(?P<n>\d+k?)?(?:_k(?P<k>\d+))?$")


@dataclass(frozen=True)
class MetricSpec:
    """A parsed metric name: ``kind`` (a key of METRICS), sample count ``n``, and ``k`` for metrics taking one."""

    name: str
    kind: str
    n: int
    k: int = 0

    @property
    def metric(self) -> Metric:
        return METRICS[self.kind]

    @property
    def needs_features(self) -> bool:
        return self.metric.features


MAX_METRIC_SAMPLES = 1_000_000  # 20x the largest protocol in use (FID's 50k); more is a typo


def parse_metric(name: str, default_n: int = 10_000) -> MetricSpec:
    """``'pr5k_k3'`` -> MetricSpec('pr5k_k3', 'pr', 5000, 3); a name without a size takes ``default_n``."""
    name = name.strip()
    if name in METRICS and METRICS[name].n is not None:  # a fixed protocol: the name is the whole protocol
        return MetricSpec(name, name, METRICS[name].n)  # type: ignore[arg-type]
    m = _NAME.match(name)
    if m is None or m["kind"] not in METRICS or METRICS[m["kind"]].n is not None:
        raise GankitError(f"unknown metric {name!r}; metrics are {', '.join(list_metrics())}, optionally with a "
                          f"sample count and k, e.g. fd10k, kid5k, pr10k_k3, dc10k_k5")
    kind = m["kind"]
    default_k = METRICS[kind].k
    if m["k"] is not None and default_k is None:
        takes_k = " and ".join(kd for kd, mt in METRICS.items() if mt.k is not None)
        raise GankitError(f"metric {name!r}: only {takes_k} take _kK")
    n = default_n
    if m["n"]:
        n = int(m["n"][:-1]) * 1000 if m["n"].endswith("k") else int(m["n"])
    if n < 2:
        raise GankitError(f"metric {name!r}: needs at least 2 samples")
    if n > MAX_METRIC_SAMPLES:
        raise GankitError(f"metric {name!r}: {n:,} samples is more than a metric draws ({MAX_METRIC_SAMPLES:,}); "
                          f"ask for fewer")
    k = int(m["k"]) if m["k"] is not None else (default_k or 0)
    if default_k is not None and k < 1:
        raise GankitError(f"metric {name!r}: k must be >= 1")
    return MetricSpec(canonical_name(kind, n, k), kind, n, k)


def takes_default_n(name: str) -> bool:
    """Whether a metric name leaves its sample count to the default (``'fd'``, ``'pr_k3'``; not ``'fd5k'`` nor a
    fixed protocol such as ``'modes2d'``). ``name`` must parse (:func:`parse_metric`)."""
    name = name.strip()
    if name in METRICS and METRICS[name].n is not None:
        return False
    m = _NAME.match(name)
    return m is not None and not m["n"]


def canonical_name(kind: str, n: int, k: int = 0) -> str:
    """The name that states the whole protocol: ('pr', 10000, 3) -> 'pr10k_k3'."""
    size = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    return kind + size + (f"_k{k}" if METRICS[kind].k is not None else "")


def parse_metrics(names: str | list[str], default_n: int = 10_000) -> list[MetricSpec]:
    items = names.split(",") if isinstance(names, str) else list(names)
    specs = [parse_metric(s, default_n) for s in items if s.strip()]
    if not specs:
        raise GankitError("no metrics given; e.g. --metrics fd10k,pr10k_k3")
    return specs


# ----------------------------------------------------------------------------------------------
# Samplers.

def generator_sampler(G: torch.nn.Module, z_dim: int, seed: int = 0, device: str | torch.device | None = None,
                      num_classes: int = 0, label_shares: torch.Tensor | None = None) -> Sampler:
    """A sampler drawing z ~ N(0, I) from its own seeded generator and returning G(z) on the CPU.

    A class-conditional G (``num_classes`` > 0) is called as G(z, y) with y = sample index mod num_classes, so
    every class is drawn equally; with ``label_shares`` (a self-conditioned G, ``data.clusters``) sample i takes a
    class in proportion to its share (:func:`gankit.data.clusters.spread_labels`). G runs in eval mode; its previous
    mode is restored after each call."""
    gen = torch.Generator().manual_seed(seed)
    dev = device if device is not None else next(G.parameters()).device
    count = [0]

    @torch.no_grad()
    def sample(n: int) -> torch.Tensor:
        was_training = G.training
        G.eval()
        try:
            z = torch.randn(n, z_dim, generator=gen).to(dev)
            if num_classes:
                y = (spread_labels(label_shares, count[0], n) if label_shares is not None
                     else torch.arange(count[0], count[0] + n) % num_classes).to(dev)
                count[0] += n
                return G(z, y).float().cpu()
            return G(z).float().cpu()
        finally:
            G.train(was_training)
    return sample


def dataset_sampler(ds: Dataset, indices: torch.Tensor | None = None) -> Sampler:
    """Real images in the order of ``indices`` (default: all, in order), as float in [-1, 1]."""
    idx = indices if indices is not None else torch.arange(len(ds))
    pos = [0]

    def sample(n: int) -> torch.Tensor:
        if pos[0] + n > len(idx):
            raise GankitError(f"asked for more than the {len(idx)} real images available")
        x = ds.images[idx[pos[0]:pos[0] + n].to(ds.images.device)]
        pos[0] += n
        return to_unit_range(x).cpu()
    return sample


# ----------------------------------------------------------------------------------------------
# The streaming loop.

class _States:
    """The per-metric states fed by one stream of samples."""

    def __init__(self, specs: list[MetricSpec], evaluator, mixture: str | None):
        self.specs = specs
        self.fed = {s.name: 0 for s in specs}
        self.s: dict[str, object] = {sp.name: sp.metric.state(sp, evaluator, mixture)  # type: ignore[misc]
                                     for sp in specs}

    def feed(self, x: torch.Tensor, emb) -> None:
        for sp in self.specs:
            take = min(sp.n - self.fed[sp.name], len(x))
            if take <= 0:
                continue
            self.s[sp.name].update(sp.metric.read(x, emb)[:take])  # type: ignore[attr-defined, misc]
            self.fed[sp.name] += take


def stream(sampler: Sampler, specs: list[MetricSpec], evaluator=None, *, mixture: str | None = None,
           batch_size: int = 500, limit: int | None = None) -> _States:
    """Draw ``max(spec.n)`` samples (at most ``limit``) in batches and feed every metric's state."""
    states = _States(specs, evaluator, mixture)
    total = max(s.n for s in specs)
    if limit is not None:
        total = min(total, limit)
    need_features = any(s.needs_features for s in specs)
    done = 0
    while done < total:
        b = min(batch_size, total - done)
        x = sampler(b)
        if len(x) != b:
            raise GankitError(f"the sampler returned {len(x)} samples when asked for {b}")
        if need_features and done == 0:
            evaluator.check_shape(x.shape[1:])
        emb = evaluator.embed(x) if need_features else None
        states.feed(x, emb)
        done += b
    return states


class Reference:
    """The real side, computed once: statistics of the real test split, and optionally the real-vs-real floor
    (a training subset of the same size as the fakes, scored exactly like them against the test split).

    ``real_test``/``real_train``: uint8 datasets (unused by metrics with a floor of their own, e.g. modes2d)."""

    def __init__(self, specs: list[MetricSpec], evaluator=None, real_test: Dataset | None = None,
                 real_train: Dataset | None = None, *, mixture: str | None = None, floor: bool = True,
                 batch_size: int = 500, seed: int = 0):
        self.specs, self.evaluator, self.mixture = specs, evaluator, mixture
        self.real: _States | None = None
        real_specs = [s for s in specs if s.metric.real_n is not None]
        if real_specs:
            if real_test is None:
                raise GankitError("these metrics need the real test split")
            full = [MetricSpec(s.name, s.kind, s.metric.real_n(s.n, len(real_test)), s.k)  # type: ignore[misc]
                    for s in real_specs]
            self.real = stream(dataset_sampler(real_test), full, evaluator, batch_size=batch_size)
        # real sides built from the splits directly (Parzen's image sets), once per metric kind
        self.real_data: dict[str, object] = {}
        for s in specs:
            if s.metric.real_data is not None and s.kind not in self.real_data:
                self.real_data[s.kind] = s.metric.real_data(real_test, real_train)
        self.floor: dict | None = None
        if floor:
            self.floor = self._floor(real_train, batch_size, seed)

    def _floor(self, real_train: Dataset | None, batch_size: int, seed: int) -> dict | None:
        out: dict = {}
        streamed = [s for s in self.specs if s.metric.streamed]
        for s in streamed:  # metrics with a floor of their own (modes2d: the mixture itself)
            if s.metric.floor_sampler is not None:
                out.update(self.score(s.metric.floor_sampler(self.mixture, seed), [s], batch_size))
        rest = [s for s in streamed if s.metric.floor_sampler is None]
        if rest and real_train is not None:
            g = torch.Generator().manual_seed(seed + 12345)
            order = torch.randperm(len(real_train), generator=g)
            for hold in dict.fromkeys(s.metric.holdout for s in rest if s.metric.holdout is not None):
                held = hold(len(real_train))  # e.g. Parzen's validation images never serve as centres
                order = order[(order < held.start) | (order >= held.stop)]
            capped = [MetricSpec(s.name, s.kind, min(s.n, len(order)), s.k) for s in rest]
            out.update(self.score(dataset_sampler(real_train, order), capped, batch_size))
        return out or None

    def score(self, sampler: Sampler, specs: list[MetricSpec] | None = None, batch_size: int = 500) -> dict:
        """Stream ``sampler`` through ``specs`` (default: all) and compute each metric against this reference."""
        specs = specs or [s for s in self.specs if s.metric.streamed]
        st = stream(sampler, specs, self.evaluator, mixture=self.mixture, batch_size=batch_size)
        return {sp.name: self._compute(sp, st) for sp in specs}

    def _compute(self, sp: MetricSpec, st: _States) -> dict:
        real = self.real.s.get(sp.name) if self.real is not None else None
        if sp.metric.real_data is not None:
            real = self.real_data[sp.kind]
        out: dict = {"n_fake": st.fed[sp.name],
                     "n_real": self.real.fed.get(sp.name, 0) if self.real is not None else 0}
        out.update(sp.metric.compute(st.s[sp.name], real, sp))  # type: ignore[misc]
        return out


def evaluate(sampler: Sampler, metrics: str | list[str], *, evaluator=None, real_test: Dataset | None = None,
             real_train: Dataset | None = None, mixture: str | None = None, n: int = 10_000, floor: bool = True,
             batch_size: int = 500, seed: int = 0, reference: Reference | None = None) -> dict:
    """Score ``sampler`` on ``metrics`` (names like ``'fd10k,pr10k_k3'``); returns the report (a dict).

    ``evaluator``: from :func:`gankit.metrics.load_evaluator` (needed by feature metrics). ``real_test``: the
    reference split; ``real_train``: the source of the real-vs-real floor (and Parzen's validation slice).
    ``mixture``: 'ring8' or 'grid25' for ``modes2d``. Pass a prebuilt ``reference`` to reuse the real side."""
    specs = parse_metrics(metrics, n)
    if not all(s.metric.streamed for s in specs):
        outside = ", ".join(k for k, m in METRICS.items() if not m.streamed)
        raise GankitError(f"Inception metrics ({outside}) run through gankit.metrics.inception, not here")
    if any(s.needs_features for s in specs) and evaluator is None:
        raise GankitError("feature metrics need an evaluator; see 'gankit evaluator train'")
    ref = reference or Reference(specs, evaluator, real_test, real_train, mixture=mixture, floor=floor,
                                 batch_size=batch_size, seed=seed)
    scores = ref.score(sampler, specs, batch_size)
    for name, res in scores.items():
        res["floor"] = (ref.floor or {}).get(name)
    report: dict = {"metrics": scores}
    if evaluator is not None and any(s.needs_features for s in specs):
        c = evaluator.card
        report["evaluator"] = {k: c[k] for k in ("family", "dataset", "sha256", "test_accuracy", "architecture",
                                                  "feature_layer", "feature_dim") if k in c}
        report["evaluator"]["origin"] = getattr(evaluator, "origin", "user-trained")
    return report


# ----------------------------------------------------------------------------------------------
# Text.

def headline(kind: str, res: dict) -> str:
    """The one-line text of a result of metric ``kind`` (its registered headline)."""
    return METRICS[kind].headline(res)  # type: ignore[misc]


def format_report(report: dict) -> str:
    """The report as text: each score with N_fake, N_real and the real-vs-real floor; then the evaluator."""
    lines = []
    for name, res in report["metrics"].items():
        kind = parse_metric(name).kind
        n_real = "-" if res["n_real"] is None else res["n_real"]
        line = f"{name:<12} {headline(kind, res)}   [N_fake {res['n_fake']}, N_real {n_real}"
        fl = res.get("floor")
        if fl:
            line += f"; real-vs-real floor: {headline(kind, fl)} (N {fl['n_fake']})"
        lines.append(line + "]")
        if res.get("warning"):
            lines.append(f"{'':<12} warning: {res['warning']}")
        if res.get("caveat"):  # a protocol kept for parity, with its own warning (parzen)
            lines.append(f"{'':<12} caveat: {res['caveat']}")
        if res.get("note"):  # what the numbers count (modes2d on drawn points: clusters)
            lines.append(f"{'':<12} note: {res['note']}")
    ev = report.get("evaluator")
    if ev:
        origin = f" ({ev['origin']})" if ev.get("origin") else ""
        # point data has no classifier (gankit.metrics.points): no accuracy, the sha256 names the real points
        acc = f" test accuracy {100 * ev['test_accuracy']:.2f}%," if "test_accuracy" in ev else ""
        lines.append(f"evaluator: {ev['family']}{origin} sha256:{ev['sha256'][:16]}{acc} features "
                     f"{ev['feature_layer']} ({ev['feature_dim']}-d)")
        lines.append("  scores are comparable only between reports with this checksum")
    return "\n".join(lines)

