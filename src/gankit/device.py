"""Device names: the ones gankit runs on, checked before anything is built or written.

torch accepts many device strings (``meta``, ``mps``, ``xla``, ...) that gankit's training and sampling were
never built for; some fail deep inside a step, ``meta`` only when the first number is read back. gankit runs on
``cpu`` and ``cuda``/``cuda:N``, and ``auto`` picks CUDA when there is one.
"""
from __future__ import annotations

import re

import torch

from .errors import GankitError

DEVICES = "auto, cpu, cuda or cuda:N"
_NAME = re.compile(r"auto|cpu|cuda(:\d{1,4})?")


def check_device_name(name: str | torch.device, key: str = "device") -> str:
    """``name`` as text, or a one-line :class:`GankitError` naming ``key`` when gankit runs on no device of that
    name on any machine (whether this machine has the device is :func:`resolve_device`'s question)."""
    text = str(name).strip()
    if not isinstance(name, (str, torch.device)) or not _NAME.fullmatch(text):
        raise GankitError(f"{key} {str(name)!r} is not a device gankit runs on; use {DEVICES}")
    return text


def resolve_device(name: str | torch.device, key: str = "device", flag: str | None = None) -> torch.device:
    """The torch device ``name`` stands for, or a one-line :class:`GankitError` naming ``key`` (the option
    or config key it came from) when gankit cannot run there. ``flag``: the option that changes it, named in
    the remedy (default: ``key`` when it is an option)."""
    flag = flag or (key if key.startswith("--") else None)
    text = check_device_name(name, key)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(text)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise GankitError(f"{key} {text!r}: CUDA is not available here (no GPU, or a CPU-only torch); "
                              f"use {flag + ' ' if flag else ''}cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise GankitError(f"{key} {text!r}: this machine has {count} CUDA device(s), cuda:0 to "
                              f"cuda:{count - 1}")
    return dev
