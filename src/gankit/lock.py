"""The run folder's lock: one process at a time trains into a run folder.

``flock`` on ``RUN/.gankit.lock``, taken before anything in the folder is touched and held for the run. The
kernel drops an flock when its process ends, however it ends (``kill -9`` included), so a lock file left by a
dead process never blocks; the file names its holder for the one-line error a second process gets.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .errors import GankitError
from .io import read_json_object

LOCK_FILE = ".gankit.lock"
_HELD: dict[str, list] = {}  # real path of a locked folder -> [lock file descriptor or None, holders in this process]


class RunLock:
    """An exclusive lock on a run folder for as long as a process trains into it.

    ``flock`` on ``RUN/.gankit.lock``: the kernel drops it when the process ends, however it ends (``kill -9``
    included), so a lock file left by a dead process never blocks. The file names its holder (pid, host,
    command, start time) for the one-line error a second process gets. A second lock of the same folder in
    the same process shares the first (say, a Trainer that resumes a run after one that was never fitted);
    the lock goes with the last :meth:`release` (or when the objects are collected).
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._key = os.path.realpath(self.folder)
        self._held = False
        entry = _HELD.get(self._key)
        if entry is not None:
            entry[1] += 1
        else:
            _HELD[self._key] = [_acquire(self.path, self.folder), 1]
        self._held = True

    def release(self) -> None:
        """Give the folder back (idempotent): the lock file goes, then the lock."""
        if not self._held:
            return
        self._held = False
        entry = _HELD.get(self._key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _HELD[self._key]
        fd = entry[0]
        if fd is None:
            return
        try:  # unlink while still holding it; a process waiting on this file sees it gone and opens the new one
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                os.unlink(self.path)
        except OSError:
            pass
        finally:
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *_: Any) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _command() -> str:
    argv = [str(a) for a in sys.argv]
    if argv and Path(argv[0]).name in ("gankit", "__main__.py"):
        argv = ["gankit", *argv[1:]]
    text = " ".join(argv)
    return text if len(text) <= 160 else text[:157] + "..."


def _in_use(folder: Path, holder: dict[str, Any]) -> GankitError:
    if not holder.get("pid"):
        return GankitError(f"{folder} is in use by another gankit process; wait for it to finish or stop it")
    host = holder.get("host")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return GankitError(f"{folder} is in use by pid {holder['pid']}{where} ({holder.get('command', '?')}, since "
                       f"{holder.get('started', '?')}); wait for it to finish or stop it")


def _alive_here(holder: dict[str, Any]) -> bool:
    """Whether the lock file's holder is a live process on this host (for filesystems without flock)."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid == os.getpid() or holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _acquire(path: Path, folder: Path) -> int | None:
    """The descriptor of ``path``, locked with flock and naming this process; None without flock (Windows)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock: unlocked
        return None
    for _ in range(50):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise GankitError(f"cannot write into the run folder {folder}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _in_use(folder, read_json_object(path)) from None
        except OSError:  # a filesystem without flock: trust the pid in the file, when it is alive on this host
            holder = read_json_object(path)
            if _alive_here(holder):
                os.close(fd)
                raise _in_use(folder, holder) from None
        try:
            current = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            current = False
        if current:
            info = {"pid": os.getpid(), "host": socket.gethostname(), "command": _command(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
            return fd
        os.close(fd)  # the holder released and removed this file as we opened it: take the new one
    raise GankitError(f"cannot lock the run folder {folder}: its lock file keeps changing")
