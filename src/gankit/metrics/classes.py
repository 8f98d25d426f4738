"""Scores read off the domain classifier's predictions: Inception-style score and class coverage.

IS (Salimans et al. 2016, https://arxiv.org/abs/1606.03498) = exp(E_x KL(p(y|x) || p(y))), here with gankit's
domain classifier instead of Inception, so it ranges from 1 to num_classes. Class coverage: which classes the
generator reaches, the histogram of predicted classes, and KL(p_fake || p_real) of the class frequencies.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import GankitError
from .metric import Metric, all_real, read_labels, read_probs, show_mean_std, show_reached


class InceptionScoreState:
    """Running float64 sums for the classifier score over ``splits`` interleaved splits (sample i goes to
    split i mod splits, which for i.i.d. samples is a random split). O(splits x K) memory."""

    def __init__(self, num_classes: int, splits: int = 10):
        self.num_classes, self.splits = num_classes, splits
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.sum_p = torch.zeros(self.splits, self.num_classes, dtype=torch.float64)
        self.sum_plogp = torch.zeros(self.splits, dtype=torch.float64)
        self.count = torch.zeros(self.splits, dtype=torch.float64)

    def update(self, probs: torch.Tensor) -> None:
        """``probs``: (N, K) class probabilities (rows sum to 1)."""
        p = probs.detach().to("cpu", torch.float64)
        split = (torch.arange(len(p)) + self.n) % self.splits
        self.sum_p.index_add_(0, split, p)
        self.sum_plogp.index_add_(0, split, torch.xlogy(p, p).sum(1))
        self.count.index_add_(0, split, torch.ones(len(p), dtype=torch.float64))
        self.n += len(p)

    def compute(self) -> tuple[float, float]:
        """(mean, std) of exp(mean KL) over the splits."""
        if self.n < self.splits:
            raise GankitError(f"IS over {self.splits} splits needs at least {self.splits} samples, got {self.n}")
        pbar = self.sum_p / self.count[:, None]
        kl = self.sum_plogp / self.count - torch.xlogy(pbar, pbar).sum(1)
        scores = torch.exp(kl).numpy()
        return float(scores.mean()), float(scores.std())


class ClassHistogram:
    """Counts of predicted classes (float64): ``update(labels)``, ``compute()`` -> (K,) counts."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        self.counts = torch.zeros(self.num_classes, dtype=torch.float64)

    def update(self, labels: torch.Tensor) -> None:
        self.counts += torch.bincount(labels.detach().cpu().long(), minlength=self.num_classes).double()

    def compute(self) -> np.ndarray:
        return self.counts.numpy().copy()


def kl_divergence(p_counts, q_counts) -> float:
    """KL(p || q) in nats between two histograms (normalised here). Infinite where p has mass that q lacks."""
    p = np.asarray(p_counts, np.float64)
    q = np.asarray(q_counts, np.float64)
    p, q = p / p.sum(), q / q.sum()
    mask = p > 0
    if np.any(q[mask] == 0):
        return math.inf
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def class_coverage(fake_counts, real_counts) -> dict:
    """Classes reached (at least one sample), the fake class frequencies and KL(p_fake || p_real)."""
    fake = np.asarray(fake_counts, np.float64)
    return {"classes_reached": int((fake > 0).sum()), "num_classes": int(fake.size),
            "kl_to_real": kl_divergence(fake, real_counts),
            "histogram": [round(float(c) / fake.sum(), 5) for c in fake]}


def stacked_modes(counts) -> dict:
    """Stacked MNIST (docs/PROTOCOLS.md §2): modes captured out of 1,000 and KL(p_gen || uniform) in nats."""
    counts = np.asarray(counts, np.float64)
    return {"modes": int((counts > 0).sum()), "num_modes": int(counts.size),
            "kl_to_uniform": kl_divergence(counts, np.ones_like(counts))}


# ----------------------------------------------------------------------------------------------
# The registered metrics (gankit.metrics.registry).

STACKED_N = 26_000  # PacGAN's Table 2 protocol: 26,000 samples


def _is_state(spec, evaluator, mixture) -> InceptionScoreState:
    if getattr(evaluator, "base", None) is not None:
        raise GankitError("the classifier score (is) is not defined for stacked images; use 'stacked'")
    return InceptionScoreState(evaluator.num_classes)


def _histogram(spec, evaluator, mixture) -> ClassHistogram:
    return ClassHistogram(evaluator.num_classes)


def _is(state: InceptionScoreState, real, spec) -> dict:
    mean, std = state.compute()
    return {"is": mean, "is_std": std, "n_real": None}  # no real side: the score is read off the fakes alone


def _classes(state: ClassHistogram, real: ClassHistogram, spec) -> dict:
    return class_coverage(state.compute(), real.compute())


def _stacked(state: ClassHistogram, real, spec) -> dict:
    return {**stacked_modes(state.compute()), "n_real": None}  # against the uniform distribution over the modes


IS = Metric("is", "classifier score exp(E KL(p(y|x) || p(y))), 1..num_classes, mean ± std over 10 splits",
            state=_is_state, read=read_probs, compute=_is, headline=show_mean_std("is", "is_std"), features=True)
CLASSES = Metric("classes", "class coverage: classes reached, predicted-class histogram, KL(p_fake || p_real)",
                 state=_histogram, read=read_labels, compute=_classes,
                 headline=show_reached("classes_reached", "num_classes", "kl_to_real"), features=True,
                 real_n=all_real)
STACKED = Metric("stacked", "Stacked MNIST: modes out of 1,000 and KL to uniform; 26,000 samples (PacGAN Table 2)",
                 state=_histogram, read=read_labels, compute=_stacked,
                 headline=show_reached("modes", "num_modes", "kl_to_uniform"), features=True, n=STACKED_N)
