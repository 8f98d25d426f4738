"""Mode counting on 2-D Gaussian mixtures: the PacGAN / VEEGAN protocol (docs/PROTOCOLS.md §1).

Each generated point is assigned to its nearest mixture mean; it is *high quality* when that distance is
below 3 standard deviations of the component. A mode is *captured* when at least one high-quality point is
nearest to it. KL is KL(p_hq || uniform) of the histogram of high-quality points over the modes, in nats.
The protocol evaluates 2,500 samples; a perfect generator scores all modes and 1 - e^{-4.5} = 98.89 %
high quality (the chance that a 2-D Gaussian point lies within 3 sigma of its mean). The mixtures themselves
are :mod:`gankit.data.toy`'s; the same counting works for its 1-D ``mog1d`` (99.73 % within 3 sigma).
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


def get_mixture(name: str) -> _toy.Mixture:
    """The mixture whose modes are counted (ring8, grid25 or the 1-D mog1d); a GankitError names the choices
    otherwise."""
    if name not in MIXTURES:
        raise GankitError(f"unknown mixture {name!r} for mode counting; choose one of: {', '.join(list_mixtures())}")
    return MIXTURES[name]


def sample_mixture(name: str, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` points (n, d) float32 from the equal-weight mixture: the perfect generator."""
    return torch.from_numpy(get_mixture(name).sample(n, seed)[0])


class ModeCounter:
    """Streaming state of the protocol: per-mode counts of high-quality points, and the total."""

    def __init__(self, name: str):
        self.mixture = get_mixture(name)
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.hq_counts = np.zeros(len(self.mixture.means), dtype=np.float64)

    def update(self, points: torch.Tensor) -> None:
        """``points``: (N, d) with d the mixture's dimension (2 for ring8 and grid25)."""
        x = points.detach().to("cpu", torch.float64).reshape(len(points), -1).numpy()
        if x.shape[1] != self.mixture.dim:
            raise GankitError(f"mode counting on {self.mixture.name} needs {self.mixture.dim}-D points, got "
                              f"{x.shape[1]} values per sample")
        d = np.linalg.norm(x[:, None, :] - self.mixture.means[None], axis=2)  # (N, K)
        nearest = d.argmin(1)
        hq = d[np.arange(len(x)), nearest] < HIGH_QUALITY_STDS * self.mixture.std
        self.hq_counts += np.bincount(nearest[hq], minlength=len(self.mixture.means))
        self.n += len(x)

    def compute(self) -> dict:
        hq = self.hq_counts.sum()
        return {"modes": int((self.hq_counts > 0).sum()), "num_modes": len(self.mixture.means),
                "high_quality": float(hq / self.n) if self.n else 0.0,
                "kl": kl_divergence(self.hq_counts, np.ones_like(self.hq_counts)) if hq else math.inf,
                "n": self.n}


def count_modes(points: torch.Tensor, name: str) -> dict:
    """The protocol on a set of points (N, d): modes captured, fraction high quality, KL to uniform."""
    c = ModeCounter(name)
    c.update(points)
    return c.compute()


# ----------------------------------------------------------------------------------------------
# The registered metric (gankit.metrics.registry).

def _counter(spec, evaluator, mixture: str | None) -> ModeCounter:
    if mixture is None:
        raise GankitError("modes2d needs a 2-D mixture dataset (ring8 or grid25)")
    return ModeCounter(mixture)


def _modes(state: ModeCounter, real, spec) -> dict:
    out = state.compute()
    out.pop("n")
    return {**out, "n_real": None}  # compared with the mixture's known means


def _floor(mixture: str, seed: int):
    """The floor's sampler: as many points of the mixture itself, from another seed."""
    return tensor_sampler(sample_mixture(mixture, PROTOCOL_N, seed=seed + 1))


def _headline(res: dict) -> str:
    return (f"{res['modes']}/{res['num_modes']} modes, {100 * res['high_quality']:.2f}% high quality, "
            f"KL {fmt(res['kl'])}")


MODES2D = Metric("modes2d", "2-D mixtures (ring8, grid25): modes captured, % high quality, KL; 2,500 samples (PacGAN)",
                 state=_counter, read=read_samples, compute=_modes, headline=_headline, n=PROTOCOL_N,
                 floor_sampler=_floor)
