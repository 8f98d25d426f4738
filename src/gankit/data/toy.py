"""Low-dimensional Gaussian mixtures: ``ring8`` and ``grid25`` exactly as in PacGAN's protocol (docs/PROTOCOLS.md §1),
and ``mog1d``, a 1-D mixture.

- ring8: 8 equal-weight Gaussians, means (cos 2πk/8, sin 2πk/8), k = 0..7, std 0.01. (Not linspace(0, 2π, 8),
  whose first and last angles coincide and leave 7 modes.)
- grid25: 25 equal-weight Gaussians, means {-4, -2, 0, 2, 4}², std 0.05.
- mog1d: 5 equal-weight Gaussians, means {-4, -2, 0, 2, 4}, std 0.1 (gankit's choice, not from a paper).
- drawn: the points a user drew in ``gankit lab``, each the mean of a Gaussian of std 0.05 (equal weights). A run
  the lab saves keeps them in its folder (``points.json``, :func:`write_points` / :func:`read_points`), so
  ``gankit eval`` scores it against its own data and ``gankit train --resume`` trains on it (:func:`load_drawn`).

Points are float32 (N, d), labels the component index (int64); 100,000 points unless ``data.size`` says
otherwise, drawn from numpy's PCG64 seeded by ``data.seed``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import GankitError
from ..memory import check_fits

DEFAULT_SIZE = 100_000
DRAWN = "drawn"  # the lab's data set of points drawn with the mouse
POINTS_FILE = "points.json"  # where a saved lab run keeps its drawn points
BLOB_STD = 0.05  # each drawn point is a Gaussian blob of this std, so p_data has a density
MAX_POINTS_FILE = 10_000  # points a points file may hold (the lab draws at most 200)


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


def drawn_mixture(points, std: float = BLOB_STD) -> Mixture:
    """The data set of drawn points (K, d): the equal-weight mixture of Gaussian blobs of ``std`` at them."""
    return Mixture(DRAWN, np.asarray(points, np.float64).reshape(len(points), -1), float(std))


def write_points(folder: str | Path, mixture: Mixture) -> Path:
    """Write ``mixture`` (the drawn points and their blob std) to ``folder/points.json``; returns the path."""
    from ..io import atomic_write_text

    doc = {"format": "gankit drawn points", "version": 1, "std": mixture.std,
           "points": [[float(c) for c in p] for p in mixture.means]}  # floats by repr: read back exactly
    return atomic_write_text(Path(folder) / POINTS_FILE, json.dumps(doc) + "\n")


def read_points(folder: str | Path) -> Mixture:
    """The drawn points saved in ``folder/points.json`` (by the lab's "Save run"), as their mixture; a one-line
    :class:`GankitError` when the file is missing or is not 1 to 10,000 points of finite numbers."""
    path = Path(folder).expanduser() / POINTS_FILE
    fix = "save the run again from 'gankit lab', or pass --data-dir FOLDER holding the points.json it saved"
    try:
        doc = json.loads(path.read_text())
        pts = np.asarray(doc["points"], np.float64)
        std = float(doc["std"])
    except FileNotFoundError:
        raise GankitError(f"{path} is missing: a run of drawn points trains on and is scored against them; "
                          f"{fix}") from None
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as e:
        why = f"{type(e).__name__}: {e}".splitlines()[0][:120]
        raise GankitError(f"{path}: unreadable drawn points ({why}); {fix}") from None
    if pts.ndim != 2 or pts.shape[1] not in (1, 2) or not 1 <= len(pts) <= MAX_POINTS_FILE:
        raise GankitError(f"{path}: points must be a list of 1 to {MAX_POINTS_FILE:,} [x, y] pairs, got an array "
                          f"of shape {pts.shape}; {fix}")
    if not (np.isfinite(pts).all() and math.isfinite(std) and std > 0):
        raise GankitError(f"{path}: points and std must be finite numbers and std > 0; {fix}")
    return drawn_mixture(pts, std)


def load_mixture(name: str | Mixture, size: int | None, seed: int, origin: str = "generated"):
    """A :class:`gankit.data.Dataset` of float32 points (N, d) with component labels: ``size`` points (default
    100,000) of the named mixture (or of a :class:`Mixture`), drawn with ``seed``."""
    from . import Dataset

    mix = name if isinstance(name, Mixture) else get_mixture(name)
    n = size if size is not None else DEFAULT_SIZE
    # sampling holds the components (int64) and two float64 (n, d) arrays besides the float32 result
    check_fits(n * (16 + 20 * mix.dim), f"the {mix.name} dataset of {n:,} points (data.size)", "lower data.size")
    x, comp = mix.sample(n, seed)
    return Dataset(mix.name, torch.from_numpy(x), torch.from_numpy(comp), f"{origin} (seed {seed}, {n} points)",
                   mix.num_modes)


def load_drawn(folder: str | Path, size: int | None, seed: int):
    """The ``drawn`` data set: ``size`` points (default 100,000) of the blob mixture of the points saved in
    ``folder/points.json``, drawn with ``seed``; with the lab's size and seed, the very points the lab trained on."""
    path = Path(folder).expanduser() / POINTS_FILE
    return load_mixture(read_points(folder), size, seed, origin=f"generated from {path}")


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
