"""Checkpoints: state_dicts plus the config as plain data, written atomically, read with weights_only.

No classes or source code are pickled, so a checkpoint rebuilds everything through the registries from the
file alone, and loading never executes code from the file.
"""
from __future__ import annotations

import io
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch

from .errors import GankitError
from .io import atomic_write_bytes, atomic_write_text

FORMAT = "gankit-checkpoint"
FORMAT_VERSION = 1
MAX_SIDE = 65536  # of an img_shape dimension; larger is a damaged file (the memory check refuses far less)
ENSEMBLE_FILE = "ensemble.json"  # in a gankit train --seeds folder: its member run folders, in order


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Serialise ``state`` (tensors, dicts, lists, numbers, strings) to ``path`` atomically."""
    state = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(Path(path), buf.getvalue())


def seed_run_dirs(folder: str | os.PathLike, seeds: Sequence[int]) -> list[Path]:
    """Where a ``gankit train --seeds`` folder keeps the run of each seed: ``FOLDER/seedS``, in the order of
    ``seeds`` (an ordinary run folder each; :func:`write_seed_members` lists them)."""
    return [Path(folder).expanduser() / f"seed{s}" for s in seeds]


def member_seed(run_dir: str | os.PathLike) -> int | None:
    """The seed of a member folder named by :func:`seed_run_dirs` (``seedS``), or None for another name."""
    m = re.fullmatch(r"seed(\d+)", Path(run_dir).name)
    return int(m[1]) if m else None


def write_seed_members(folder: str | os.PathLike, seeds: Sequence[int]) -> Path:
    """Make ``folder`` a ``gankit train --seeds`` folder of ``seeds``: write its ensemble.json, listing the member
    folders of :func:`seed_run_dirs` in order (:func:`seed_members` reads it back). Returns the file."""
    seeds = [int(s) for s in seeds]
    names = [d.name for d in seed_run_dirs(folder, seeds)]
    return atomic_write_text(Path(folder).expanduser() / ENSEMBLE_FILE,
                             json.dumps({"members": names, "seeds": seeds}) + "\n")


def seed_members(folder: str | os.PathLike) -> list[Path] | None:
    """The member run folders of a ``gankit train --seeds`` folder, in order (its ensemble.json lists them);
    None when ``folder`` holds no ensemble.json."""
    f = Path(folder).expanduser() / ENSEMBLE_FILE
    if not f.is_file():
        return None
    try:
        names = json.loads(f.read_text())["members"]
        if not (isinstance(names, list) and names and all(
                isinstance(n, str) and n not in ("", ".", "..") and Path(n).name == n for n in names)):
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError):
        raise GankitError(f"{f}: not a readable list of member folders; name one member folder "
                          f"({f.parent}/seedK) instead") from None
    return [f.parent / n for n in names]


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder (its ``checkpoints/last.pt``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        cand = p / "checkpoints" / "last.pt"
        if cand.is_file():
            return cand
        members = seed_members(p)
        if members:  # one generator per call: the caller picks the member
            names = ", ".join(m.name for m in members[:4]) + (", ..." if len(members) > 4 else "")
            raise GankitError(f"{p} is a --seeds folder of {len(members)} runs ({names}); name one of them, "
                              f"e.g. {members[0]}")
        raise GankitError(f"{p}: no checkpoints/last.pt in this folder (is it a gankit run folder?)")
    if not p.exists():
        raise GankitError(f"{p}: no such file or folder")
    return p


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate a checkpoint; every failure is a one-line :class:`GankitError`."""
    p = resolve_checkpoint(path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing a foreign file
            warnings.simplefilter("ignore")
            state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - damaged files raise anything from the unpickler (IndexError, ...)
        raise GankitError(f"{p}: {_unreadable(p, e)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GankitError(f"{p}: not a gankit checkpoint")
    version = state.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise GankitError(f"{p}: checkpoint format version {version!r} is not a version number (damaged file?)")
    if version > FORMAT_VERSION:
        raise GankitError(f"{p}: checkpoint format {version} is newer than this gankit reads ({FORMAT_VERSION}); "
                          f"upgrade gankit")
    for key in ("config", "G", "img_shape"):
        if key not in state:
            raise GankitError(f"{p}: checkpoint lacks {key!r} (incomplete file?)")
    _check_fields(p, state)
    return state


def _unreadable(p: Path, e: Exception) -> str:
    """Why torch could not read ``p``, from the exception and the file's first bytes."""
    try:
        with open(p, "rb") as f:
            head = f.read(512)
    except OSError as err:
        return f"cannot read it ({err.strerror or err})"
    text = str(e)
    if not head:
        return "not a checkpoint file: it is empty"
    if head.startswith(b"PK"):  # a zip archive, as torch.save writes
        if "Unsupported global" in text or "weights_only" in text:
            return "not a readable checkpoint: it holds pickled objects gankit never loads (not a gankit checkpoint?)"
        return "not a readable checkpoint (truncated or corrupted?): the archive is cut short or damaged"
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:  # pickle's PROTO opcode, protocols 2 to 5
        return "not a checkpoint file: a plain pickle, not a torch archive (gankit never unpickles objects)"
    if _looks_like_text(head):
        return "not a checkpoint file: it holds text"
    return "not a readable checkpoint (truncated or corrupted?): not a torch archive"


def _looks_like_text(head: bytes) -> bool:
    try:
        chars = head.decode("utf-8")
    except UnicodeDecodeError:
        chars = head[:-3].decode("utf-8", errors="replace")  # a multi-byte character cut at 512 bytes
        if "\ufffd" in chars:
            return False
    return all(c.isprintable() or c in "\t\r\n\f" for c in chars)


def _check_fields(p: Path, state: dict[str, Any]) -> None:
    """The fields gankit reads, each of the type and range it was written with (a crafted or damaged file
    fails here in one line, not deep inside a model constructor)."""
    from .config import RunConfig

    try:
        RunConfig.from_dict(state["config"])
    except GankitError as e:
        raise GankitError(f"{p}: the checkpoint's config: {e}") from None
    shape = state["img_shape"]
    if (not isinstance(shape, (list, tuple)) or len(shape) not in (1, 3)
            or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_SIDE for s in shape)):
        raise GankitError(f"{p}: img_shape {_short(shape)} is not (C, H, W) or (D,) of sizes 1 to {MAX_SIDE} "
                          f"(damaged file?)")
    for key, lo in (("step", 0), ("epoch", 0), ("steps_per_epoch", 1), ("num_classes", 0)):
        v = state.get(key, lo)
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise GankitError(f"{p}: {key} {_short(v)} is not an integer >= {lo} (damaged file?)")
    for key in ("G", "G_ema", "D", "opt_G", "opt_D", "rng"):
        if key in state and not isinstance(state[key], dict):
            raise GankitError(f"{p}: {key} is a {type(state[key]).__name__}, not a state dict (damaged file?)")
    for key in ("G", "G_ema", "D"):
        if not all(isinstance(t, torch.Tensor) for t in state.get(key, {}).values()):
            raise GankitError(f"{p}: the {key} weights hold something other than tensors (damaged file?)")
    shares = state.get("label_shares")  # data.clusters: the clusters' shares, one per class of the model
    if shares is not None:
        k = RunConfig.from_dict(state["config"]).model.num_classes
        if (not isinstance(shares, list) or len(shares) != k
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in shares)
                or abs(sum(shares) - 1) > 1e-3):
            raise GankitError(f"{p}: label_shares {_short(shares)} are not {k} shares summing to 1 (damaged file?)")
    lr_scale = state.get("lr_scale", 1.0)
    if not isinstance(lr_scale, (int, float)) or isinstance(lr_scale, bool) or not 0 < lr_scale <= 1:
        raise GankitError(f"{p}: lr_scale {_short(lr_scale)} is not in (0, 1] (damaged file?)")


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


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
