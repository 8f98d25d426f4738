"""Closed forms of Goodfellow et al. (2014) against docs/PROTOCOLS.md §5 and against independent computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from gankit.errors import GankitError
from gankit.theory import closed_form as cf


@pytest.mark.parametrize("p_g,ref_jsd,ref_c", cf.REFERENCE_PAIRS, ids=[p.label for p, _, _ in cf.REFERENCE_PAIRS])
def test_reference_pairs_match_protocol_table(p_g, ref_jsd, ref_c):
    js = cf.jsd(cf.P_DATA_REF, p_g)
    c = cf.value_at_d_star(cf.P_DATA_REF, p_g)
    assert js == pytest.approx(ref_jsd, abs=1e-5)
    assert c == pytest.approx(ref_c, abs=1e-5)
    # Theorem 1 holds between two independent quadratures, far below the table's rounding
    assert c == pytest.approx(cf.c_from_jsd(js), abs=1e-9)


def test_discrete_reference():
    ref = cf.REFERENCE_DISCRETE
    np.testing.assert_allclose(cf.d_star_discrete(ref["p"], ref["q"]), ref["d_star"], atol=1e-5)
    assert cf.jsd_discrete(ref["p"], ref["q"]) == pytest.approx(ref["jsd"], abs=1e-5)
    assert cf.value_discrete(ref["p"], ref["q"]) == pytest.approx(ref["c"], abs=1e-5)
    assert cf.value_discrete(ref["p"], ref["q"]) == pytest.approx(cf.c_from_jsd(ref["jsd"]), abs=1e-5)


def test_discrete_jsd_against_scipy_and_d_star_is_the_maximiser():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5))
        # scipy's jensenshannon returns the square root of the JSD
        assert cf.jsd_discrete(p, q) == pytest.approx(stats.entropy(p, 0.5 * (p + q)) / 2
                                                      + stats.entropy(q, 0.5 * (p + q)) / 2, abs=1e-12)
        from scipy.spatial.distance import jensenshannon
        assert math.sqrt(cf.jsd_discrete(p, q)) == pytest.approx(jensenshannon(p, q), abs=1e-9)
        best = cf.value_discrete(p, q)
        for _ in range(10):  # any other D scores lower
            assert cf.value_discrete(p, q, rng.uniform(0.01, 0.99, 5)) <= best + 1e-12


def test_discrete_disjoint_supports_reach_log2_and_zero_at_equality():
    assert cf.jsd_discrete([1, 0], [0, 1]) == pytest.approx(math.log(2), abs=1e-12)
    assert cf.value_discrete([1, 0], [0, 1]) == pytest.approx(0.0, abs=1e-12)
    assert cf.jsd_discrete([0.3, 0.7], [0.3, 0.7]) == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(cf.d_star_discrete([0.3, 0.7, 0.0], [0.3, 0.7, 0.0]), [0.5, 0.5, 0.5])


def test_d_star_is_half_for_equal_densities_and_matches_the_formula():
    x = np.linspace(-4, 4, 81)
    np.testing.assert_allclose(cf.d_star(cf.gaussian(0, 1), cf.gaussian(0, 1), x), 0.5)
    p, q = stats.norm(0, 1).pdf(x), stats.norm(1, 1).pdf(x)
    np.testing.assert_allclose(cf.d_star(cf.gaussian(0, 1), cf.gaussian(1, 1), x), p / (p + q), rtol=1e-12)


def test_mixture_density_and_samples():
    mix = cf.Mixture1D((0.3, 0.7), (-2.0, 1.0), (0.5, 1.5))
    x = np.linspace(-6, 7, 50)
    ref = 0.3 * stats.norm(-2, 0.5).pdf(x) + 0.7 * stats.norm(1, 1.5).pdf(x)
    np.testing.assert_allclose(mix.pdf(x), ref, rtol=1e-12)
    assert integrate.quad(mix.pdf, *mix.support())[0] == pytest.approx(1.0, abs=1e-9)
    s = mix.sample(200_000, torch.Generator().manual_seed(0)).numpy()[:, 0]
    mean = 0.3 * -2 + 0.7 * 1
    var = 0.3 * (0.25 + 4) + 0.7 * (2.25 + 1) - mean ** 2
    assert s.mean() == pytest.approx(mean, abs=4 * math.sqrt(var / s.size))
    assert s.var() == pytest.approx(var, rel=0.02)


def test_jsd_on_grid_matches_quadrature_and_far_gaussians_approach_log2():
    x = np.linspace(-10, 12, 4001)
    p, q = cf.gaussian(0, 1), cf.gaussian(1.5, 0.7)
    assert cf.jsd_on_grid(p.pdf(x), q.pdf(x), x) == pytest.approx(cf.jsd(p, q), abs=1e-7)
    assert cf.jsd(cf.gaussian(0, 1), cf.gaussian(40, 1)) == pytest.approx(math.log(2), abs=1e-9)


def test_bad_inputs_raise():
    with pytest.raises(GankitError, match="sum to 1"):
        cf.Mixture1D((0.5, 0.6), (0.0, 1.0), (1.0, 1.0))
    with pytest.raises(GankitError, match="stds must be positive"):
        cf.Mixture1D((1.0,), (0.0,), (0.0,))
    with pytest.raises(GankitError, match="as many weights"):
        cf.Mixture1D((1.0,), (0.0, 1.0), (1.0,))
    with pytest.raises(GankitError, match="probability vector"):
        cf.jsd_discrete([0.5, 0.6], [0.5, 0.5])
