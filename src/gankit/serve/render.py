"""Pictures of a generator for the studio: sample grids and scatter plots as PNG bytes (an interpolation's latent
path is :func:`gankit.generator.interpolation_latents`, shared with ``gankit sample --interpolate``, and its loop
:func:`gankit.images.gif_bytes`).

Grids are :meth:`gankit.LoadedGenerator.sample`'s draw with its ``scale`` (latents ``scale * z``, ``z ~ N(0, I)``
drawn by :func:`gankit.generator.latents`), so they reproduce ``gankit sample --seed --scale``. Scaling the
latent towards its mean 0 is the truncation trick in z space (Brock et al. 2019, BigGAN Sec. 3.1; Karras et al.
2019 apply it in w): smaller scale, more typical but less varied samples.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.clusters import draw_labels
from ..images import make_grid, png_bytes, to_numpy_uint8

PAD = 2  # pixels between grid cells (gankit.images.make_grid's default)


def labels_for(n: int, seed: int, num_classes: int, label: int | None,
               shares: torch.Tensor | None = None) -> torch.Tensor | None:
    """int64 (n,) class labels: all ``label``, or drawn from the seed when None: uniformly, or by ``shares`` (a
    self-conditioned G's clusters, ``data.clusters``)."""
    if num_classes <= 0:
        return None
    if label is not None:
        return torch.full((n,), label, dtype=torch.long)
    g = torch.Generator().manual_seed(seed + 1)
    if shares is not None:
        return draw_labels(shares.double(), n, g)
    return torch.randint(num_classes, (n,), generator=g)


def generate(gen, z: torch.Tensor, labels: torch.Tensor | None) -> np.ndarray:
    """uint8 (n, C, H, W) images of the latents ``z`` (and int64 class ``labels`` (n,) for a conditional G)."""
    x = gen.sample(len(z), None, z=z, labels=labels)
    return to_numpy_uint8(x)


POINTS_SIZE = 256  # pixels of the square plot of a generator of points (toy 2-D mixtures)


def points_png(points: np.ndarray, zoom: int = 1) -> bytes:
    """float (n, d) samples of a generator of vectors -> a POINTS_SIZE square PNG: a scatter plot of the
    first two coordinates on a symmetric square range (a histogram of 64 bins when d == 1)."""
    size = POINTS_SIZE
    img = np.full((size, size), 255, dtype=np.uint8)
    p = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    p = p[np.isfinite(p).all(1)]
    if len(p) and p.shape[1] == 1:
        lim = max(1.0, float(np.abs(p).max())) * 1.1
        counts, _ = np.histogram(p[:, 0], bins=64, range=(-lim, lim))
        heights = (counts / max(counts.max(), 1) * (size - 8)).astype(int)
        w = size // 64
        for i, hgt in enumerate(heights):
            img[size - 4 - hgt: size - 4, i * w: (i + 1) * w - 1] = 60
    elif len(p):
        lim = max(1.0, float(np.abs(p[:, :2]).max())) * 1.1
        img[size // 2, :] = img[:, size // 2] = 220  # the axes through 0
        ij = ((p[:, :2] / lim + 1) / 2 * (size - 1)).round().astype(int)
        for dx in (0, 1):
            for dy in (0, 1):
                img[np.clip(size - 1 - ij[:, 1] - dy, 0, size - 1), np.clip(ij[:, 0] + dx, 0, size - 1)] = 30
    return png_bytes(img, scale=zoom)


def grid_shape(n: int, img_shape: tuple[int, int, int], nrow: int | None, zoom: int) -> tuple[int, int]:
    """(width, height) in pixels of the PNG :func:`grid_png` returns."""
    _, h, w = img_shape
    nrow = nrow or max(1, int(np.ceil(np.sqrt(n))))
    ncol = -(-n // nrow)
    return (nrow * (w + PAD) + PAD) * zoom, (ncol * (h + PAD) + PAD) * zoom


def grid_png(images: np.ndarray, nrow: int | None = None, zoom: int = 1) -> bytes:
    """uint8 (n, C, H, W) -> PNG bytes of one grid, ``nrow`` images per row, upscaled ``zoom`` times."""
    return png_bytes(make_grid(images, nrow, pad=PAD), scale=zoom)
