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
import torch.nn.functional as F

from ..config import ModelConfig
from .dcgan import init_module_

# The model.* keys these nets read besides models.COMMON_KEYS; any other key set away from its default is refused
# (models.check_model). leaky_slope acts in G only (D is maxout); bn_momentum and g_norm_slots need a batch norm.
KEYS = frozenset({"g_hidden", "d_hidden", "leaky_slope", "g_norm", "d_norm", "d_dropout", "maxout_pieces",
                  "g_norm_slots", "bn_momentum"})


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
        n, width = x.shape[0] // self.slots, x.shape[1]
        # Row k of this view holds pack k's samples side by side, so column j·width + c is slot j's feature c:
        # batch norm over the rows of it is batch norm per slot, in PyTorch's fused kernel (forward and backward;
        # about 2x faster than composing it from var_mean on CPU).
        x2 = x.reshape(n, self.slots * width)
        y = F.batch_norm(x2, None, None, self.weight.repeat(self.slots), self.bias.repeat(self.slots),
                         True, 0.0, self.eps)
        with torch.no_grad():
            mean = x2.mean(0)
            dev = x2 - mean
            var = (dev * dev).sum(0) / max(n - 1, 1)  # unbiased, as BatchNorm's running_var (square_ has no vmap rule)
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.reshape(self.slots, width).mean(0), alpha=m)
            self.running_var.mul_(1 - m).add_(var.reshape(self.slots, width).mean(0), alpha=m)
            self.num_batches_tracked.add_(1)
        return y.reshape(x.shape)


class Maxout(nn.Module):
    """(N, in) -> (N, out): max over ``pieces`` affine maps."""

    def __init__(self, d_in: int, d_out: int, pieces: int):
        super().__init__()
        self.d_out, self.pieces = d_out, pieces
        self.lin = nn.Linear(d_in, d_out * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # max(dim) rather than amax: the same values, and its backward (a scatter to the winning piece) costs half
        # of amax's, which spreads the gradient over ties (ties have probability zero here)
        return self.lin(x).view(x.shape[0], self.d_out, self.pieces).max(dim=2).values


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
