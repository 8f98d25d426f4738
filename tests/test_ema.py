"""EMA of G's weights (ema.py): the update arithmetic on parameters and buffers, and β from a half-life."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit.ema import beta_from_half_life, make_ema, update_ema


def test_ema_update_arithmetic():
    G = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    E = make_ema(G)
    assert not any(p.requires_grad for p in E.parameters())
    w0 = E[0].weight.clone()
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1.0)
        G[1].running_mean.fill_(3.0)
    update_ema(E, G, beta=0.9)
    torch.testing.assert_close(E[0].weight, 0.9 * w0 + 0.1 * (w0 + 1.0))
    torch.testing.assert_close(E[1].running_mean, torch.full((2,), 3.0))
    update_ema(E, G, beta=0.0)
    torch.testing.assert_close(E[0].weight, G[0].weight)
    assert beta_from_half_life(10) ** 10 == pytest.approx(0.5)
