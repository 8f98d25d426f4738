"""Losses against values computed by hand from their definitions."""
import math

import pytest
import torch

from gankit.losses import d_bce, g_minimax, g_nonsaturating, get_loss, list_losses
from gankit.errors import GankitError


def sig(x):
    return 1 / (1 + math.exp(-x))


def bce(logit, target):
    p = sig(logit)
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_d_loss_with_real_target_0_9_matches_hand_computation():
    real, fake = [0.0, 2.0, -1.5], [-1.0, 0.5, 3.0]
    expected = sum(bce(r, 0.9) for r in real) / 3 + sum(bce(f, 0.0) for f in fake) / 3
    got = d_bce(torch.tensor(real), torch.tensor(fake), real_target=0.9, fake_target=0.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_d_loss_at_half_is_log_4():
    # D(x) = D(G(z)) = 1/2 (logits 0): -V = log 2 + log 2
    z = torch.zeros(10)
    assert d_bce(z, z).item() == pytest.approx(math.log(4), rel=1e-7)


def test_g_losses_match_their_formulas():
    fake = [-3.0, 0.0, 1.0]
    ns = sum(-math.log(sig(f)) for f in fake) / 3  # -E log D(G(z))
    mm = sum(math.log(1 - sig(f)) for f in fake) / 3  # E log(1 - D(G(z)))
    t = torch.tensor(fake)
    assert g_nonsaturating(t).item() == pytest.approx(ns, rel=1e-6)
    assert g_minimax(t).item() == pytest.approx(mm, rel=1e-6)


def test_g_loss_gradients_wrt_logit_match_closed_forms():
    # d/dl [-log sigmoid(l)] = -(1 - D); d/dl [log(1 - sigmoid(l))] = -D, with D = sigmoid(l)
    for l in (-6.0, -1.0, 0.0, 2.0):
        t = torch.tensor([l], requires_grad=True)
        g_nonsaturating(t).backward()
        assert t.grad.item() == pytest.approx(-(1 - sig(l)), rel=1e-6)
        t = torch.tensor([l], requires_grad=True)
        g_minimax(t).backward()
        assert t.grad.item() == pytest.approx(-sig(l), rel=1e-6)


def test_minimax_is_stable_for_extreme_logits():
    t = torch.tensor([-100.0, 100.0])
    assert torch.isfinite(g_minimax(t)) and torch.isfinite(g_nonsaturating(t))


def test_loss_registry_rejects_unknown_names():
    assert "nonsaturating" in list_losses() and "minimax" in list_losses()
    with pytest.raises(GankitError, match="unknown loss 'hinged'; choose one of"):
        get_loss("hinged")
