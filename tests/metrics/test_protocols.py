"""The published protocols: 2-D mixtures (docs/PROTOCOLS.md §1) and Parzen windows (§3)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from gankit.errors import GankitError
from gankit.metrics.mixtures import MIXTURES, count_modes, sample_mixture
from gankit.metrics.parzen import parzen_log_likelihood, parzen_protocol, validation_slice


def test_mixture_means_follow_the_protocol():
    ring = MIXTURES["ring8"].means
    assert len(np.unique(np.round(ring, 6), axis=0)) == 8  # no linspace(0, 2 pi, 8) duplicate
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1.0)
    assert MIXTURES["ring8"].std == 0.01 and MIXTURES["grid25"].std == 0.05
    assert sorted(set(MIXTURES["grid25"].means[:, 0])) == [-4, -2, 0, 2, 4]


@pytest.mark.parametrize("name,modes", [("ring8", 8), ("grid25", 25)])
def test_a_perfect_sampler_captures_every_mode_with_98_9_percent_high_quality(name, modes):
    hq = []
    for seed in range(5):
        res = count_modes(sample_mixture(name, 2500, seed=seed), name)
        assert res["modes"] == modes
        hq.append(res["high_quality"])
        assert res["kl"] < 0.02
    # 1 - exp(-4.5) = 98.89 %; the std error of a mean over 5 x 2,500 samples is ~0.1 %
    assert np.mean(hq) == pytest.approx(1 - math.exp(-4.5), abs=0.004)


def test_a_collapsed_sampler_scores_one_mode():
    pts = torch.tensor(MIXTURES["grid25"].means[7]).float().repeat(2500, 1) + 0.01 * torch.randn(2500, 2)
    res = count_modes(pts, "grid25")
    assert res["modes"] == 1 and res["high_quality"] == 1.0
    assert res["kl"] == pytest.approx(math.log(25))
    far = count_modes(torch.full((100, 2), 10.0), "ring8")
    assert far["modes"] == 0 and far["high_quality"] == 0.0 and far["kl"] == math.inf


def test_mode_counting_rejects_non_2d_samples():
    with pytest.raises(GankitError, match="needs 2-D points"):
        count_modes(torch.zeros(5, 3), "ring8")
    with pytest.raises(GankitError, match="unknown mixture"):
        count_modes(torch.zeros(5, 2), "ring9")


def test_parzen_matches_a_brute_force_computation():
    rng = np.random.default_rng(0)
    centres, x = rng.random((30, 6)), rng.random((7, 6))
    sigmas = [0.1, 0.3, 1.0]
    ours = parzen_log_likelihood(torch.from_numpy(x), torch.from_numpy(centres), sigmas, block=3)
    for s, sigma in enumerate(sigmas):
        for j in range(len(x)):
            terms = [-np.sum((x[j] - c) ** 2) / (2 * sigma ** 2) for c in centres]
            expected = logsumexp(terms) - math.log(len(centres)) - 6 * math.log(sigma * math.sqrt(2 * math.pi))
            assert ours[s, j] == pytest.approx(expected, rel=1e-10)


def test_parzen_protocol_chooses_sigma_on_validation():
    rng = np.random.default_rng(1)
    centres = torch.from_numpy(rng.random((200, 4)))
    valid, test = torch.from_numpy(rng.random((50, 4))), torch.from_numpy(rng.random((60, 4)))
    res = parzen_protocol(centres, valid, test)
    best = float(np.logspace(-1, 0, 10)[int(np.argmax(res["valid_log_likelihood"]))])
    assert res["sigma"] == best
    ll = parzen_log_likelihood(test, centres, [best])[0]
    assert res["log_likelihood"] == pytest.approx(ll.mean()) and res["se"] == pytest.approx(ll.std() / math.sqrt(60))
    assert "high variance" in res["caveat"]
    assert validation_slice(60_000) == slice(50_000, 51_000) and validation_slice(1500) == slice(500, 1500)
