"""Datasets as one uint8 tensor: ``images`` (N, C, H, W) and optional ``labels`` (N,).

Small image datasets fit in memory many times over, so gankit keeps them resident (on the training device)
and draws batches by index; there is no per-item DataLoader work. Pixels stay uint8 until a batch is drawn,
then map to [-1, 1] (see :func:`to_unit_range`).
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig, did_you_mean
from ..errors import GankitError, option
from . import cifar as _cifar
from . import folder as _folder
from . import stacked as _stacked
from . import toy as _toy
from . import sources
from .idx import load_idx_pair


@dataclass
class Dataset:
    """An in-memory dataset. ``images``: uint8 (N, C, H, W), or float32 (N, d) points for the toy mixtures;
    ``labels``: int64 (N,) or None."""

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
    """uint8 pixels in [0, 255] -> float32 in [-1, 1] (the seed's tanh output range). Float data (points of the
    toy mixtures) pass through unchanged."""
    if x_uint8.is_floating_point():
        return x_uint8.to(torch.float32)
    return x_uint8.to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)


DATASETS = ("auto", "mnist", "fashion-mnist", "digits", "idx", "folder", "cifar10", "stacked-mnist", "ring8",
            "grid25", "mog1d", _toy.DRAWN)


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
        where = ", ".join(map(str, sources.search_dirs(ds.name, cfg.dir)))
        if not allow_download:
            raise sources.UnavailableError(f"{ds.name} not found in {where} and downloads are off "
                                           f"(data.download=false); {sources.spelt(ds.how_to_get)}",
                                           ["downloads are off (data.download=false)"])
        try:
            found = sources.download(ds, roles, log=log)
        except sources.UnavailableError as e:
            raise sources.UnavailableError(f"{ds.name} not found in {where}, and {e}", e.reasons) from None
    images, labels = load_idx_pair(found[roles[0]], found[roles[1]])
    return _from_numpy(ds.name, images, labels, str(found[roles[0]].parent))


def _load_idx_dir(cfg: DataConfig) -> Dataset:
    folder = Path(cfg.dir).expanduser()
    if not folder.is_dir():
        raise GankitError(f"{option('--data-dir', 'data.dir')} {folder} is not a folder")
    prefix = "train" if cfg.split == "train" else "t10k"
    images_path = sources.find_in(folder, f"{prefix}-images-idx3-ubyte.gz")
    if images_path is None:
        candidates = sorted(p for p in folder.iterdir() if "images" in p.name and "idx" in p.name and p.is_file())
        if cfg.split == "test":
            candidates = [p for p in candidates if "t10k" in p.name or "test" in p.name]
        else:
            candidates = [p for p in candidates if "t10k" not in p.name and "test" not in p.name]
        if not candidates:
            raise GankitError(f"{folder}: no IDX images file ({prefix}-images-idx3-ubyte[.gz]) found")
        images_path = candidates[0]
    labels_name = images_path.name.replace("images", "labels").replace("idx3", "idx1")
    # the labels may be gzipped when the images are not, or the other way round
    labels_path = sources.find_in(folder, labels_name if labels_name.endswith(".gz") else labels_name + ".gz")
    images, labels = load_idx_pair(images_path, labels_path)
    return _from_numpy("idx", images, labels, str(folder))


_NEEDS_DIR = {"idx": "MNIST-format IDX files", "folder": "PNG/JPEG images",
              _toy.DRAWN: f"the {_toy.POINTS_FILE} of a run saved by 'gankit lab', e.g. that run's folder"}


def run_data(cfg: DataConfig, checkpoint: str | os.PathLike) -> DataConfig:
    """``cfg`` as the run of ``checkpoint`` means it: drawn points with no ``data.dir`` are the run's own, the
    points.json that ``gankit lab`` saved in the run folder (``RUN`` of ``RUN/checkpoints/NAME.pt``). The config
    keeps ``data.dir`` unset, so a run folder that is copied or moved still finds its points."""
    if cfg.name != _toy.DRAWN or cfg.dir:
        return cfg
    ckpt = Path(checkpoint).expanduser()
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return replace(cfg, dir=os.fspath(run))


def check_data(cfg: DataConfig) -> None:
    """The checks of ``cfg`` that read no file: a known dataset name, and a folder for those that need one.
    :func:`load_dataset` runs them first; ``gankit train --dry-run`` runs them alone."""
    if cfg.name not in DATASETS:
        raise GankitError(f"unknown dataset {cfg.name!r}; "
                          f"{did_you_mean(cfg.name, list_datasets()) or 'choose one of: ' + ', '.join(DATASETS)}")
    if cfg.name in _NEEDS_DIR and not cfg.dir:
        raise GankitError(f"dataset {cfg.name!r} needs a folder: pass {option('--data-dir DIR', 'data.dir=DIR')} "
                          f"({_NEEDS_DIR[cfg.name]})")
    if cfg.name == "stacked-mnist":
        check_data(DataConfig(name=cfg.base, dir=cfg.dir))


def load_dataset(cfg: DataConfig, log=print, model: str | None = None) -> Dataset:
    """Load the dataset ``cfg`` names, following the offline-first rules in :mod:`gankit.data.sources`.

    ``auto`` takes MNIST when it is found or downloadable and otherwise ``digits``, saying so in one line;
    ``model`` (a preset name) is the model the data is for: the line then says that its image shape changed.
    A dataset named explicitly never falls back: it raises :class:`GankitError`.
    """
    check_data(cfg)
    name = cfg.name
    if name == "auto":
        try:
            return _load_remote(cfg, sources.MNIST, cfg.download, log=lambda *_: None)
        except sources.UnavailableError as e:  # only a missing MNIST falls back; a corrupt one is an error
            why = e.reasons[0] + (f" (and {len(e.reasons) - 1} more)" if len(e.reasons) > 1 else "")
            digits = load_digits(cfg.split)
            c, h, w = digits.shape
            # G and D are built for the data's shape: a preset made for 28x28 MNIST trains a different network
            shape = (f", so the {model} preset's G and D are built for {h}x{w}x{c} images instead of MNIST's "
                     f"28x28x1 ({c * h * w} pixels, not 784)" if model else "")
            log(f"MNIST is not on disk and could not be downloaded ({' '.join(why.split())}); training on the "
                f"bundled 8x8 'digits' instead{shape}. To use MNIST, {sources.spelt(sources.MNIST.how_to_get)}.")
            return digits
    if name in sources.REMOTE_DATASETS:
        return _load_remote(cfg, sources.REMOTE_DATASETS[name], cfg.download, log)
    if name == "digits":
        return load_digits(cfg.split)
    if name == "idx":
        return _load_idx_dir(cfg)
    if name in _toy.MIXTURES:
        return _toy.load_mixture(name, cfg.size, cfg.seed)
    if name == _toy.DRAWN:
        return _toy.load_drawn(cfg.dir, cfg.size, cfg.seed)  # type: ignore[arg-type] (check_data: a dir)
    if name == "cifar10":
        return _cifar.load_cifar10(cfg.dir, cfg.split, cfg.download, log=log)
    if name == "stacked-mnist":
        base = DataConfig(name=cfg.base, dir=cfg.dir, download=cfg.download)
        parts = [load_dataset(base, log=log)]
        try:  # MNIST's 70,000 = train + test; a folder without a test split gives what it has
            parts.append(load_dataset(replace(base, split="test"), log=log))
        except GankitError:
            log("stacked-mnist: the source has no test split; stacking its train images only")
        return _stacked.build(parts, cfg.size, cfg.seed, cfg.split, parts[0].source)
    # name == "folder": check_data refused every other name
    images = _folder.load_image_folder(Path(cfg.dir).expanduser(), cfg.resolution, cfg.channels)
    return _from_numpy("folder", images, None, os.fspath(cfg.dir))
