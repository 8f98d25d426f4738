"""CIFAR-10, python version (https://www.cs.toronto.edu/~kriz/cifar.html): pickled batches of 10,000 images.

Each batch unpickles to a dict with ``b"data"``, a uint8 array (10000, 3072) — 1024 red, then green, then blue
values of a 32×32 image in row-major order — and ``b"labels"``, a list of ints 0..9. Train = data_batch_1..5,
test = test_batch. Found as the extracted folder ``cifar-10-batches-py`` or the archive
``cifar-10-python.tar.gz`` in the folders of :mod:`gankit.data.sources` (``--data-dir``, ``$GANKIT_DATA``, the
cache, system folders), else downloaded into the cache and checked against the published MD5.
Unpickling is restricted to plain containers and numpy arrays, so a batch file cannot run code.
"""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from ..errors import GankitError
from . import sources

CIFAR10 = sources.RemoteDataset(
    name="cifar10",
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    files={"archive": sources.RemoteFile("cifar-10-python.tar.gz", md5="c58f30108f718f92721af3b95e74349a")},
    how_to_get="put cifar-10-python.tar.gz (or its extracted cifar-10-batches-py folder) in ~/.cache/gankit/cifar10 "
               "or pass --data-dir DIR",
)
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core") and hasattr(np, "_core"):  # numpy 2 renamed numpy.core
            module = module.replace("numpy.core", "numpy._core")
        return super().find_class(module, name)


def parse_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> images (n, 3, 32, 32) uint8 and labels (n,) int64."""
    try:
        d = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as e:
        raise GankitError(f"{name}: not a CIFAR-10 python batch ({e})") from None
    if not isinstance(d, dict):
        raise GankitError(f"{name}: not a CIFAR-10 python batch (a {type(d).__name__}, not a dict)")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        raise GankitError(f"{name}: 'data' must be a uint8 array (n, 3072), got "
                          f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (data.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise GankitError(f"{name}: expected {data.shape[0]} labels in 0..9, got shape {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def locate(data_dir: str | None) -> Path | None:
    """The extracted batch folder or the archive, from the first searched folder that has either."""
    for folder in sources.search_dirs(CIFAR10.name, data_dir):
        for cand in (folder / FOLDER, folder):
            if (cand / "test_batch").is_file() or (cand / "data_batch_1").is_file():
                return cand
        if (folder / ARCHIVE).is_file():
            return folder / ARCHIVE
    return None


def _read_members(where: Path, names: list[str]) -> list[tuple[str, bytes]]:
    if where.is_dir():
        out = []
        for n in names:
            p = where / n
            if not p.is_file():
                raise GankitError(f"{where}: missing CIFAR-10 batch {n}")
            out.append((str(p), p.read_bytes()))
        return out
    try:
        with tarfile.open(where, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            out = []
            for n in names:
                if n not in members:
                    raise GankitError(f"{where}: archive has no batch {n}")
                out.append((f"{where}:{n}", tar.extractfile(members[n]).read()))  # type: ignore[union-attr]
            return out
    except (tarfile.TarError, OSError, EOFError) as e:
        raise GankitError(f"{where}: not a readable tar.gz archive ({e}); delete it to download it again, or put "
                          f"a good copy there") from None


def load_cifar10(data_dir: str | None, split: str, download: bool, log=print):
    """CIFAR-10 ``split`` as a :class:`gankit.data.Dataset`: uint8 (N, 3, 32, 32), labels 0..9."""
    from . import Dataset

    where = locate(data_dir)
    if where is None:
        if not download:
            raise GankitError(f"cifar10 not found in {', '.join(map(str, sources.search_dirs('cifar10', data_dir)))}"
                              f" and downloads are off; {sources.spelt(CIFAR10.how_to_get)}")
        where = sources.download(CIFAR10, ["archive"], log=log)["archive"]
    parts = [parse_batch(raw, name) for name, raw in _read_members(where, BATCHES[split])]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return Dataset("cifar10", torch.from_numpy(images), torch.from_numpy(labels), str(where), 10)
