"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same random, differentiable transforms are applied to every image D sees, real and fake, in the D and
the G step, so G receives gradients through them. Policies, as in the authors' code:

- ``color``: brightness + U(-0.5, 0.5); saturation (x - mean over channels)·U(0, 2) + mean; contrast
  (x - mean over the image)·U(0.5, 1.5) + mean. Values may leave [-1, 1], as in the reference.
- ``translation``: shift by up to 1/8 of the image size in each direction, zero-padded.
- ``cutout``: zero a square of half the image size at a random position (it may be clipped at the border).

Images are float (N, C, H, W); every transform draws per-sample randomness from ``generator``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import GankitError


def _u(n: int, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """U[0, 1) per sample, shaped (N, 1, 1, 1) to broadcast over an image."""
    return torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype, generator=generator)


def brightness(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return x + (_u(x.shape[0], x, generator) - 0.5)


def saturation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_u(x.shape[0], x, generator) * 2.0) + mean


def contrast(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_u(x.shape[0], x, generator) + 0.5) + mean


def color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return contrast(saturation(brightness(x, generator), generator), generator)


def translation(x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by integers (dy, dx) in [-s, s], s = round(ratio·size); vacated pixels are 0."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (n, 1), device=x.device, generator=generator)
    dx = torch.randint(-sx, sx + 1, (n, 1), device=x.device, generator=generator)
    padded = F.pad(x, [sx, sx, sy, sy])  # (N, C, H + 2sy, W + 2sx)
    iy = torch.arange(h, device=x.device)[None, :] + sy - dy  # (N, H) rows of padded to read
    ix = torch.arange(w, device=x.device)[None, :] + sx - dx  # (N, W)
    nidx = torch.arange(n, device=x.device)[:, None, None]
    out = padded[nidx, :, iy[:, :, None], ix[:, None, :]]  # (N, H, W, C): advanced dims come first
    return out.permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.5) -> torch.Tensor:
    """Multiply by a mask that is 0 on one (ratio·H) × (ratio·W) square per image, centre uniform."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device, generator=generator)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device, generator=generator)
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = ((rows - cy + ch // 2) >= 0) & ((rows - cy + ch // 2) < ch) \
        & ((cols - cx + cw // 2) >= 0) & ((cols - cx + cw // 2) < cw)  # (N, H, W)
    return x * (~inside).to(x.dtype)[:, None]


POLICIES = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ("color", "translation"); ``""`` -> (). Unknown names raise GankitError."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    for name in names:
        if name not in POLICIES:
            raise GankitError(f"unknown augmentation {name!r} in {policy!r}; use a comma-separated subset of "
                              f"{', '.join(POLICIES)}")
    return names


def diff_augment(x: torch.Tensor, policy: str | tuple[str, ...], generator: torch.Generator | None = None
                 ) -> torch.Tensor:
    """Apply the policy's transforms in order; ``x`` (N, C, H, W) float -> same shape, differentiable."""
    names = parse_policy(policy) if isinstance(policy, str) else policy
    if names and x.dim() != 4:
        raise GankitError(f"DiffAugment needs images (N, C, H, W), got a tensor of shape {tuple(x.shape)}; "
                          f"set loss.augment to '' for non-image data")
    for name in names:
        x = POLICIES[name](x, generator)
    return x
