"""Scoring a sampler against real data: metric names, the streaming loop, the real-vs-real floor, reports.

A *sampler* is any callable ``sampler(n) -> Tensor`` returning the next ``n`` samples as float (n, C, H, W)
in [-1, 1] (2-D points for the mixtures). Samples are drawn and embedded batch by batch; what is kept is the
metric state: O(d^2) sums for FD, class counts for IS and coverage, and the feature rows (never the images)
for KID and precision/recall/density/coverage. Parzen is the one exception: its protocol uses the 10,000
samples themselves as kernel centres.

Metric names carry their protocol: ``fd10k`` (FD on 10,000 samples), ``kid10k``, ``is10k``, ``pr10k_k3``
(precision/recall, k = 3), ``dc10k_k5`` (density/coverage, k = 5), ``classes10k``; without a size, ``--n``
decides. Fixed protocols: ``modes2d`` (2,500), ``stacked`` (26,000), ``parzen`` (10,000).
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Callable

import torch

from ..data import Dataset, to_unit_range
from ..errors import GankitError
from . import mixtures, parzen
from .classes import ClassHistogram, InceptionScoreState, class_coverage, stacked_modes
from .frechet import FeatureBank, FrechetState, fd_from_states, kid
from .prdc import density_coverage, precision_recall

Sampler = Callable[[int], torch.Tensor]

METRICS: dict[str, str] = {
    "fd": "Fréchet distance of the domain classifier's feature Gaussians (lower is better)",
    "kid": "kernel distance, unbiased MMD^2 with a cubic kernel, mean ± std over 100 subsets (lower is better)",
    "is": "classifier score exp(E KL(p(y|x) || p(y))), 1..num_classes, mean ± std over 10 splits",
    "pr": "precision and recall of k-NN feature manifolds (Kynkäänniemi et al. 2019; default k 3)",
    "dc": "density and coverage (Naeem et al. 2020; default k 5)",
    "classes": "class coverage: classes reached, predicted-class histogram, KL(p_fake || p_real)",
    "modes2d": "2-D mixtures (ring8, grid25): modes captured, % high quality, KL; 2,500 samples (PacGAN)",
    "stacked": "Stacked MNIST: modes out of 1,000 and KL to uniform; 26,000 samples (PacGAN Table 2)",
    "parzen": "Parzen-window log-likelihood, Goodfellow et al. 2014 protocol; 10,000 samples (high variance)",
    "ifid": "Inception FID via torch-fidelity (optional extra; needs the Inception weights)",
    "ikid": "Inception KID via torch-fidelity (optional extra)",
    "iis": "Inception Score via torch-fidelity (optional extra)",
}
FIXED_N = {"modes2d": mixtures.PROTOCOL_N, "stacked": 26_000, "parzen": parzen.PROTOCOL_N}
DEFAULT_K = {"pr": 3, "dc": 5}
INCEPTION = ("ifid", "ikid", "iis")
_NAME = re.compile(r"^(?P<kind>[a-z]+?)(?P<n>\d+k?)?(?:_k(?P<k>\d+))?$")


def list_metrics() -> list[str]:
    return list(METRICS)


@dataclass(frozen=True)
class MetricSpec:
    """A parsed metric name: ``kind`` (a key of METRICS), sample count ``n``, and ``k`` for pr/dc."""

    name: str
    kind: str
    n: int
    k: int = 0

    @property
    def needs_features(self) -> bool:
        return self.kind in ("fd", "kid", "is", "pr", "dc", "classes", "stacked")


MAX_METRIC_SAMPLES = 1_000_000  # 20x the largest protocol in use (FID's 50k); more is a typo


def parse_metric(name: str, default_n: int = 10_000) -> MetricSpec:
    """``'pr5k_k3'`` -> MetricSpec('pr5k_k3', 'pr', 5000, 3); a name without a size takes ``default_n``."""
    name = name.strip()
    if name in FIXED_N:
        return MetricSpec(name, name, FIXED_N[name])
    m = _NAME.match(name)
    if m is None or m["kind"] not in METRICS or m["kind"] in FIXED_N:
        raise GankitError(f"unknown metric {name!r}; metrics are {', '.join(list_metrics())}, optionally with a "
                          f"sample count and k, e.g. fd10k, kid5k, pr10k_k3, dc10k_k5")
    kind = m["kind"]
    if m["k"] is not None and kind not in DEFAULT_K:
        raise GankitError(f"metric {name!r}: only pr and dc take _kK")
    n = default_n
    if m["n"]:
        n = int(m["n"][:-1]) * 1000 if m["n"].endswith("k") else int(m["n"])
    if n < 2:
        raise GankitError(f"metric {name!r}: needs at least 2 samples")
    if n > MAX_METRIC_SAMPLES:
        raise GankitError(f"metric {name!r}: {n:,} samples is more than a metric draws ({MAX_METRIC_SAMPLES:,}); "
                          f"ask for fewer")
    k = int(m["k"]) if m["k"] is not None else DEFAULT_K.get(kind, 0)
    if kind in DEFAULT_K and k < 1:
        raise GankitError(f"metric {name!r}: k must be >= 1")
    return MetricSpec(canonical_name(kind, n, k), kind, n, k)


def canonical_name(kind: str, n: int, k: int = 0) -> str:
    """The name that states the whole protocol: ('pr', 10000, 3) -> 'pr10k_k3'."""
    size = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    return kind + size + (f"_k{k}" if kind in DEFAULT_K else "")


def parse_metrics(names: str | list[str], default_n: int = 10_000) -> list[MetricSpec]:
    items = names.split(",") if isinstance(names, str) else list(names)
    specs = [parse_metric(s, default_n) for s in items if s.strip()]
    if not specs:
        raise GankitError("no metrics given; e.g. --metrics fd10k,pr10k_k3")
    return specs


# ----------------------------------------------------------------------------------------------
# Samplers.

def generator_sampler(G: torch.nn.Module, z_dim: int, seed: int = 0, device: str | torch.device | None = None,
                      num_classes: int = 0) -> Sampler:
    """A sampler drawing z ~ N(0, I) from its own seeded generator and returning G(z) on the CPU.

    A class-conditional G (``num_classes`` > 0) is called as G(z, y) with y = sample index mod num_classes, so
    every class is drawn equally. G runs in eval mode; its previous mode is restored after each call."""
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
                y = (torch.arange(count[0], count[0] + n) % num_classes).to(dev)
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


def tensor_sampler(x: torch.Tensor) -> Sampler:
    """The rows of ``x`` in order (e.g. points of a 2-D mixture, or precomputed samples)."""
    pos = [0]

    def sample(n: int) -> torch.Tensor:
        if pos[0] + n > len(x):
            raise GankitError(f"asked for more than the {len(x)} samples available")
        pos[0] += n
        return x[pos[0] - n:pos[0]]
    return sample


# ----------------------------------------------------------------------------------------------
# The streaming loop.

class _States:
    """The per-metric states fed by one stream of samples."""

    def __init__(self, specs: list[MetricSpec], evaluator, mixture: str | None):
        self.specs = specs
        self.fed = {s.name: 0 for s in specs}
        self.s: dict[str, object] = {}
        for sp in specs:
            if sp.kind == "fd":
                self.s[sp.name] = FrechetState(evaluator.feature_dim)
            elif sp.kind in ("kid", "pr", "dc"):
                self.s[sp.name] = FeatureBank(sp.n)
            elif sp.kind == "is":
                if getattr(evaluator, "base", None) is not None:
                    raise GankitError("the classifier score (is) is not defined for stacked images; use 'stacked'")
                self.s[sp.name] = InceptionScoreState(evaluator.num_classes)
            elif sp.kind in ("classes", "stacked"):
                self.s[sp.name] = ClassHistogram(evaluator.num_classes)
            elif sp.kind == "modes2d":
                if mixture is None:
                    raise GankitError("modes2d needs a 2-D mixture dataset (ring8 or grid25)")
                self.s[sp.name] = mixtures.ModeCounter(mixture)
            elif sp.kind == "parzen":
                self.s[sp.name] = FeatureBank(sp.n)  # the samples themselves, pixels in [0, 1]

    def feed(self, x: torch.Tensor, emb) -> None:
        for sp in self.specs:
            take = min(sp.n - self.fed[sp.name], len(x))
            if take <= 0:
                continue
            st = self.s[sp.name]
            if sp.kind in ("fd", "kid", "pr", "dc"):
                st.update(emb.features[:take])  # type: ignore[attr-defined]
            elif sp.kind == "is":
                st.update(emb.probs[:take])  # type: ignore[attr-defined]
            elif sp.kind in ("classes", "stacked"):
                st.update(emb.labels[:take])  # type: ignore[attr-defined]
            elif sp.kind == "modes2d":
                st.update(x[:take])  # type: ignore[attr-defined]
            elif sp.kind == "parzen":
                st.update(((x[:take].reshape(take, -1).double() + 1) / 2))  # type: ignore[attr-defined]
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

    ``real_test``/``real_train``: uint8 datasets (unused for modes2d, whose floor is the mixture itself)."""

    def __init__(self, specs: list[MetricSpec], evaluator=None, real_test: Dataset | None = None,
                 real_train: Dataset | None = None, *, mixture: str | None = None, floor: bool = True,
                 batch_size: int = 500, seed: int = 0):
        self.specs, self.evaluator, self.mixture = specs, evaluator, mixture
        self.real: _States | None = None
        self.parzen_sets: tuple[torch.Tensor, torch.Tensor] | None = None
        real_specs = [s for s in specs if s.kind in ("fd", "kid", "pr", "dc", "classes")]
        if real_specs:
            if real_test is None:
                raise GankitError("these metrics need the real test split")
            # every real test image for FD / classes; min(n, N_test) for the point-set metrics
            full = [MetricSpec(s.name, s.kind, len(real_test) if s.kind in ("fd", "classes")
                               else min(s.n, len(real_test)), s.k) for s in real_specs]
            self.real = stream(dataset_sampler(real_test), full, evaluator, batch_size=batch_size)
        if any(s.kind == "parzen" for s in specs):
            if real_test is None or real_train is None:
                raise GankitError("parzen needs the real train (validation slice) and test splits")
            valid = real_train.images[parzen.validation_slice(len(real_train))]
            self.parzen_sets = (valid.reshape(len(valid), -1).double() / 255.0,
                                real_test.images.reshape(len(real_test), -1).double() / 255.0)
        self.floor: dict | None = None
        if floor:
            self.floor = self._floor(real_train, batch_size, seed)

    def _floor(self, real_train: Dataset | None, batch_size: int, seed: int) -> dict | None:
        out: dict = {}
        if any(s.kind == "modes2d" for s in self.specs):
            pts = mixtures.sample_mixture(self.mixture, mixtures.PROTOCOL_N, seed=seed + 1)  # type: ignore[arg-type]
            sp = [s for s in self.specs if s.kind == "modes2d"]
            out.update(self.score(tensor_sampler(pts), sp, batch_size))
        rest = [s for s in self.specs if s.kind not in ("modes2d",) + INCEPTION]
        if rest and real_train is not None:
            g = torch.Generator().manual_seed(seed + 12345)
            order = torch.randperm(len(real_train), generator=g)
            if any(s.kind == "parzen" for s in rest):  # keep the validation images out of the centres
                val = parzen.validation_slice(len(real_train))
                order = order[(order < val.start) | (order >= val.stop)]
            capped = [MetricSpec(s.name, s.kind, min(s.n, len(order)), s.k) for s in rest]
            out.update(self.score(dataset_sampler(real_train, order), capped, batch_size))
        return out or None

    def score(self, sampler: Sampler, specs: list[MetricSpec] | None = None, batch_size: int = 500) -> dict:
        """Stream ``sampler`` through ``specs`` (default: all) and compute each metric against this reference."""
        specs = specs or [s for s in self.specs if s.kind not in INCEPTION]
        st = stream(sampler, specs, self.evaluator, mixture=self.mixture, batch_size=batch_size)
        return {sp.name: self._compute(sp, st) for sp in specs}

    def _compute(self, sp: MetricSpec, st: _States) -> dict:
        state = st.s[sp.name]
        n_fake = st.fed[sp.name]
        real = self.real.s.get(sp.name) if self.real is not None else None
        n_real = self.real.fed.get(sp.name, 0) if self.real is not None else 0
        out: dict = {"n_fake": n_fake, "n_real": n_real}
        if sp.kind == "fd":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out["fd"] = fd_from_states(state, real)  # type: ignore[arg-type]
            if caught:
                out["warning"] = str(caught[0].message)
        elif sp.kind == "kid":
            out["kid"], out["kid_std"] = kid(real.compute(), state.compute())  # type: ignore[union-attr]
        elif sp.kind == "is":
            out["is"], out["is_std"] = state.compute()  # type: ignore[attr-defined]
            out["n_real"] = None  # no real side: the score is read off the fakes alone
        elif sp.kind == "pr":
            out["precision"], out["recall"] = precision_recall(real.compute(), state.compute(), sp.k)  # type: ignore
        elif sp.kind == "dc":
            out["density"], out["coverage"] = density_coverage(real.compute(), state.compute(), sp.k)  # type: ignore
        elif sp.kind == "classes":
            out.update(class_coverage(state.compute(), real.compute()))  # type: ignore[union-attr]
        elif sp.kind == "stacked":
            out.update(stacked_modes(state.compute()))  # type: ignore[attr-defined]
            out["n_real"] = None  # compared with the uniform distribution over the 1,000 modes
        elif sp.kind == "modes2d":
            out.update(state.compute())  # type: ignore[attr-defined]
            out.pop("n")
            out["n_real"] = None  # compared with the mixture's known means
        elif sp.kind == "parzen":
            valid, test = self.parzen_sets  # type: ignore[misc]
            out.update(parzen.parzen_protocol(state.compute(), valid, test))  # type: ignore[attr-defined]
            out["n_real"] = len(test)
        return out


def evaluate(sampler: Sampler, metrics: str | list[str], *, evaluator=None, real_test: Dataset | None = None,
             real_train: Dataset | None = None, mixture: str | None = None, n: int = 10_000, floor: bool = True,
             batch_size: int = 500, seed: int = 0, reference: Reference | None = None) -> dict:
    """Score ``sampler`` on ``metrics`` (names like ``'fd10k,pr10k_k3'``); returns the report (a dict).

    ``evaluator``: from :func:`gankit.metrics.load_evaluator` (needed by feature metrics). ``real_test``: the
    reference split; ``real_train``: the source of the real-vs-real floor (and Parzen's validation slice).
    ``mixture``: 'ring8' or 'grid25' for ``modes2d``. Pass a prebuilt ``reference`` to reuse the real side."""
    specs = parse_metrics(metrics, n)
    if any(s.kind in INCEPTION for s in specs):
        raise GankitError("Inception metrics (ifid, ikid, iis) run through gankit.metrics.inception, not here")
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

def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isinf(v):
            return "inf"
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"
    return str(v)


HEADLINE = {"fd": ["fd"], "kid": ["kid", "kid_std"], "is": ["is", "is_std"], "pr": ["precision", "recall"],
            "dc": ["density", "coverage"], "classes": ["classes_reached", "num_classes", "kl_to_real"],
            "stacked": ["modes", "num_modes", "kl_to_uniform"], "modes2d": ["modes", "num_modes", "high_quality", "kl"],
            "parzen": ["log_likelihood", "se", "sigma"]}


def headline(kind: str, res: dict) -> str:
    keys = HEADLINE[kind]
    if kind in ("kid", "is"):
        return f"{keys[0]} {_fmt(res[keys[0]])} ± {_fmt(res[keys[1]])}"
    if kind in ("classes", "stacked"):
        return f"{res[keys[0]]}/{res[keys[1]]} reached, KL {_fmt(res[keys[2]])}"
    if kind == "modes2d":
        return (f"{res['modes']}/{res['num_modes']} modes, {100 * res['high_quality']:.2f}% high quality, "
                f"KL {_fmt(res['kl'])}")
    if kind == "parzen":
        return f"log-likelihood {res['log_likelihood']:.1f} ± {res['se']:.1f} (sigma {res['sigma']:.3f})"
    return ", ".join(f"{k} {_fmt(res[k])}" for k in keys)


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
        if kind == "parzen":
            lines.append(f"{'':<12} caveat: {res['caveat']}")
    ev = report.get("evaluator")
    if ev:
        origin = f" ({ev['origin']})" if ev.get("origin") else ""
        lines.append(f"evaluator: {ev['family']}{origin} sha256:{ev['sha256'][:16]} test accuracy "
                     f"{100 * ev['test_accuracy']:.2f}%, features {ev['feature_layer']} ({ev['feature_dim']}-d)")
        lines.append("  scores are comparable only between reports with this checksum")
    return "\n".join(lines)

