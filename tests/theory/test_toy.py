"""ring8, the docs/PROTOCOLS.md §1 scores, PacGAN packing, the Monte Carlo value and the energy distance."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from gankit.errors import GankitError
from gankit.theory import closed_form as cf
from gankit.theory.toy import RING8_MEANS, RING8_STD, Discriminator, energy_distance, mode_stats, ring8_sample, value_mc


def test_ring8_has_eight_distinct_modes_on_the_unit_circle():
    np.testing.assert_allclose(np.linalg.norm(RING8_MEANS, axis=1), 1.0)
    d = np.linalg.norm(RING8_MEANS[:, None] - RING8_MEANS[None], axis=-1) + np.eye(8) * 9
    # neighbours 2π/8 apart (linspace(0, 2π, 8) would put two means on top of each other)
    assert d.min() == pytest.approx(2 * math.sin(math.pi / 8), rel=1e-12)
    angles = np.sort(np.mod(np.arctan2(RING8_MEANS[:, 1], RING8_MEANS[:, 0]), 2 * math.pi))
    np.testing.assert_allclose(angles, 2 * math.pi * np.arange(8) / 8, atol=1e-12)


def test_perfect_samples_score_the_published_ceiling():
    x = ring8_sample(50_000, torch.Generator().manual_seed(0)).numpy()
    s = mode_stats(x)
    assert s["modes"] == 8
    # a 2-D Gaussian falls within 3 std with probability 1 - e^{-9/2} = 98.89 %
    p = 1 - math.exp(-4.5)
    assert s["high_quality_pct"] == pytest.approx(100 * p, abs=100 * 4 * math.sqrt(p * (1 - p) / len(x)))
    assert s["kl"] == pytest.approx(0.0, abs=1e-3)
    assert s["effective_modes"] == pytest.approx(8.0, abs=0.01)
    assert s["basin_pct"] == 100.0


def test_collapsed_and_off_target_samples():
    one_mode = RING8_MEANS[3] + RING8_STD * 0.1 * np.ones((100, 2))
    s = mode_stats(one_mode)
    assert (s["modes"], s["high_quality_pct"], s["counts"][3]) == (1, 100.0, 100)
    assert s["kl"] == pytest.approx(math.log(8), abs=1e-12)
    assert s["effective_modes"] == pytest.approx(1.0)
    two = np.concatenate([one_mode, RING8_MEANS[5] + np.zeros((100, 2))])
    assert mode_stats(two)["effective_modes"] == pytest.approx(2.0)
    s = mode_stats(np.zeros((50, 2)))  # the centre is far from every mode
    assert (s["modes"], s["high_quality_pct"], s["kl"], s["effective_modes"]) == (0, 0.0, None, None)
    # 0.3 from a mean: not high quality, yet within half the mode spacing, sin(π/8) ≈ 0.383
    s = mode_stats(RING8_MEANS * 1.3)
    assert (s["modes"], s["effective_modes"], s["basin_pct"]) == (0, pytest.approx(8.0), 100.0)


def test_packing_concatenates_consecutive_samples():
    D = Discriminator(2, (4,), pack=3)
    lin = D.net[0]
    x = torch.randn(6, 2)
    expected = D.net(torch.cat([x[0:3].reshape(1, 6), x[3:6].reshape(1, 6)])).squeeze(1)
    assert lin.in_features == 6
    torch.testing.assert_close(D(x), expected)
    with pytest.raises(GankitError, match="multiple of the packing"):
        D(torch.randn(5, 2))
    with pytest.raises(GankitError, match="at least 1"):
        Discriminator(2, (4,), pack=0)


class _LogitOfDStar(nn.Module):
    """D* for p_data = N(0, 1), p_g = N(1, 1): logit = log p_data - log p_g = 0.5 - x."""

    def forward(self, x):
        return (0.5 - x).squeeze(1)


def test_value_mc_of_the_exact_d_star_estimates_c_of_g():
    g = torch.Generator().manual_seed(0)
    p, q = cf.gaussian(0, 1), cf.gaussian(1, 1)
    v, se = value_mc(_LogitOfDStar(), p.sample(100_000, g), q.sample(100_000, g))
    assert abs(v - cf.value_at_d_star(p, q)) < 4 * se
    assert se < 0.01


def test_energy_distance_against_the_gaussian_closed_form():
    mu = 1.0
    # E|X - Y| for X - Y ~ N(mu, 2); E|X - X'| for N(0, 2)
    s = math.sqrt(2)
    e_xy = s * math.sqrt(2 / math.pi) * math.exp(-mu ** 2 / (2 * s * s)) + mu * (1 - 2 * stats.norm.cdf(-mu / s))
    exact = 2 * e_xy - 2 * s * math.sqrt(2 / math.pi)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(3000, 1, generator=g), torch.randn(3000, 1, generator=g) + mu
    assert energy_distance(x, y) == pytest.approx(exact, abs=0.03)
    assert abs(energy_distance(x, torch.randn(3000, 1, generator=g))) < 0.01
