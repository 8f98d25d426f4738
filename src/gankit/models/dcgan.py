"""DCGAN (Radford et al. 2016): transposed-convolution G, strided-convolution D, for square images of any size
that halves down to a small start (28 -> 7, 32 -> 4, 64 -> 4; grayscale or RGB).

G: z -> Linear to (2^(n-1)·g_channels, s0, s0) -> n × [norm, ReLU, ConvT 4×4 stride 2] -> tanh, where the last
   ConvT outputs the image channels and each earlier one halves the width. Each ConvT doubles the size, or doubles
   it less one where the image size is odd at that depth: with ``model.g_layers 4`` a 28×28 G grows
   2 -> 4 -> 7 -> 14 -> 28 from 512 channels, the mirror of the Stacked MNIST D (the DCGAN code's ceil(28 / 16)).
D: x -> n × [Conv 4×4 stride 2, norm (not on the first), leaky ReLU] (widths d_channels·1, 2, 4, ...) -> flatten
   -> Linear 1. At 64×64 that is the paper's 64-128-256-512 D; at 28×28 it is 64-128, or with
   ``model.d_layers 4`` the 64-128-256-512 D of the Stacked MNIST protocol (28 -> 14 -> 7 -> 3 -> 1 pixels).
Every D in gankit exposes ``features(x) -> (N, F)`` and ``head`` (Linear F -> 1), which the conditional
wrappers build on.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import GankitError

# The model.* keys these nets read besides models.COMMON_KEYS; any other key set away from its default is refused
# (models.check_model). leaky_slope and d_dropout act in D only (G uses ReLU, as Radford et al.).
KEYS = frozenset({"g_channels", "d_channels", "g_layers", "d_layers", "g_norm", "d_norm", "leaky_slope", "d_dropout"})


def start_resolution(res: int) -> tuple[int, int]:
    """(s0, n): halve ``res`` while it stays even and >= 4 after halving; ``res = s0 · 2^n``."""
    s, n = res, 0
    while s % 2 == 0 and s // 2 >= 4:
        s //= 2
        n += 1
    return s, n


def check_image_shape(arch: str, img_shape: tuple[int, ...]) -> tuple[int, int]:
    """(channels, resolution) of a square image shape, or a GankitError naming what fits instead."""
    if len(img_shape) != 3:
        raise GankitError(f"model.arch {arch} needs images (C, H, W), the data are vectors of shape "
                          f"{tuple(img_shape)}; use model.arch toy or mlp")
    c, h, w = img_shape
    if h != w or start_resolution(h)[1] == 0:
        raise GankitError(f"model.arch {arch} needs square images whose size halves at least once to >= 4 "
                          f"(e.g. 8, 28, 32, 64), got {h}×{w}; resize with --data.resolution or use model.arch mlp")
    return c, h


def norm2d(kind: str, channels: int) -> nn.Module:
    """``model.g_norm``/``d_norm`` for feature maps: batch, layer (GroupNorm of one group) or none (Identity)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # normalises over (C, H, W) per sample
    return nn.Identity()


def init_module_(module: nn.Module, scheme: str) -> nn.Module:
    """Initialise every Linear/Conv (and norm scale) of ``module`` in place.

    ``dcgan``: weights N(0, 0.02), norm scales N(1, 0.02), biases 0 (Radford et al. 2016, Sec. 4).
    ``glorot_uniform``: Glorot-uniform weights, biases 0 (TF1's default). ``torch``: leave PyTorch's defaults.
    """
    if scheme == "torch":
        return module
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            if scheme == "dcgan":
                nn.init.normal_(m.weight, 0.0, 0.02)
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)) and scheme == "dcgan":
            if m.weight is not None:
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
    return module


class DCGANGenerator(nn.Module):
    """z (N, z_dim) float -> images (N, C, H, W) in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, img_shape: tuple[int, ...]):
        super().__init__()
        c, res = check_image_shape("dcgan", img_shape)
        n = start_resolution(res)[1]
        if cfg.g_layers:
            if 2 ** cfg.g_layers > res:
                raise GankitError(f"model.g_layers {cfg.g_layers} starts {res}-pixel images below one pixel; use at "
                                  f"most {res.bit_length() - 1}")
            n = cfg.g_layers
        sizes = [-(-res // 2 ** (n - i)) for i in range(n + 1)]  # ceil(res / 2^(n-i)): s0, ..., res
        self.z_dim = cfg.z_dim
        self.img_shape = tuple(img_shape)
        widths = [cfg.g_channels * 2 ** (n - 1 - i) for i in range(n)]  # at s0, 2·s0, ...
        self.s0, self.w0 = sizes[0], widths[0]
        self.fc = nn.Linear(cfg.z_dim, widths[0] * sizes[0] ** 2)
        layers: list[nn.Module] = []
        for i in range(n):
            out = widths[i + 1] if i + 1 < n else c
            odd = sizes[i + 1] == 2 * sizes[i] - 1  # (s - 1)·2 - 2·2 + 4 + 1 = 2s - 1
            layers += [norm2d(cfg.g_norm, widths[i]), nn.ReLU(),
                       nn.ConvTranspose2d(widths[i], out, 4, stride=2, padding=2 if odd else 1,
                                          output_padding=1 if odd else 0)]
        layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        init_module_(self, cfg.init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(z.shape[0], self.w0, self.s0, self.s0))


class DCGANDiscriminator(nn.Module):
    """images (N, C, H, W) float -> logits (N,)."""

    def __init__(self, cfg: ModelConfig, img_shape: tuple[int, ...]):
        super().__init__()
        c, res = check_image_shape("dcgan", img_shape)
        s0, n = start_resolution(res)
        if cfg.d_layers:
            if 2 ** cfg.d_layers > res:
                raise GankitError(f"model.d_layers {cfg.d_layers} halves {res}-pixel images below one pixel; use at "
                                  f"most {res.bit_length() - 1}")
            n = cfg.d_layers
            s0 = res >> n  # each Conv 4x4 / 2 with padding 1 maps s to floor(s / 2)
        layers: list[nn.Module] = []
        width_in = c
        for i in range(n):
            w = cfg.d_channels * 2 ** i
            layers.append(nn.Conv2d(width_in, w, 4, stride=2, padding=1))
            if i > 0:  # DCGAN: no normalisation on D's input layer
                layers.append(norm2d(cfg.d_norm, w))
            layers.append(nn.LeakyReLU(cfg.leaky_slope))
            if cfg.d_dropout > 0:
                layers.append(nn.Dropout(cfg.d_dropout))
            width_in = w
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width_in * s0 * s0, 1)
        init_module_(self, cfg.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)
