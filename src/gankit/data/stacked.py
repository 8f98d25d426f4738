"""Stacked MNIST (docs/PROTOCOLS.md §2; VEEGAN and PacGAN Table 2): 1,000 modes from 3 stacked digits.

Each image stacks 3 digits, drawn uniformly and independently from all images of an MNIST-format source (MNIST's
70,000 = train + test), as the 3 channels of a 28×28×3 image; its mode (the label) is 100·d1 + 10·d2 + d3.
128,000 images unless ``data.size`` says otherwise, drawn with numpy's PCG64 seeded by ``data.seed``; the
``test`` split is an independent draw (seed stream offset), for evaluation only.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import GankitError
from ..memory import check_fits

DEFAULT_SIZE = 128_000
NUM_MODES = 1000
_TEST_OFFSET = 1_000_003


def stack_digits(images: np.ndarray, labels: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """From (M, H, W) uint8 digits and labels (M,) in 0..9: (n, 3, H, W) uint8 stacks and modes (n,) int64."""
    if labels.min() < 0 or labels.max() > 9:
        raise GankitError(f"stacked-mnist needs digit labels 0..9, the source has {labels.min()}..{labels.max()}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, images.shape[0], size=(n, 3))  # three independent uniform draws per image
    stacks = images[idx]  # (n, 3, H, W): channel c holds digit idx[:, c]
    lab = labels.astype(np.int64)[idx]
    return stacks, lab[:, 0] * 100 + lab[:, 1] * 10 + lab[:, 2]


def build(parts: list, size: int | None, seed: int, split: str, source: str):
    """A :class:`gankit.data.Dataset` of stacked images from grayscale datasets ``parts`` (concatenated)."""
    from . import Dataset

    for p in parts:
        if p.labels is None:
            raise GankitError(f"stacked-mnist needs a labelled source; {p.source} has no labels file")
        if p.images.shape[1] != 1:
            raise GankitError(f"stacked-mnist needs grayscale digits, {p.source} has {p.images.shape[1]} channels")
    images = torch.cat([p.images[:, 0] for p in parts]).numpy()
    labels = torch.cat([p.labels for p in parts]).numpy()
    n = size if size is not None else DEFAULT_SIZE
    # the stacks (uint8) and the indices of their digits (int64, 3 per stack)
    check_fits(n * 3 * (images[0].size + 8), f"stacked-mnist of {n:,} images (data.size)", "lower data.size")
    stacks, modes = stack_digits(images, labels, n, seed + (_TEST_OFFSET if split == "test" else 0))
    return Dataset("stacked-mnist", torch.from_numpy(stacks), torch.from_numpy(modes),
                   f"{n} stacks of {images.shape[0]} images from {source}, seed {seed}, {split}", NUM_MODES)
