"""Checkpoints: state_dicts plus the config as plain data, written atomically, read with weights_only.

No classes or source code are pickled, so a checkpoint rebuilds everything through the registries from the
file alone, and loading never executes code from the file.
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import GankitError
from ..io import atomic_write_bytes

FORMAT = "gankit-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Serialise ``state`` (tensors, dicts, lists, numbers, strings) to ``path`` atomically."""
    state = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(Path(path), buf.getvalue())


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder (its ``checkpoints/last.pt``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        cand = p / "checkpoints" / "last.pt"
        if cand.is_file():
            return cand
        raise GankitError(f"{p}: no checkpoints/last.pt in this folder (is it a gankit run folder?)")
    if not p.exists():
        raise GankitError(f"{p}: no such file or folder")
    return p


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate a checkpoint; every failure is a one-line :class:`GankitError`."""
    p = resolve_checkpoint(path)
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - damaged files raise anything from the unpickler (IndexError, ...)
        text = str(e)
        if "weights_only" in text or "Unsupported global" in text:
            why = "it holds pickled objects gankit never loads (not a gankit checkpoint?)"
        elif "zip archive" in text or "central directory" in text or isinstance(e, (EOFError, zipfile.BadZipFile)):
            why = "the archive is cut short or damaged"
        else:
            why = (text.strip().splitlines() or [type(e).__name__])[0][:120]
        raise GankitError(f"{p}: not a readable checkpoint (truncated or corrupted?): {why}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GankitError(f"{p}: not a gankit checkpoint")
    version = state.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise GankitError(f"{p}: checkpoint format {version} is newer than this gankit reads ({FORMAT_VERSION}); "
                          f"upgrade gankit")
    for key in ("config", "G", "img_shape"):
        if key not in state:
            raise GankitError(f"{p}: checkpoint lacks {key!r} (incomplete file?)")
    return state


def load_state_strict(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], what: str, path: Any) -> None:
    """``module.load_state_dict`` with a one-line error when the checkpoint is of another model."""
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise GankitError(f"{path}: {what} weights do not fit the model in its config ({detail[:200]})") from None


def host_rng_state() -> dict[str, Any]:
    """Python's and numpy's global RNG states as plain data (gankit draws nothing from them, user hooks may)."""
    import random

    import numpy as np

    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(words), gauss],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]}


def set_host_rng_state(rng: dict[str, Any]) -> None:
    import random

    import numpy as np

    if "python" in rng:
        version, words, gauss = rng["python"]
        random.setstate((version, tuple(words), gauss))
    if "numpy" in rng:
        kind, keys, pos, has_gauss, cached = rng["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
