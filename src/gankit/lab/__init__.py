"""The GAN lab (issue #20): a GAN on toy data, trained by gankit's own trainer a few steps at a time, with the
frames a web page draws (D's heat map beside the optimal D*, G's gradient arrows, the latent manifold, the
curves). ``from gankit.lab import Lab, LabState``; the engine is :mod:`gankit.lab.engine`.

The lab sits at the API layer (it composes :mod:`gankit.training`); nothing below it imports it. Names load
lazily, so importing the package loads no torch.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Lab", "LabState"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'gankit.lab' has no attribute {name!r}")
