"""gankit: generative adversarial networks to train, study and teach, offline-first.

The Python API mirrors the CLI::

    import gankit
    cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.epochs": 5})
    run = gankit.train(cfg, out="runs/demo")
    g = gankit.load(run.run_dir)
    images = g.images(16, seed=0)   # uint8 numpy (16, H, W)

Importing ``gankit`` loads nothing but this file: each name below is imported on first use, so
``import gankit.losses`` or ``import gankit.metrics`` never pulls in the trainer (``gankit.training``).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> the module that defines it
_API = {
    "GankitError": "errors",
    "LoadedGenerator": "generator",
    "RunConfig": "config",
    "latents": "generator",
    "load": "generator",
    "preset": "api",
    "train": "api",
    "train_seeds": "api",
}
__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'gankit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
