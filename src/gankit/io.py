"""Crash-safe file writes: temporary file in the same folder, fsync, atomic rename."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Callable

from .errors import GankitError


def atomic_write(path: Path, write: Callable[[object], None], mode: str = "wb") -> Path:
    """Call ``write(file)`` on a temporary file next to ``path``, fsync it, then rename it over ``path``.

    A crash or kill at any moment leaves either the old file or the new one, never a torn file. A full disk
    or an unwritable folder raises :class:`GankitError` and leaves the old file untouched.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as e:
        what = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise GankitError(f"cannot write {path}: {what}; the previous file (if any) is unchanged") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def read_json_object(path: Path) -> dict:
    """The JSON object in ``path``, or {} when the file is missing, unreadable, not JSON or not an object."""
    import json

    try:
        out = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def replace_marked(old: str, start: str, end: str, body: str, heading: str) -> str:
    """``old`` with the text between the markers ``start`` and ``end`` replaced by ``body``; when ``old`` has
    neither, the markers and ``body`` go at its end under ``heading``. Nothing outside the markers changes. The
    scripts that write a generated part of a hand-written doc (docs/ZOO.md, docs/BENCHMARKS.md) use it."""
    i, j = old.find(start), old.find(end)
    if (i < 0) != (j < 0) or (i >= 0 and j < i):
        raise GankitError(f"the doc holds one of {start} / {end} without the other (or in the wrong order); "
                          f"repair it by hand")
    region = f"{start}\n{body.rstrip()}\n{end}"
    if i < 0:
        lead = old.rstrip("\n") + "\n\n" if old.strip() else ""
        return f"{lead}{heading}\n\n{region}\n"
    return old[:i] + region + old[j + len(end):]
