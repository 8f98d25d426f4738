"""FD and KID against closed forms, scipy and brute force."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gankit.errors import GankitError
from gankit.metrics.frechet import FeatureBank, FrechetState, fd_from_states, frechet_distance, kid, sqrtm_psd


def _random_cov(rng, d, rank=None):
    a = rng.standard_normal((d, rank or d))
    return a @ a.T / d


def test_fd_of_identical_statistics_is_zero():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 16))
    mu, cov = x.mean(0), np.cov(x, rowvar=False)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)


def test_fd_of_two_gaussians_matches_the_closed_form():
    # commuting (diagonal) covariances: FD = |mu1 - mu2|^2 + sum (s1 - s2)^2 with s the standard deviations
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 0.5, 0.5])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    assert frechet_distance(mu1, np.diag(s1 ** 2), mu2, np.diag(s2 ** 2)) == pytest.approx(expected, rel=1e-12)


def test_fd_agrees_with_a_direct_scipy_computation():
    rng = np.random.default_rng(1)
    d = 20
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    c1, c2 = _random_cov(rng, d), _random_cov(rng, d)
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    direct = np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean)
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(direct, rel=1e-8)


def test_fd_survives_singular_covariances():
    # rank-deficient covariances (N < d) make scipy's sqrtm return complex round-off; ours stays real
    rng = np.random.default_rng(2)
    c1, c2 = _random_cov(rng, 64, rank=5), _random_cov(rng, 64, rank=5)
    fd = frechet_distance(np.zeros(64), c1, np.zeros(64), c2)
    assert np.isfinite(fd) and fd >= 0
    s = sqrtm_psd(c1)
    np.testing.assert_allclose(s @ s, c1, atol=1e-10)


def test_frechet_state_matches_numpy_and_warns_below_the_feature_dimension():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 8)) * 3 + 1000.0  # a large mean: the shifted sums keep the covariance exact
    st = FrechetState(8)
    for chunk in np.array_split(x, 7):
        st.update(torch.from_numpy(chunk).float())
    mu, cov = st.compute()
    xf = x.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(mu, xf.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(xf, rowvar=False), rtol=1e-9, atol=1e-9)
    small, other = FrechetState(8), FrechetState(8)
    small.update(torch.randn(5, 8))
    other.update(torch.randn(5, 8))
    with pytest.warns(UserWarning, match="rank-deficient"):
        fd_from_states(small, other)
    st.reset()
    with pytest.raises(GankitError, match="at least 2 samples"):
        st.compute()


def test_fd_rejects_mismatched_statistics():
    with pytest.raises(GankitError, match="matching statistics"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def _mmd2_brute(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_the_brute_force_unbiased_mmd():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((12, 3)), rng.standard_normal((12, 3)) + 0.5
    mean, std = kid(torch.from_numpy(x), torch.from_numpy(y), num_subsets=1, subset_size=12)
    assert mean == pytest.approx(_mmd2_brute(x, y), rel=1e-10)
    assert std == 0.0


def test_kid_is_zero_within_its_std_for_one_distribution_and_positive_for_shifted():
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(2000, 16, generator=g), torch.randn(2000, 16, generator=g)
    mean, std = kid(a, b, num_subsets=50, subset_size=500)
    assert abs(mean) < 2 * std + 1e-4
    shifted, sstd = kid(a, b + 0.5, num_subsets=50, subset_size=500)
    assert shifted > 10 * sstd and shifted > 0


def test_feature_bank_keeps_only_its_capacity():
    bank = FeatureBank(5)
    bank.update(torch.arange(8.0).view(4, 2))
    bank.update(torch.arange(8.0).view(4, 2) + 100)
    assert bank.compute().shape == (5, 2) and bank.compute()[4, 0] == 100
