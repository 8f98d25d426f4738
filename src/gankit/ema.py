"""Exponential moving average of G's weights (G_ema), as in Karras et al. 2018 and Yazıcı et al. 2019.

G_ema is a copy of G that is never trained: after each G step its parameters move towards G's,
θ_ema ← β·θ_ema + (1 - β)·θ, and its buffers (BatchNorm running statistics) are copied from G.
Samples from G_ema are usually smoother and better than from G at the same step.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(G: nn.Module) -> nn.Module:
    """A frozen copy of ``G`` (eval mode, no gradients) to serve as G_ema."""
    G_ema = copy.deepcopy(G).eval()
    for p in G_ema.parameters():
        p.requires_grad_(False)
    return G_ema


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """θ_ema ← β·θ_ema + (1 - β)·θ for every parameter; buffers copied. ``beta`` in [0, 1)."""
    ema_p = list(G_ema.parameters())
    g_p = list(G.parameters())
    if len(ema_p) != len(g_p):
        raise ValueError("G_ema and G have different parameter lists")
    torch._foreach_lerp_(ema_p, g_p, 1.0 - beta)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def beta_from_half_life(half_life_steps: float) -> float:
    """β for which an update's weight halves after ``half_life_steps`` steps: β = 0.5^(1/half_life)."""
    return 0.5 ** (1.0 / half_life_steps)
