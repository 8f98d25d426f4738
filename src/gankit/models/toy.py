"""Networks for low-dimensional data (2-D mixtures, 1-D mixtures), after PacGAN (Lin et al. 2018).

G: z -> g_hidden × [Linear, norm, ReLU (leaky when model.leaky_slope > 0)] -> Linear (no tanh: points are
   unbounded). PacGAN: 4 × 400 with batch norm, z 2-D.
D: x -> d_hidden × maxout (Goodfellow et al. 2013: max over ``maxout_pieces`` linear pieces) -> Linear 1.
   PacGAN: 3 × 200 units of 5 pieces.
Any data shape works (flattened in, reshaped out), so these nets also run on images.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ModelConfig
from .dcgan import init_module_


def _norm1d(kind: str, width: int, momentum: float = 0.1, slots: int = 1) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(width, momentum=momentum) if slots == 1 else SlotBatchNorm1d(width, slots, momentum)
    if kind == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


class SlotBatchNorm1d(nn.BatchNorm1d):
    """Batch norm with statistics per slot: sample i of a batch belongs to slot i mod ``slots``.

    PacGAN's code runs G once per slot of a pack (m batches of B/m latents), so each batch norm normalises each
    slot by that slot's own mean and variance; its population statistics then move once per step, by
    ``momentum`` times the slots' mean statistics. Here the m slots are interleaved in one batch (pack k holds
    samples k·m .. k·m + m - 1, one per slot). Parameters, buffers and evaluation are ``nn.BatchNorm1d``'s.
    """

    def __init__(self, width: int, slots: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__(width, eps=eps, momentum=momentum)
        self.slots = slots

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        n = x.shape[0] // self.slots
        xs = x.view(n, self.slots, x.shape[1])
        var, mean = torch.var_mean(xs, dim=0, unbiased=False)  # (slots, width) each, one pass
        y = (xs - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.mean(0), alpha=m)
            self.running_var.mul_(1 - m).add_((var * (n / max(n - 1, 1))).mean(0), alpha=m)
            self.num_batches_tracked.add_(1)
        return y.view_as(x)


class Maxout(nn.Module):
    """(N, in) -> (N, out): max over ``pieces`` affine maps."""

    def __init__(self, d_in: int, d_out: int, pieces: int):
        super().__init__()
        self.d_out, self.pieces = d_out, pieces
        self.lin = nn.Linear(d_in, d_out * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).view(x.shape[0], self.d_out, self.pieces).amax(dim=2)


class ToyGenerator(nn.Module):
    """z (N, z_dim) float -> samples (N, *shape) float, unbounded."""

    def __init__(self, cfg: ModelConfig, img_shape: tuple[int, ...]):
        super().__init__()
        self.z_dim, self.img_shape = cfg.z_dim, tuple(img_shape)
        layers: list[nn.Module] = []
        width = cfg.z_dim
        for h in cfg.g_hidden:
            layers += [nn.Linear(width, h), _norm1d(cfg.g_norm, h, cfg.bn_momentum, cfg.g_norm_slots),
                       nn.LeakyReLU(cfg.leaky_slope) if cfg.leaky_slope > 0 else nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, math.prod(self.img_shape)))
        self.net = nn.Sequential(*layers)
        init_module_(self, cfg.init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.img_shape)


class ToyDiscriminator(nn.Module):
    """samples (N, *shape) float -> logits (N,); maxout hidden layers."""

    def __init__(self, cfg: ModelConfig, img_shape: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(img_shape)
        for h in cfg.d_hidden:
            layers.append(Maxout(width, h, cfg.maxout_pieces))
            if cfg.d_norm != "none":
                layers.append(_norm1d(cfg.d_norm, h, cfg.bn_momentum))
            if cfg.d_dropout > 0:
                layers.append(nn.Dropout(cfg.d_dropout))
            width = h
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)
        init_module_(self, cfg.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)
