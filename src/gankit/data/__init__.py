"""Datasets as one uint8 tensor: ``images`` (N, C, H, W) and optional ``labels`` (N,).

Small image datasets fit in memory many times over, so gankit keeps them resident (on the training device)
and draws batches by index; there is no per-item DataLoader work. Pixels stay uint8 until a batch is drawn,
then map to [-1, 1] (see :func:`to_unit_range`).
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import GankitError
from . import folder as _folder
from . import sources
from .idx import load_idx_pair


@dataclass
class Dataset:
    """An in-memory image dataset. ``images``: uint8 (N, C, H, W); ``labels``: int64 (N,) or None."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor | None
    source: str  # where it was read from, for the manifest
    num_classes: int = 0

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> "Dataset":
        labels = self.labels.to(device) if self.labels is not None else None
        return Dataset(self.name, self.images.to(device), labels, self.source, self.num_classes)


def to_unit_range(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in [0, 255] -> float32 in [-1, 1] (the seed's tanh output range)."""
    return x_uint8.to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> uint8 in [0, 255], rounded, clamped."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)


DATASETS = ("auto", "mnist", "fashion-mnist", "digits", "idx", "folder")


def list_datasets() -> list[str]:
    return list(DATASETS)


def _from_numpy(name: str, images: np.ndarray, labels: np.ndarray | None, source: str) -> Dataset:
    if images.ndim == 3:
        images = images[:, None, :, :]  # (N, H, W) -> (N, 1, H, W)
    elif images.ndim == 4:
        images = images.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    t = torch.from_numpy(np.ascontiguousarray(images))
    lab = torch.from_numpy(labels.astype(np.int64)) if labels is not None else None
    num_classes = int(lab.max().item()) + 1 if lab is not None and lab.numel() else 0
    return Dataset(name, t, lab, source, num_classes)


def load_digits(split: str = "train") -> Dataset:
    """scikit-learn's bundled 1,797 8x8 handwritten digits (pixel values 0..16, scaled to 0..255).

    Read straight from the CSV that ships inside scikit-learn, so it works offline. There is no official
    split: ``train`` is all 1,797 images, ``test`` the last 297 (a holdout for evaluation only).
    """
    try:
        import sklearn.datasets
    except ImportError:  # pragma: no cover - sklearn is a dependency
        raise GankitError("the digits dataset needs scikit-learn: pip install scikit-learn") from None
    path = Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"
    try:
        raw = np.loadtxt(gzip.open(path, "rt"), delimiter=",", dtype=np.float64)
    except (OSError, ValueError) as e:
        raise GankitError(f"{path}: cannot read scikit-learn's digits ({e})") from None
    images = np.rint(raw[:, :64].reshape(-1, 8, 8) * (255.0 / 16.0)).astype(np.uint8)
    labels = raw[:, 64].astype(np.int64)
    if split == "test":
        images, labels = images[-297:], labels[-297:]
    return _from_numpy("digits", images, labels, str(path))


def _load_remote(cfg: DataConfig, ds: sources.RemoteDataset, allow_download: bool, log) -> Dataset:
    prefix = "train" if cfg.split == "train" else "test"
    roles = [f"{prefix}_images", f"{prefix}_labels"]
    found = sources.locate(ds, roles, cfg.dir)
    if found is None:
        if not allow_download:
            raise GankitError(f"{ds.name} not found in {', '.join(map(str, sources.search_dirs(ds.name, cfg.dir)))}"
                              f" and downloads are off; {ds.how_to_get}")
        found = sources.download(ds, roles, log=log)
    images, labels = load_idx_pair(found[roles[0]], found[roles[1]])
    return _from_numpy(ds.name, images, labels, str(found[roles[0]].parent))


def _load_idx_dir(cfg: DataConfig) -> Dataset:
    if not cfg.dir:
        raise GankitError("dataset 'idx' needs a folder: pass --data-dir DIR (MNIST-format IDX files)")
    folder = Path(cfg.dir).expanduser()
    if not folder.is_dir():
        raise GankitError(f"--data-dir {folder} is not a folder")
    prefix = "train" if cfg.split == "train" else "t10k"
    images_path = sources.find_in(folder, f"{prefix}-images-idx3-ubyte.gz")
    if images_path is None:
        candidates = sorted(p for p in folder.iterdir() if "images" in p.name and "idx" in p.name)
        if cfg.split == "test":
            candidates = [p for p in candidates if "t10k" in p.name or "test" in p.name]
        else:
            candidates = [p for p in candidates if "t10k" not in p.name and "test" not in p.name]
        if not candidates:
            raise GankitError(f"{folder}: no IDX images file ({prefix}-images-idx3-ubyte[.gz]) found")
        images_path = candidates[0]
    labels_name = images_path.name.replace("images", "labels").replace("idx3", "idx1")
    labels_path = folder / labels_name
    images, labels = load_idx_pair(images_path, labels_path if labels_path.is_file() else None)
    return _from_numpy("idx", images, labels, str(folder))


def load_dataset(cfg: DataConfig, log=print) -> Dataset:
    """Load the dataset ``cfg`` names, following the offline-first rules in :mod:`gankit.data.sources`.

    ``auto`` takes MNIST when it is found or downloadable and otherwise ``digits``, saying so in one line.
    A dataset named explicitly never falls back: it raises :class:`GankitError`.
    """
    name = cfg.name
    if name == "auto":
        try:
            return _load_remote(cfg, sources.MNIST, cfg.download, log=lambda *_: None)
        except GankitError as e:
            log(f"MNIST is not available ({str(e).split(';')[0]}); training on the bundled 8x8 'digits' instead. "
                f"To use MNIST: {sources.MNIST.how_to_get}.")
            return load_digits(cfg.split)
    if name in sources.REMOTE_DATASETS:
        return _load_remote(cfg, sources.REMOTE_DATASETS[name], cfg.download, log)
    if name == "digits":
        return load_digits(cfg.split)
    if name == "idx":
        return _load_idx_dir(cfg)
    if name == "folder":
        if not cfg.dir:
            raise GankitError("dataset 'folder' needs a folder: pass --data-dir DIR (PNG/JPEG images)")
        images = _folder.load_image_folder(Path(cfg.dir).expanduser(), cfg.resolution, cfg.channels)
        return _from_numpy("folder", images, None, os.fspath(cfg.dir))
    raise GankitError(f"unknown dataset {name!r}; choose one of: {', '.join(list_datasets())}")
