"""Memory budgets: refuse, in one line and before allocating, what cannot fit.

gankit keeps datasets resident and builds models from numbers a user types (``--model.z_dim``,
``--data.size``, ``--data.resolution``) or a file holds (a checkpoint's ``img_shape``). A typo such as one zero
too many would otherwise end in an allocator traceback, or worse, in a machine that swaps until the kernel
kills something. Each size is checked against :func:`memory_limit` before the allocation is made.

The limit is the memory of the device the tensors live on: for the host, the smallest of physical memory,
the cgroup limit (containers) and the address-space limit (``ulimit -v``); for a GPU, its total memory.
``GANKIT_MEMORY_LIMIT`` (bytes, or with a K/M/G/T suffix: ``8G``) sets it by hand.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import GankitError

ENV = "GANKIT_MEMORY_LIMIT"
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
# Training holds each fp32 weight about 10 times: the weight, its gradient, Adam's two moments, the rollback
# snapshot of weights and moments (training/loop.py), and the checkpoint's serialised copy. Measured: a 10.9 GB peak
# for an MLP of 256 M weights (1.0 GB), at --data.resolution 1024.
TRAIN_COPIES = 10


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover


def _env_limit() -> int | None:
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    unit = text[-1].upper() if text[-1].isalpha() else ""
    try:
        value = float(text[: len(text) - len(unit)] if unit else text) * _UNITS[unit]
    except (KeyError, ValueError):
        raise GankitError(f"{ENV}={text!r}: expected bytes or a size like 8G") from None
    if not 0 < value < 2**63:
        raise GankitError(f"{ENV}={text!r}: expected a positive size like 8G")
    return int(value)


def _host_limit() -> int:
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        pass
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(f).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # cgroup v1 writes a huge number for "no limit"
            limits.append(int(text))
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    except (ImportError, ValueError, OSError):  # pragma: no cover - not POSIX
        pass
    return min(limits) if limits else 2**63


def memory_limit(device: Any = None) -> int:
    """Bytes that tensors on ``device`` (default: the host) may take at most."""
    env = _env_limit()
    if env is not None:
        return env
    import torch

    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(dev.index or 0).total_memory)
    return _host_limit()


def check_fits(nbytes: float, what: str, hint: str, device: Any = None) -> None:
    """Raise a one-line :class:`GankitError` when ``nbytes`` exceed :func:`memory_limit`.

    ``what`` names the thing and the key it comes from ("the ring8 dataset (data.size 10**11)"); ``hint`` says
    what to do."""
    limit = memory_limit(device)
    if nbytes > limit:
        import torch

        gpu = device is not None and torch.device(device).type == "cuda"
        where = f"set by {ENV}" if _env_limit() is not None else f"of {device}" if gpu else "available"
        raise GankitError(f"{what} would need {format_bytes(nbytes)}, more than the {format_bytes(limit)} of "
                          f"memory {where}; {hint}")


def parameter_counts(model_cfg: Any, img_shape: tuple[int, ...]) -> tuple[int, int]:
    """(G, D) parameter counts of the models ``model_cfg`` builds for ``img_shape``, without allocating them:
    the models are built on the meta device, which holds shapes and no data."""
    G, D = _meta_models(model_cfg, img_shape)
    return _params(G), _params(D)


def _meta_models(model_cfg: Any, img_shape: tuple[int, ...]) -> tuple[Any, Any]:
    """G and D on the meta device; None for one that cannot be built there (the real build then reports any
    error; a bad config raises its GankitError here already)."""
    import torch

    from .models import build_discriminator, build_generator

    out = []
    for build in (build_generator, build_discriminator):
        try:
            with torch.device("meta"):
                out.append(build(model_cfg, tuple(img_shape)))
        except GankitError:
            raise
        except Exception:  # noqa: BLE001 - an estimate only: never the reason a valid model fails to build
            out.append(None)
    return out[0], out[1]


def _params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def _activations(G: Any, D: Any, model_cfg: Any, batch: int) -> int:
    """Values that the layers of G and D output for one batch (what backward keeps), from a forward pass on the
    meta device; 0 when the pass cannot run there."""
    import torch

    total = 0

    def count(_module, _inputs, out):
        nonlocal total
        total += out.numel() if isinstance(out, torch.Tensor) else 0
    leaves = [m for net in (G, D) for m in net.modules() if not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.device("meta"), torch.no_grad():
            z = torch.empty(batch, model_cfg.z_dim)
            labels = torch.zeros(batch, dtype=torch.long) if model_cfg.cond != "none" else None
            x = G(z) if labels is None else G(z, labels)
            D(x) if labels is None or model_cfg.cond == "acgan" else D(x, labels)
    except Exception:  # noqa: BLE001 - an estimate only
        return 0
    finally:
        for h in hooks:
            h.remove()
    return total


def check_training_fits(cfg: Any, img_shape: tuple[int, ...], device: Any = None) -> None:
    """Refuse a run whose G and D cannot be trained in the memory of ``device`` (before building them)."""
    G, D = _meta_models(cfg.model, img_shape)
    n = _params(G) + _params(D)
    acts = _activations(G, D, cfg.model, cfg.train.batch_size) if G is not None and D is not None else 0
    # each activation is kept for backward and meets its gradient there
    check_fits(4 * (n * TRAIN_COPIES + 2 * acts),
               f"training G and D on data of shape {list(img_shape)} ({n:,} weights; {acts:,} layer outputs per "
               f"batch of {cfg.train.batch_size})", "lower model.z_dim, the widths (model.*_hidden, model.*_channels), "
               "data.resolution or train.batch_size", device)


def check_sampling_fits(model_cfg: Any, img_shape: tuple[int, ...], what: str, device: Any = None) -> None:
    """Refuse a generator whose weights alone cannot fit (a checkpoint crafted with a huge ``img_shape``)."""
    n = _params(_meta_models(model_cfg, img_shape)[0])
    check_fits(n * 4, f"{what}: its G ({n:,} weights, images of shape {list(img_shape)})",
               "is the checkpoint damaged?", device)
