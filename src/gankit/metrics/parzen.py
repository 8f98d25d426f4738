"""Parzen-window log-likelihood with Goodfellow et al.'s protocol (2014, Table 1; docs/PROTOCOLS.md §3).

A Gaussian kernel density with bandwidth sigma is centred on each generated sample (pixels in [0, 1]):
    log p(x) = logmeanexp_i(-||x - mu_i||^2 / (2 sigma^2)) - d log(sigma sqrt(2 pi)).
sigma is chosen from logspace(-1, 0, 10) by the mean log-likelihood of a validation set (MNIST
train[50000:51000]), then the test set's mean log-likelihood is reported ± std / sqrt(N).
Caveat, from the paper itself: the estimate has high variance and does poorly in high dimensions; report it
for parity with published tables, never as the headline number.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import GankitError
from .frechet import FeatureBank
from .metric import Metric

CAVEAT = ("Parzen-window estimates have high variance and are unreliable in high dimensions (Goodfellow et al. "
          "2014; Theis et al. 2016): reported for parity with published tables, not as a quality measure")
SIGMAS = np.logspace(-1, 0, 10)
PROTOCOL_N = 10_000


def _sq_dists(x: torch.Tensor, centres: torch.Tensor, centre_sq: torch.Tensor) -> torch.Tensor:
    """||x_j - mu_i||^2 (len(x), len(centres)), float64."""
    return ((x * x).sum(1, keepdim=True) + centre_sq[None] - 2.0 * x @ centres.T).clamp_min_(0.0)


def parzen_log_likelihood(x: torch.Tensor, centres: torch.Tensor, sigmas, block: int = 500) -> np.ndarray:
    """Per-point log-likelihoods (len(sigmas), N) of ``x`` (N, d) under Parzen windows on ``centres`` (M, d)."""
    x = x.detach().double().reshape(len(x), -1)
    c = centres.detach().double().reshape(len(centres), -1)
    if x.shape[1] != c.shape[1]:
        raise GankitError(f"Parzen: points have {x.shape[1]} values, centres {c.shape[1]}")
    sigmas = np.atleast_1d(np.asarray(sigmas, np.float64))
    d, m = x.shape[1], len(c)
    c_sq = (c * c).sum(1)
    out = np.empty((len(sigmas), len(x)))
    for i in range(0, len(x), block):
        sq = _sq_dists(x[i:i + block], c, c_sq)
        for s, sigma in enumerate(sigmas):
            lme = torch.logsumexp(-sq / (2 * sigma * sigma), dim=1) - math.log(m)
            out[s, i:i + block] = (lme - d * math.log(sigma * math.sqrt(2 * math.pi))).numpy()
    return out


def parzen_protocol(centres: torch.Tensor, valid: torch.Tensor, test: torch.Tensor, sigmas=SIGMAS) -> dict:
    """Choose sigma on ``valid``, report ``test``'s mean log-likelihood ± std/sqrt(N). All in [0, 1]."""
    v = parzen_log_likelihood(valid, centres, sigmas).mean(1)
    best = int(np.argmax(v))
    sigma = float(np.asarray(sigmas)[best])
    ll = parzen_log_likelihood(test, centres, [sigma])[0]
    return {"log_likelihood": float(ll.mean()), "se": float(ll.std() / math.sqrt(len(ll))), "sigma": sigma,
            "valid_log_likelihood": [float(a) for a in v], "n_centres": len(centres), "n_test": len(ll),
            "caveat": CAVEAT}


def validation_slice(n_train: int) -> slice:
    """MNIST's protocol validates on train[50000:51000]; smaller training sets use their last 1,000 images."""
    if n_train >= 51_000:
        return slice(50_000, 51_000)
    return slice(max(0, n_train - 1000), n_train)


# ----------------------------------------------------------------------------------------------
# The registered metric (gankit.metrics.registry): the samples themselves are the kernel centres.

def _pixels(x: torch.Tensor, emb) -> torch.Tensor:
    """Samples (N, C, H, W) in [-1, 1] as flat float64 rows in [0, 1], the protocol's pixel scale."""
    return (x.reshape(len(x), -1).double() + 1) / 2


def _sets(real_test, real_train) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation, test) images as float64 rows in [0, 1]; the validation slice comes from the train split."""
    if real_test is None or real_train is None:
        raise GankitError("parzen needs the real train (validation slice) and test splits")
    valid = real_train.images[validation_slice(len(real_train))]
    return (valid.reshape(len(valid), -1).double() / 255.0,
            real_test.images.reshape(len(real_test), -1).double() / 255.0)


def _parzen(state: FeatureBank, real: tuple[torch.Tensor, torch.Tensor], spec) -> dict:
    valid, test = real
    return {**parzen_protocol(state.compute(), valid, test), "n_real": len(test)}


def _headline(res: dict) -> str:
    return f"log-likelihood {res['log_likelihood']:.1f} ± {res['se']:.1f} (sigma {res['sigma']:.3f})"


PARZEN = Metric("parzen", "Parzen-window log-likelihood, Goodfellow et al. 2014 protocol; 10,000 samples (high "
                "variance)", state=lambda spec, evaluator, mixture: FeatureBank(spec.n), read=_pixels,
                compute=_parzen, headline=_headline, real_data=_sets, holdout=validation_slice, n=PROTOCOL_N)
