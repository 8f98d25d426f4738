"""Closed forms of Goodfellow et al. (2014), Prop. 1 and Thm. 1, for distributions with known densities.

For a fixed G with density p_g, the best discriminator is D*(x) = p_data(x) / (p_data(x) + p_g(x)) and the value
of the game at D* is C(G) = E_data[log D*(x)] + E_g[log(1 - D*(x))] = -log 4 + 2 JSD(p_data || p_g) (nats).
Here everything is computed by adaptive quadrature (scipy) or, for discrete distributions, by sums, so that the
trained networks of :mod:`gankit.theory.experiments` have exact numbers to be checked against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import integrate
from scipy.special import logsumexp

from ..errors import GankitError

LOG4 = math.log(4.0)


@dataclass(frozen=True)
class Mixture1D:
    """A 1-D mixture of Gaussians: weights (sum 1), means and standard deviations; one component = a Gaussian."""

    weights: tuple[float, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    label: str = ""

    def __post_init__(self) -> None:
        if not (len(self.weights) == len(self.means) == len(self.stds) >= 1):
            raise GankitError("a mixture needs as many weights, means and stds, at least one of each")
        if any(w <= 0 for w in self.weights) or abs(sum(self.weights) - 1.0) > 1e-9:
            raise GankitError(f"mixture weights must be positive and sum to 1, got {self.weights}")
        if any(s <= 0 for s in self.stds):
            raise GankitError(f"mixture stds must be positive, got {self.stds}")

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        """log density at x (any shape, float64)."""
        x = np.asarray(x, dtype=np.float64)[..., None]
        w, m, s = (np.asarray(v, dtype=np.float64) for v in (self.weights, self.means, self.stds))
        comp = np.log(w) - 0.5 * ((x - m) / s) ** 2 - np.log(s) - 0.5 * math.log(2 * math.pi)
        return logsumexp(comp, axis=-1)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        return np.exp(self.logpdf(x))

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n samples as a float32 tensor (n, 1)."""
        k = torch.multinomial(torch.tensor(self.weights, dtype=torch.float64), n, replacement=True,
                              generator=generator)
        m = torch.tensor(self.means, dtype=torch.float32)[k]
        s = torch.tensor(self.stds, dtype=torch.float32)[k]
        return (m + s * torch.randn(n, generator=generator)).unsqueeze(1)

    def support(self, n_std: float = 12.0) -> tuple[float, float]:
        """An interval outside which the density is negligible (below e^{-n_std^2/2} of each peak)."""
        lo = min(m - n_std * s for m, s in zip(self.means, self.stds))
        hi = max(m + n_std * s for m, s in zip(self.means, self.stds))
        return lo, hi


def gaussian(mean: float, std: float, label: str = "") -> Mixture1D:
    return Mixture1D((1.0,), (float(mean),), (float(std),), label or f"N({mean:g}, {std:g}²)")


# docs/PROTOCOLS.md §5: p_data = N(0, 1) against these p_g. Reference values (JSD in nats, C(G)) as published there.
P_DATA_REF = gaussian(0.0, 1.0)
REFERENCE_PAIRS: list[tuple[Mixture1D, float, float]] = [
    (gaussian(0.0, 1.0), 0.000000, -1.386294),
    (gaussian(0.5, 1.0), 0.030311, -1.325672),
    (gaussian(1.0, 1.0), 0.111421, -1.163451),
    (gaussian(2.0, 1.0), 0.336831, -0.712633),
    (gaussian(3.0, 1.0), 0.526777, -0.332740),
    (gaussian(0.0, 2.0), 0.092733, -1.200828),
]
REFERENCE_DISCRETE = {"p": (0.5, 0.5), "q": (0.9, 0.1), "d_star": (0.357143, 0.833333), "jsd": 0.101749,
                      "c": -1.182796}


def log_d_star(log_p: np.ndarray, log_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log D*, log(1 - D*)) from log densities, without underflow where both densities are tiny."""
    log_m = np.logaddexp(log_p, log_q)
    return log_p - log_m, log_q - log_m


def d_star(p_data: Mixture1D, p_g: Mixture1D, x: np.ndarray) -> np.ndarray:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Goodfellow et al. 2014, Prop. 1)."""
    return np.exp(log_d_star(p_data.logpdf(x), p_g.logpdf(x))[0])


def _quad(f, p_data: Mixture1D, p_g: Mixture1D) -> float:
    lo = min(p_data.support()[0], p_g.support()[0])
    hi = max(p_data.support()[1], p_g.support()[1])
    points = sorted(set(p_data.means + p_g.means))
    val, _ = integrate.quad(f, lo, hi, points=points, limit=400, epsabs=1e-13, epsrel=1e-12)
    return float(val)


def jsd(p_data: Mixture1D, p_g: Mixture1D) -> float:
    """JSD(p || q) = KL(p || m)/2 + KL(q || m)/2 with m = (p + q)/2, in nats, by quadrature."""
    def integrand(x: float) -> float:
        lp, lq = p_data.logpdf(x), p_g.logpdf(x)
        lm = np.logaddexp(lp, lq) - math.log(2.0)
        return float(0.5 * np.exp(lp) * (lp - lm) + 0.5 * np.exp(lq) * (lq - lm))
    return _quad(integrand, p_data, p_g)


def value_at_d_star(p_data: Mixture1D, p_g: Mixture1D) -> float:
    """C(G) = ∫ p_data log D* + p_g log(1 - D*) dx by quadrature, independently of the JSD identity."""
    def integrand(x: float) -> float:
        lp, lq = p_data.logpdf(x), p_g.logpdf(x)
        ld, l1md = log_d_star(lp, lq)
        return float(np.exp(lp) * ld + np.exp(lq) * l1md)
    return _quad(integrand, p_data, p_g)


def c_from_jsd(js: float) -> float:
    """Theorem 1: C(G) = -log 4 + 2 JSD(p_data || p_g)."""
    return -LOG4 + 2.0 * js


def _check_discrete(p: np.ndarray, name: str) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or np.any(p < 0) or abs(p.sum() - 1.0) > 1e-9:
        raise GankitError(f"{name} must be a 1-D probability vector (non-negative, sum 1), got {p.tolist()}")
    return p


def d_star_discrete(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """D* = p / (p + q) on outcomes where p + q > 0 (and 1/2 where both are 0, where any D is optimal)."""
    p, q = _check_discrete(p, "p_data"), _check_discrete(q, "p_g")
    s = p + q
    return np.where(s > 0, p / np.where(s > 0, s, 1.0), 0.5)


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x * np.log(np.where(x > 0, y, 1.0)), 0.0)


def jsd_discrete(p: np.ndarray, q: np.ndarray) -> float:
    p, q = _check_discrete(p, "p_data"), _check_discrete(q, "p_g")
    m = 0.5 * (p + q)
    return float(0.5 * _xlogy(p, p / np.where(m > 0, m, 1)).sum() + 0.5 * _xlogy(q, q / np.where(m > 0, m, 1)).sum())


def value_discrete(p: np.ndarray, q: np.ndarray, d: np.ndarray | None = None) -> float:
    """V(D, G) = sum_x p(x) log D(x) + q(x) log(1 - D(x)); at D* (default) this is C(G)."""
    p, q = _check_discrete(p, "p_data"), _check_discrete(q, "p_g")
    d = d_star_discrete(p, q) if d is None else np.asarray(d, dtype=np.float64)
    return float(_xlogy(p, d).sum() + _xlogy(q, 1.0 - d).sum())


def jsd_on_grid(p: np.ndarray, q: np.ndarray, x: np.ndarray) -> float:
    """JSD (nats) of two densities tabulated on an even grid x (trapezoid rule); for p_g known only by a KDE."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, None)
    q = np.clip(np.asarray(q, dtype=np.float64), 0.0, None)
    m = 0.5 * (p + q)
    safe_m = np.where(m > 0, m, 1.0)
    f = 0.5 * _xlogy(p, p / safe_m) + 0.5 * _xlogy(q, q / safe_m)
    return float(np.trapezoid(f, x))


# Gradients of the two G losses with respect to D's logit l for one fake sample, with D(G(z)) = sigmoid(l):
#   minimax        L = log(1 - sigmoid(l)) = -softplus(l)   ->  dL/dl = -sigmoid(l)     = -D
#   non-saturating L = -log sigmoid(l)     =  softplus(-l)  ->  dL/dl = -(1 - sigmoid(l)) = -(1 - D)
# so when D confidently rejects a fake (D -> 0), the minimax gradient vanishes while the other tends to -1.
def grad_minimax_wrt_logit(d: np.ndarray) -> np.ndarray:
    return -np.asarray(d, dtype=np.float64)


def grad_nonsaturating_wrt_logit(d: np.ndarray) -> np.ndarray:
    return -(1.0 - np.asarray(d, dtype=np.float64))


def grad_ratio(d: np.ndarray) -> np.ndarray:
    """(non-saturating gradient) / (minimax gradient) at D(G(z)) = d: (1 - d) / d."""
    d = np.asarray(d, dtype=np.float64)
    return (1.0 - d) / d
