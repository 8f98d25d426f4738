"""ResNet G and D of SNGAN for CIFAR-10 (Miyato et al. 2018, Table 4; the authors' chainer code).

G: z -> Linear to (g_channels, s0, s0) -> n × up-ResBlock -> BN, ReLU, Conv 3×3 -> tanh (32×32: s0 = 4, n = 3,
   g_channels 256).
D: x -> optimized down-block -> (n - 2) down-blocks -> 2 plain blocks -> ReLU -> sum over H, W -> Linear 1
   (32×32: d_channels 128, features at 8×8). Spectral norm is switched on by ``model.d_spectral_norm``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .dcgan import check_image_shape, init_module_, norm2d, start_resolution

# The model.* keys these nets read besides models.COMMON_KEYS; any other key set away from its default is refused
# (models.check_model). SNGAN's blocks use plain ReLU and no dropout, and its depth follows from the resolution;
# D has no normalisation layers (model.d_spectral_norm, a common key, is its normalisation).
KEYS = frozenset({"g_channels", "d_channels", "g_norm"})


class GBlock(nn.Module):
    """norm, ReLU, upsample ×2, conv 3×3, norm, ReLU, conv 3×3; shortcut: upsample, conv 1×1."""

    def __init__(self, c_in: int, c_out: int, norm: str):
        super().__init__()
        self.n1, self.n2 = norm2d(norm, c_in), norm2d(norm, c_out)
        self.c1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.c2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.sc = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.n1(x)), scale_factor=2, mode="nearest")
        h = self.c2(F.relu(self.n2(self.c1(h))))
        return h + self.sc(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """[ReLU,] conv 3×3, ReLU, conv 3×3, [avg-pool 2]; shortcut: conv 1×1 (when needed), [avg-pool 2].

    ``first`` is SNGAN's optimized block: no ReLU before the first conv, shortcut pools before its conv.
    """

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.c1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.c2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.sc = nn.Conv2d(c_in, c_out, 1) if (down or c_in != c_out) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.c2(F.relu(self.c1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:
            s = self.sc(F.avg_pool2d(s, 2))
        else:
            if self.sc is not None:
                s = self.sc(s)
            if self.down:
                s = F.avg_pool2d(s, 2)
        return h + s


class ResNetGenerator(nn.Module):
    """z (N, z_dim) float -> images (N, C, H, W) in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, img_shape: tuple[int, ...]):
        super().__init__()
        c, res = check_image_shape("resnet", img_shape)
        self.s0, n = start_resolution(res)
        self.z_dim, self.img_shape, self.ch = cfg.z_dim, tuple(img_shape), cfg.g_channels
        self.fc = nn.Linear(cfg.z_dim, self.ch * self.s0 * self.s0)
        self.blocks = nn.Sequential(*[GBlock(self.ch, self.ch, cfg.g_norm) for _ in range(n)])
        self.out = nn.Sequential(norm2d(cfg.g_norm, self.ch), nn.ReLU(), nn.Conv2d(self.ch, c, 3, padding=1),
                                 nn.Tanh())
        init_module_(self, cfg.init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.fc(z).view(z.shape[0], self.ch, self.s0, self.s0)))


class ResNetDiscriminator(nn.Module):
    """images (N, C, H, W) float -> logits (N,); ``features`` sums the last block over H and W."""

    def __init__(self, cfg: ModelConfig, img_shape: tuple[int, ...]):
        super().__init__()
        c, res = check_image_shape("resnet", img_shape)
        n = start_resolution(res)[1]
        ch = cfg.d_channels
        blocks = [DBlock(c, ch, down=True, first=True)]
        blocks += [DBlock(ch, ch, down=True) for _ in range(max(n - 2, 0))]
        blocks += [DBlock(ch, ch, down=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(ch, 1)
        init_module_(self, cfg.init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.blocks(x)).sum(dim=(2, 3))  # (N, ch): global sum pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)
