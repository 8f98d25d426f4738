"""Section 4's claim: the G losses' gradients with respect to D's logit, and their ratio (1 - D)/D."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gankit.losses import g_minimax, g_nonsaturating
from gankit.theory import closed_form as cf
from gankit.theory.experiments import loss_gradients


@pytest.mark.parametrize("d", [1e-4, 0.01, 0.2, 0.5, 0.8, 0.999])
def test_gradient_ratio_matches_closed_form(d):
    g = loss_gradients(np.array([d]))
    assert g["minimax"][0] == pytest.approx(cf.grad_minimax_wrt_logit(d), rel=1e-9)
    assert g["nonsaturating"][0] == pytest.approx(cf.grad_nonsaturating_wrt_logit(d), rel=1e-9)
    assert g["nonsaturating"][0] / g["minimax"][0] == pytest.approx((1 - d) / d, rel=1e-8)


def test_batch_gradients_are_per_sample_over_n_and_losses_share_fixed_point():
    d = torch.tensor([0.01, 0.3, 0.9], dtype=torch.float64)
    logits = torch.log(d / (1 - d)).requires_grad_(True)
    g_minimax(logits, None).backward()
    np.testing.assert_allclose(logits.grad.numpy(), -d.numpy() / 3, rtol=1e-10)
    logits.grad = None
    g_nonsaturating(logits, None).backward()
    np.testing.assert_allclose(logits.grad.numpy(), -(1 - d.numpy()) / 3, rtol=1e-10)
    # both losses, as functions of D, are decreasing in D: G pushes D(G(z)) up with either
    for f in (g_minimax, g_nonsaturating):
        vals = [float(f(torch.tensor([math.log(p / (1 - p))]), None)) for p in (0.1, 0.5, 0.9)]
        assert vals[0] > vals[1] > vals[2]
