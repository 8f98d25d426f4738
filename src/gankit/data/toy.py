"""Low-dimensional Gaussian mixtures: ``ring8`` and ``grid25`` exactly as in PacGAN's protocol (docs/PROTOCOLS.md §1),
and ``mog1d``, a 1-D mixture.

- ring8: 8 equal-weight Gaussians, means (cos 2πk/8, sin 2πk/8), k = 0..7, std 0.01. (Not linspace(0, 2π, 8),
  whose first and last angles coincide and leave 7 modes.)
- grid25: 25 equal-weight Gaussians, means {-4, -2, 0, 2, 4}², std 0.05.
- mog1d: 5 equal-weight Gaussians, means {-4, -2, 0, 2, 4}, std 0.1 (gankit's choice, not from a paper).

Points are float32 (N, d), labels the component index (int64); 100,000 points unless ``data.size`` says
otherwise, drawn from numpy's PCG64 seeded by ``data.seed``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import GankitError
from ..memory import check_fits

DEFAULT_SIZE = 100_000


@dataclass(frozen=True)
class Mixture:
    """Equal-weight isotropic Gaussian mixture: ``means`` (K, d) float64, one ``std`` for all components."""

    name: str
    means: np.ndarray
    std: float

    @property
    def num_modes(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` points (n, d) float32 and their components (n,) int64."""
        rng = np.random.default_rng(seed)
        comp = rng.integers(0, self.num_modes, size=n)
        x = self.means[comp] + self.std * rng.standard_normal((n, self.dim))
        return x.astype(np.float32), comp.astype(np.int64)


def _ring(k: int, radius: float = 1.0) -> np.ndarray:
    angles = 2.0 * math.pi * np.arange(k) / k  # k distinct angles; linspace(0, 2π, k) would repeat 0 = 2π
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _grid(values: list[float]) -> np.ndarray:
    return np.array([(x, y) for x in values for y in values], dtype=np.float64)


MIXTURES: dict[str, Mixture] = {
    "ring8": Mixture("ring8", _ring(8), 0.01),
    "grid25": Mixture("grid25", _grid([-4.0, -2.0, 0.0, 2.0, 4.0]), 0.05),
    "mog1d": Mixture("mog1d", np.array([[-4.0], [-2.0], [0.0], [2.0], [4.0]]), 0.1),
}


def get_mixture(name: str) -> Mixture:
    """The named mixture's parameters (docs/PROTOCOLS.md §1 for ring8 and grid25)."""
    if name not in MIXTURES:
        raise GankitError(f"unknown mixture {name!r}; choose one of: {', '.join(MIXTURES)}")
    return MIXTURES[name]


def load_mixture(name: str, size: int | None, seed: int):
    """A :class:`gankit.data.Dataset` of float32 points (N, d) with component labels."""
    from . import Dataset

    mix = get_mixture(name)
    n = size if size is not None else DEFAULT_SIZE
    # sampling holds the components (int64) and two float64 (n, d) arrays besides the float32 result
    check_fits(n * (16 + 20 * mix.dim), f"the {name} dataset of {n:,} points (data.size)", "lower data.size")
    x, comp = mix.sample(n, seed)
    return Dataset(name, torch.from_numpy(x), torch.from_numpy(comp), f"generated (seed {seed}, {n} points)",
                   mix.num_modes)


def save_points_png(points: torch.Tensor, path: Path, title: str = "") -> Path:
    """Scatter plot of (N, 2) points (or a histogram of (N, 1)) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = points.detach().float().cpu().numpy().reshape(points.shape[0], -1)
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if p.shape[1] == 1:
        ax.hist(p[:, 0], bins=200)
    else:
        ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.5)
        ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
