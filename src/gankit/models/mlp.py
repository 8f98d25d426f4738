"""Multilayer-perceptron G and D: the seed tutorial's models, generalised.

Seed: G: z (100) -> Linear 128 -> leaky ReLU 0.2 -> Linear 784 -> tanh.
      D: x (784) -> Linear 128 -> leaky ReLU 0.2 -> Linear 1 (a logit; D(x) = sigmoid(logit)).
Any image shape works (flattened), and the hidden widths/depth come from the config.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ModelConfig
from .layers import MinibatchStd, init_linear

# The model.* keys these nets read besides models.COMMON_KEYS; any other key set away from its default is refused
# (models.check_model). bn_momentum is not among them: the batch norms keep PyTorch's momentum 0.1.
KEYS = frozenset({"g_hidden", "d_hidden", "leaky_slope", "g_norm", "d_norm", "d_dropout", "d_mbstd"})


def _norm(kind: str, width: int) -> nn.Module | None:
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.LayerNorm(width)
    return None


class MLPGenerator(nn.Module):
    """z (N, z_dim) float -> images (N, C, H, W) in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, img_shape: tuple[int, int, int]):
        super().__init__()
        self.z_dim = cfg.z_dim
        self.img_shape = tuple(img_shape)
        layers: list[nn.Module] = []
        width = cfg.z_dim
        for h in cfg.g_hidden:
            layers.append(init_linear(nn.Linear(width, h), cfg.init))
            norm = _norm(cfg.g_norm, h)
            if norm is not None:
                layers.append(norm)
            layers.append(nn.LeakyReLU(cfg.leaky_slope))
            width = h
        layers.append(init_linear(nn.Linear(width, math.prod(self.img_shape)), cfg.init))
        layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.img_shape)


class MLPDiscriminator(nn.Module):
    """images (N, C, H, W) float in [-1, 1] -> logits (N,); D(x) = sigmoid(logit) is P(x is real)."""

    def __init__(self, cfg: ModelConfig, img_shape: tuple[int, int, int]):
        super().__init__()
        layers: list[nn.Module] = []
        width = math.prod(img_shape)
        for h in cfg.d_hidden:
            layers.append(init_linear(nn.Linear(width, h), cfg.init))
            norm = _norm(cfg.d_norm, h)
            if norm is not None:
                layers.append(norm)
            layers.append(nn.LeakyReLU(cfg.leaky_slope))
            if cfg.d_dropout > 0:
                layers.append(nn.Dropout(cfg.d_dropout))
            width = h
        if cfg.d_mbstd > 0:  # one more input to the head: the batch's spread
            layers.append(MinibatchStd(cfg.d_mbstd))
            width += 1
        layers.append(init_linear(nn.Linear(width, 1), cfg.init))
        self.net = nn.Sequential(*layers)  # one Sequential, as the seed's checkpoints name it (net.0, net.2, ...)

    @property
    def head(self) -> nn.Linear:
        """The final Linear (F -> 1), as every gankit D exposes it for the conditional wrappers."""
        return self.net[-1]  # type: ignore[return-value]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x) (N, F): everything before :attr:`head`."""
        return self.net[:-1](x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)
