"""Mode counting on 2-D Gaussian mixtures: the PacGAN / VEEGAN protocol (docs/PROTOCOLS.md §1).

Each generated point is assigned to its nearest mixture mean; it is *high quality* when that distance is
below 3 standard deviations of the component. A mode is *captured* when at least one high-quality point is
nearest to it. KL is KL(p_hq || p_modes) of the histogram of high-quality points over the modes, in nats, with
p_modes the data's mass per mode (uniform for ring8 and grid25, so KL to uniform as in the protocol).
The protocol evaluates 2,500 samples; a perfect generator scores all modes and 1 - e^{-4.5} = 98.89 %
high quality (the chance that a 2-D Gaussian point lies within 3 sigma of its mean). The mixtures themselves
are :mod:`gankit.data.toy`'s; the same counting works for its 1-D ``mog1d`` (99.73 % within 3 sigma).

A *mode* is a connected piece of the high-quality region (the union of the discs of radius 3 sigma around the
means): components whose discs overlap, means closer than 6 sigma, are one mode (:func:`mode_of_components`).
For ring8, grid25 and mog1d every component is its own mode (means 0.77, 2 and 2 apart; 6 sigma is 0.06, 0.3
and 0.6), exactly the published protocol; for points drawn in ``gankit lab`` (blobs of std 0.05) clicks less
than 0.3 apart make one cluster, counted once.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..data import toy as _toy
from ..errors import GankitError
from .classes import kl_divergence
from .metric import Metric, fmt, read_samples, tensor_sampler

PROTOCOL_N = 2500
HIGH_QUALITY_STDS = 3.0
MIXTURES = _toy.MIXTURES  # ring8, grid25 (and the 1-D mog1d)


def list_mixtures() -> list[str]:
    return sorted(MIXTURES)


def get_mixture(name: str | _toy.Mixture) -> _toy.Mixture:
    """The mixture whose modes are counted (ring8, grid25 or the 1-D mog1d, or a :class:`~gankit.data.toy.Mixture`
    itself, e.g. a lab run's drawn points); a GankitError names the choices otherwise."""
    if isinstance(name, _toy.Mixture):
        return name
    if name not in MIXTURES:
        raise GankitError(f"unknown mixture {name!r} for mode counting; choose one of: {', '.join(list_mixtures())}")
    return MIXTURES[name]


def sample_mixture(name: str | _toy.Mixture, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` points (n, d) float32 from the equal-weight mixture: the perfect generator."""
    return torch.from_numpy(get_mixture(name).sample(n, seed)[0])


def mode_of_components(mixture: _toy.Mixture) -> np.ndarray:
    """(K,) int64: the mode of each component, modes numbered in the order of their first component. Components
    whose high-quality discs (radius 3 std) overlap share a mode: the connected pieces of the union of discs."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    k = len(mixture.means)
    pairs = cKDTree(mixture.means).query_pairs(2 * HIGH_QUALITY_STDS * mixture.std, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(k, k))
    _, labels = connected_components(graph, directed=False)
    _, first = np.unique(labels, return_index=True)  # renumber by first component: the identity when all apart
    rank = np.empty_like(first)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[labels].astype(np.int64)


class ModeCounter:
    """Streaming state of the protocol: per-mode counts of high-quality points, and the total. ``mixture``: a
    name (ring8, grid25, mog1d) or a :class:`~gankit.data.toy.Mixture` (drawn points)."""

    def __init__(self, name: str | _toy.Mixture):
        from scipy.spatial import cKDTree

        self.mixture = get_mixture(name)
        self.mode = mode_of_components(self.mixture)  # (K,) component -> mode
        # nearest mean by k-d tree: the lab counts 2,000 samples a frame against up to 200 drawn points, 0.4 ms
        # where the (N, K) distance matrix took 8 ms (same distances, same nearest)
        self._tree = cKDTree(self.mixture.means)
        self.weights = np.bincount(self.mode).astype(np.float64)  # components per mode: p_data's mass x K
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.hq_counts = np.zeros(len(self.weights), dtype=np.float64)

    def update(self, points: torch.Tensor) -> None:
        """``points``: (N, d) with d the mixture's dimension (2 for ring8 and grid25)."""
        x = points.detach().to("cpu", torch.float64).reshape(len(points), -1).numpy()
        if x.shape[1] != self.mixture.dim:
            raise GankitError(f"mode counting on {self.mixture.name} needs {self.mixture.dim}-D points, got "
                              f"{x.shape[1]} values per sample")
        finite = np.isfinite(x).all(1)  # a diverged G's NaN or inf samples are never high quality
        dist, nearest = np.full(len(x), np.inf), np.zeros(len(x), np.intp)
        dist[finite], nearest[finite] = self._tree.query(x[finite])  # (N,): distance to the nearest mean, its index
        hq = dist < HIGH_QUALITY_STDS * self.mixture.std
        self.hq_counts += np.bincount(self.mode[nearest[hq]], minlength=len(self.weights))
        self.n += len(x)

    def compute(self) -> dict:
        hq = self.hq_counts.sum()
        return {"modes": int((self.hq_counts > 0).sum()), "num_modes": len(self.weights),
                "high_quality": float(hq / self.n) if self.n else 0.0,
                "kl": kl_divergence(self.hq_counts, self.weights) if hq else math.inf,
                "n": self.n}


def count_modes(points: torch.Tensor, name: str | _toy.Mixture) -> dict:
    """The protocol on a set of points (N, d): modes captured, fraction high quality, KL to the modes' masses."""
    c = ModeCounter(name)
    c.update(points)
    return c.compute()


# ----------------------------------------------------------------------------------------------
# The registered metric (gankit.metrics.registry).

def _counter(spec, evaluator, mixture: str | _toy.Mixture | None) -> ModeCounter:
    if mixture is None:
        raise GankitError("modes2d needs a 2-D mixture dataset (ring8 or grid25, or a lab run's drawn points)")
    return ModeCounter(mixture)


def _modes(state: ModeCounter, real, spec) -> dict:
    out = state.compute()
    out.pop("n")
    out["n_real"] = None  # compared with the mixture's known means
    k, m = len(state.mode), len(state.weights)
    if m < k:  # drawn points: say what a mode is
        out["note"] = (f"modes are the {m} clusters of the {k} {state.mixture.name} points (points closer than "
                       f"{2 * HIGH_QUALITY_STDS:g} std = {2 * HIGH_QUALITY_STDS * state.mixture.std:g} are one); "
                       f"KL is to the clusters' share of the points")
    return out


def _floor(mixture: str | _toy.Mixture, seed: int):
    """The floor's sampler: as many points of the mixture itself, from another seed."""
    return tensor_sampler(sample_mixture(mixture, PROTOCOL_N, seed=seed + 1))


def _headline(res: dict) -> str:
    return (f"{res['modes']}/{res['num_modes']} modes, {100 * res['high_quality']:.2f}% high quality, "
            f"KL {fmt(res['kl'])}")


MODES2D = Metric("modes2d", "2-D mixtures (ring8, grid25): modes captured, % high quality, KL; 2,500 samples (PacGAN)",
                 state=_counter, read=read_samples, compute=_modes, headline=_headline, n=PROTOCOL_N,
                 floor_sampler=_floor)
