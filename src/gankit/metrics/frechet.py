"""Fréchet distance (FD) and kernel inception distance (KID) in a feature space, plus the streaming states.

FD (Heusel et al. 2017, https://arxiv.org/abs/1706.08500) between Gaussians fitted to two feature sets:
    ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}).
KID (Bińkowski et al. 2018, https://arxiv.org/abs/1801.01401): unbiased MMD^2 with the cubic polynomial
kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets; reported as mean ± std over subsets.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ..errors import GankitError
from .metric import Metric, all_real, read_features, same_size, show_fields, show_mean_std


def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition (float64).

    Tiny negative eigenvalues from round-off are clipped to 0, so the result is always real."""
    a = np.asarray(a, dtype=np.float64)
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^{1/2}) for covariance matrices S1, S2 (float64).

    S1 S2 is not symmetric, so a general sqrtm can return complex round-off (the "imaginary component" crash
    of early FID code). With A = S1^{1/2}, S1 S2 is similar to A S2 A, which is symmetric PSD: its
    eigenvalues are real and >= 0 and their square roots sum to the trace we want."""
    a = sqrtm_psd(sigma1)
    m = a @ np.asarray(sigma2, dtype=np.float64) @ a
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """FD between N(mu1, sigma1) and N(mu2, sigma2); means (d,), covariances (d, d); float64, >= 0."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise GankitError(f"FD needs matching statistics, got means {mu1.shape}, {mu2.shape} and covariances "
                          f"{sigma1.shape}, {sigma2.shape}")
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))
    return max(fd, 0.0)


class FrechetState:
    """Running float64 sums for a feature mean and covariance: ``update(features)``, ``compute()``, ``reset()``.

    Memory is O(d^2) whatever the number of samples. Sums are taken around a shift (the first batch's mean)
    so that the covariance does not lose precision to cancellation when features have a large mean."""

    def __init__(self, dim: int):
        self.dim = dim
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.shift: torch.Tensor | None = None
        self.sum = torch.zeros(self.dim, dtype=torch.float64)
        self.sum_outer = torch.zeros(self.dim, self.dim, dtype=torch.float64)

    def update(self, features: torch.Tensor) -> None:
        """``features``: (N, d) float."""
        f = features.detach().to("cpu", torch.float64).reshape(len(features), -1)
        if f.shape[1] != self.dim:
            raise GankitError(f"FD state holds {self.dim}-d features, got {f.shape[1]}-d")
        if self.shift is None:
            self.shift = f.mean(0)
        f = f - self.shift
        self.n += f.shape[0]
        self.sum += f.sum(0)
        self.sum_outer += f.T @ f

    def compute(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean (d,), unbiased covariance (d, d)), float64 numpy."""
        if self.n < 2:
            raise GankitError(f"FD needs at least 2 samples, got {self.n}")
        m = self.sum / self.n
        cov = (self.sum_outer - self.n * torch.outer(m, m)) / (self.n - 1)
        return (m + self.shift).numpy(), cov.numpy()  # type: ignore[operator]


def fd_from_states(fake: FrechetState, real: FrechetState) -> float:
    if min(fake.n, real.n) < fake.dim:
        warnings.warn(f"FD from {min(fake.n, real.n)} samples in {fake.dim}-d features: the covariance is "
                      f"rank-deficient and FD is biased upward; use N >= {fake.dim} (10k is the convention)",
                      stacklevel=2)
    return frechet_distance(*fake.compute(), *real.compute())


def kid(real: torch.Tensor, fake: torch.Tensor, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
        ) -> tuple[float, float]:
    """KID between feature sets (N, d) and (M, d): mean and std of the unbiased MMD^2 over ``num_subsets``
    random subsets of ``min(subset_size, N, M)`` from each. Returns (mean, std)."""
    x, y = real.detach().double().cpu(), fake.detach().double().cpu()
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise GankitError(f"KID needs at least 2 samples on each side, got {len(x)} and {len(y)}")
    d = x.shape[1]
    g = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(num_subsets):
        xs = x[torch.randperm(len(x), generator=g)[:m]]
        ys = y[torch.randperm(len(y), generator=g)[:m]]
        kxx = (xs @ xs.T / d + 1) ** 3
        kyy = (ys @ ys.T / d + 1) ** 3
        kxy = (xs @ ys.T / d + 1) ** 3
        # unbiased: diagonal terms k(x_i, x_i) left out of the within-set means
        mmd = ((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
               - 2 * kxy.mean())
        vals.append(float(mmd))
    a = np.array(vals)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


class FeatureBank:
    """Keeps up to ``capacity`` feature rows (float32) for metrics that need the points themselves (KID,
    precision/recall, density/coverage). Images are never kept; 10k x 128 features take 5 MB."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.reset()

    def reset(self) -> None:
        self.chunks: list[torch.Tensor] = []
        self.n = 0

    def update(self, features: torch.Tensor) -> None:
        take = min(self.capacity - self.n, len(features))
        if take > 0:
            self.chunks.append(features[:take].detach().float().cpu())
            self.n += take

    def compute(self) -> torch.Tensor:
        return torch.cat(self.chunks) if self.chunks else torch.empty(0, 0)


# ----------------------------------------------------------------------------------------------
# The registered metrics (gankit.metrics.registry).

def _fd(state: FrechetState, real: FrechetState, spec) -> dict:
    with warnings.catch_warnings(record=True) as caught:  # a rank-deficient covariance: said in the report
        warnings.simplefilter("always")
        out: dict = {"fd": fd_from_states(state, real)}
    if caught:
        out["warning"] = str(caught[0].message)
    return out


def _kid(state: FeatureBank, real: FeatureBank, spec) -> dict:
    mean, std = kid(real.compute(), state.compute())
    return {"kid": mean, "kid_std": std}


FD = Metric("fd", "Fréchet distance of the domain classifier's feature Gaussians (lower is better)",
            state=lambda spec, evaluator, mixture: FrechetState(evaluator.feature_dim), read=read_features,
            compute=_fd, headline=show_fields("fd"), features=True, real_n=all_real)
KID = Metric("kid", "kernel distance, unbiased MMD^2 with a cubic kernel, mean ± std over 100 subsets (lower is "
             "better)", state=lambda spec, evaluator, mixture: FeatureBank(spec.n), read=read_features,
             compute=_kid, headline=show_mean_std("kid", "kid_std"), features=True, real_n=same_size)
