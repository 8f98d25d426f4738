"""Classifier score, class coverage and precision/recall/density/coverage against direct computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gankit.metrics.classes import ClassHistogram, InceptionScoreState, class_coverage, kl_divergence, stacked_modes
from gankit.metrics.prdc import density_coverage, knn_radii, precision_recall


def test_classifier_score_matches_the_formula_per_split():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(100, 10, generator=g) * 3, 1)
    st = InceptionScoreState(10, splits=4)
    for chunk in probs.split(13):
        st.update(chunk)
    p = probs.double().numpy()
    scores = []
    for s in range(4):  # sample i belongs to split i mod 4
        ps = p[s::4]
        pbar = ps.mean(0)
        scores.append(math.exp(np.mean(np.sum(ps * (np.log(ps) - np.log(pbar)), 1))))
    mean, std = st.compute()
    assert mean == pytest.approx(np.mean(scores), rel=1e-10)
    assert std == pytest.approx(np.std(scores), rel=1e-8)


def test_classifier_score_extremes():
    confident = torch.eye(10).repeat(10, 1)  # every class, each predicted with certainty
    st = InceptionScoreState(10, splits=1)
    st.update(confident)
    assert st.compute()[0] == pytest.approx(10.0)
    st.reset()
    st.update(torch.eye(10)[[3] * 50])  # collapsed on one class
    assert st.compute()[0] == pytest.approx(1.0)


def test_class_coverage_and_kl():
    h = ClassHistogram(4)
    h.update(torch.tensor([0, 0, 1, 1]))
    res = class_coverage(h.compute(), [1, 1, 1, 1])
    assert res["classes_reached"] == 2 and res["histogram"] == [0.5, 0.5, 0.0, 0.0]
    assert res["kl_to_real"] == pytest.approx(math.log(2))
    assert kl_divergence([1, 1], [1, 0]) == math.inf
    modes = stacked_modes(np.ones(1000))
    assert modes["modes"] == 1000 and modes["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)


def test_knn_radii_match_brute_force():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(1))
    d = torch.cdist(x.double(), x.double())
    expected = d.sort(1).values[:, 3]  # column 0 is the point itself
    np.testing.assert_allclose(knn_radii(x, 3).numpy(), expected.numpy())


def test_precision_recall_on_constructed_sets():
    # reals: 10 points on a line, spacing 1 -> with k=1 every ball has radius 1.
    real = torch.tensor([[float(i), 0.0] for i in range(10)])
    # fakes: 4 copies near reals (inside) and 1 far away (outside): precision 4/5.
    # recall: the fakes' k=1 balls. (0.05, 0) has radius 0.1 and holds real 0; the pair at (5, +-0.05) holds real
    # 5; the outlier's ball reaches its nearest fake (radius 67.3) and swallows reals 5..9 (the outlier
    # sensitivity Naeem et al. point out): reals {0, 5, 6, 7, 8, 9} -> 6/10.
    fake = torch.tensor([[0.05, 0.0], [0.15, 0.0], [5.0, 0.05], [5.0, -0.05], [50.0, 50.0]])
    p, r = precision_recall(real, fake, k=1)
    assert p == pytest.approx(4 / 5)
    assert r == pytest.approx(6 / 10)
    assert precision_recall(real, fake[:4], k=1)[1] == pytest.approx(2 / 10)  # without the outlier: reals 0, 5
    # identical sets: everything is inside
    assert precision_recall(real, real.clone(), k=2) == (1.0, 1.0)


def test_density_and_coverage_on_constructed_sets():
    real = torch.tensor([[float(i), 0.0] for i in range(10)])  # k=1 radius 1 for every real point
    # one fake at 0.5 lies strictly inside the balls of reals 0 and 1 -> counts 2; a fake at 4.0 lies in ball 4
    # only (distance 1 to reals 3 and 5 is not strictly inside) -> counts 1; a far fake counts 0.
    fake = torch.tensor([[0.5, 0.0], [4.0, 0.0], [100.0, 0.0]])
    density, coverage = density_coverage(real, fake, k=1)
    assert density == pytest.approx((2 + 1 + 0) / (1 * 3))
    # covered reals: 0 and 1 (nearest fake at 0.5), 4 (fake exactly on it): 3 of 10
    assert coverage == pytest.approx(3 / 10)


def test_density_coverage_match_brute_force_on_random_sets():
    g = torch.Generator().manual_seed(2)
    real, fake = torch.randn(60, 4, generator=g), torch.randn(40, 4, generator=g) + 0.3
    k = 5
    d_rr = torch.cdist(real.double(), real.double())
    radii = d_rr.sort(1).values[:, k]
    d_rf = torch.cdist(real.double(), fake.double())  # (N_real, N_fake)
    inside = d_rf < radii[:, None]
    density, coverage = density_coverage(real, fake, k)
    assert density == pytest.approx(float(inside.sum()) / (k * 40))
    assert coverage == pytest.approx(float(inside.any(1).double().mean()))
    p, r = precision_recall(real, fake, k)
    assert p == pytest.approx(float((d_rf <= radii[:, None]).any(0).double().mean()))
    fradii = torch.cdist(fake.double(), fake.double()).sort(1).values[:, k]
    assert r == pytest.approx(float((d_rf <= fradii[None]).any(1).double().mean()))
