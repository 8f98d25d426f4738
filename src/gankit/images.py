"""Turning image tensors into grids and PNG files."""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import torch

from .io import atomic_write_bytes


def make_grid(images: np.ndarray, nrow: int | None = None, pad: int = 2, pad_value: int = 0) -> np.ndarray:
    """uint8 (N, C, H, W) -> uint8 (H', W') for one channel or (H', W', 3); ``nrow`` images per row."""
    n, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    ncol = math.ceil(n / nrow)
    grid = np.full((c, ncol * (h + pad) + pad, nrow * (w + pad) + pad), pad_value, dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        grid[:, y:y + h, x:x + w] = images[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def to_numpy_uint8(x: torch.Tensor) -> np.ndarray:
    """float (N, C, H, W) in [-1, 1] -> uint8 numpy (N, C, H, W)."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def png_bytes(array: np.ndarray, scale: int = 1) -> bytes:
    """Encode a uint8 (H, W) or (H, W, 3) array as PNG, optionally upscaled by nearest neighbour."""
    from PIL import Image

    im = Image.fromarray(array)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def save_grid(images: np.ndarray, path: str | os.PathLike, nrow: int | None = None) -> Path:
    """Save uint8 (N, C, H, W) images as one PNG grid (small images are upscaled to stay visible)."""
    grid = make_grid(images, nrow)
    scale = max(1, 256 // max(grid.shape[0], grid.shape[1], 1))
    return atomic_write_bytes(Path(path), png_bytes(grid, scale=min(scale, 4)))


def gif_bytes(images: np.ndarray, zoom: int = 1, frame_ms: int = 100) -> bytes:
    """uint8 (T, C, H, W) frames -> an animated GIF that plays forward then back, looping forever."""
    from PIL import Image

    frames = []
    for im in images:
        arr = im[0] if im.shape[0] == 1 else im.transpose(1, 2, 0)
        f = Image.fromarray(np.ascontiguousarray(arr))
        if zoom > 1:
            f = f.resize((f.width * zoom, f.height * zoom), Image.Resampling.NEAREST)
        frames.append(f if f.mode == "L" else f.convert("P", palette=Image.Palette.ADAPTIVE))
    seq = frames + frames[-2:0:-1]  # ping-pong: A..B..A
    buf = io.BytesIO()
    seq[0].save(buf, format="GIF", save_all=True, append_images=seq[1:], duration=frame_ms, loop=0,
                disposal=1, optimize=False)
    return buf.getvalue()
