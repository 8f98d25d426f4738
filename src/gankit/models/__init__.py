"""Model families, registered by name: ``build_models(cfg, img_shape) -> (G, D)``."""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..config import ModelConfig
from ..errors import GankitError
from .mlp import MLPDiscriminator, MLPGenerator

ARCHS: dict[str, tuple[Callable[..., nn.Module], Callable[..., nn.Module]]] = {
    "mlp": (MLPGenerator, MLPDiscriminator),
}


def list_archs() -> list[str]:
    return sorted(ARCHS)


def build_generator(cfg: ModelConfig, img_shape: tuple[int, int, int]) -> nn.Module:
    if cfg.arch not in ARCHS:
        raise GankitError(f"unknown model.arch {cfg.arch!r}; choose one of: {', '.join(list_archs())}")
    return ARCHS[cfg.arch][0](cfg, tuple(img_shape))


def build_discriminator(cfg: ModelConfig, img_shape: tuple[int, int, int]) -> nn.Module:
    if cfg.arch not in ARCHS:
        raise GankitError(f"unknown model.arch {cfg.arch!r}; choose one of: {', '.join(list_archs())}")
    return ARCHS[cfg.arch][1](cfg, tuple(img_shape))
