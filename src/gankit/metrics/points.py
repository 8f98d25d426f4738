"""Scoring generators of points (the toy mixtures ring8, grid25, mog1d and a lab run's drawn points) in the plane.

A classifier's features mean nothing for points, so the feature metrics read the samples' own coordinates:
``fd`` is the Fréchet distance of the two point clouds' Gaussians in the plane, ``kid``, ``pr`` and ``dc`` the
kernel distance, precision/recall and density/coverage of the clouds themselves. :class:`PointEvaluator` stands
where a domain classifier would: its "features" are the points (N, d) as they are.

The real side is the data's mixture (:mod:`gankit.data.toy`): for ``drawn``, the Gaussian blobs (std 0.05) at
the points the lab saved in the run folder (``points.json``), the very distribution the run trained on. The real
test split is ``size`` points of it drawn with seed ``data.seed + 1``, the floor's training split ``size`` points
with seed ``data.seed + 2`` (the training set used ``data.seed``). ``modes2d`` counts the mixture's modes
(clusters of drawn points, see :mod:`gankit.metrics.mixtures`).
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from ..config import DataConfig
from ..data import Dataset
from ..data.toy import DRAWN, MIXTURES, POINTS_FILE, Mixture, read_points
from ..errors import GankitError
from .evaluator import Embedding

POINT_METRICS = ("modes2d", "fd", "kid", "pr", "dc")  # what means something for points (no classes, no images)
TEST_SEED, TRAIN_SEED = 1, 2  # offsets from data.seed of the real splits' draws


def point_mixture(data: DataConfig) -> Mixture | None:
    """The mixture of a point data set (ring8, grid25, mog1d; drawn: read from ``data.dir``/points.json), or
    None for image data."""
    if data.name in MIXTURES:
        return MIXTURES[data.name]
    if data.name == DRAWN:
        if not data.dir:
            raise GankitError(f"dataset {DRAWN!r} (points drawn in gankit lab) is kept in its run folder: score the "
                              f"run folder, or pass --data-dir FOLDER holding its {POINTS_FILE}")
        return read_points(data.dir)
    return None


def check_point_metrics(kinds: list[str], data: DataConfig) -> None:
    """Refuse, in one line, metrics that need a classifier or images on point data."""
    bad = [k for k in kinds if k not in POINT_METRICS]
    if bad:
        raise GankitError(f"{', '.join(dict.fromkeys(bad))}: not defined for the points of {data.name!r}; "
                          f"points are scored with {', '.join(POINT_METRICS)}")


def point_splits(mixture: Mixture, data: DataConfig, size: int) -> tuple[Dataset, Dataset]:
    """(train, test): ``size`` float32 points (size, d) each of ``mixture``, from seeds data.seed + 2 and + 1."""
    def split(offset: int, which: str) -> Dataset:
        x, comp = mixture.sample(size, data.seed + offset)
        return Dataset(mixture.name, torch.from_numpy(x), torch.from_numpy(comp),
                       f"{mixture.name} {which} (seed {data.seed + offset}, {size} points)", mixture.num_modes)
    return split(TRAIN_SEED, "train"), split(TEST_SEED, "test")


def mixture_sha256(mixture: Mixture) -> str:
    """SHA-256 of a mixture's means (float64) and std: names the real side a report was scored against."""
    h = hashlib.sha256(np.ascontiguousarray(mixture.means, np.float64).tobytes())
    h.update(np.float64(mixture.std).tobytes())
    return h.hexdigest()


class PointEvaluator:
    """The evaluator of point data: features are the samples' own coordinates (N, d), float32; ``labels`` the
    nearest mixture component; no class probabilities. Its card names the real side by :func:`mixture_sha256`."""

    origin = "no classifier"

    def __init__(self, mixture: Mixture):
        self.mixture = mixture
        self.means = torch.from_numpy(mixture.means)
        self.card = {"family": f"points:{mixture.name}", "dataset": mixture.name, "sha256": mixture_sha256(mixture),
                     "architecture": "none: the samples' own coordinates", "feature_layer": "coordinates",
                     "feature_dim": mixture.dim}

    @property
    def feature_dim(self) -> int:
        return self.mixture.dim

    def check_shape(self, shape) -> None:
        if tuple(shape) != (self.mixture.dim,):
            raise GankitError(f"samples of shape {tuple(shape)} are not {self.mixture.dim}-D points of "
                              f"{self.mixture.name!r}")

    def to(self, device) -> "PointEvaluator":
        return self

    def embed(self, x: torch.Tensor) -> Embedding:
        """``x``: float (N, d) points."""
        f = x.detach().to("cpu", torch.float32).reshape(len(x), -1)
        return Embedding(f, None, torch.cdist(f.double(), self.means).argmin(1))
