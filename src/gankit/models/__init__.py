"""Model families, registered by name: ``build_models(cfg, img_shape) -> (G, D)``."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

from torch import nn

from ..config import ModelConfig
from ..errors import GankitError
from ..regularizers import apply_spectral_norm
from .conditional import ACGANDiscriminator, ConcatDiscriminator, ConditionalGenerator, ProjectionDiscriminator
from .dcgan import DCGANDiscriminator, DCGANGenerator, init_module_
from .mlp import MLPDiscriminator, MLPGenerator
from .pack import PackedDiscriminator, packed_shape
from .resnet import ResNetDiscriminator, ResNetGenerator
from .toy import ToyDiscriminator, ToyGenerator

ARCHS: dict[str, tuple[Callable[..., nn.Module], Callable[..., nn.Module]]] = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "resnet": (ResNetGenerator, ResNetDiscriminator),
    "toy": (ToyGenerator, ToyDiscriminator),
}
SPATIAL = ("dcgan", "resnet")  # archs whose D convolves: a one-hot label joins them as constant planes


def check_model(cfg: ModelConfig) -> None:
    """Cross-field checks of ``model.*`` (run at build time; overrides are applied one key at a time)."""
    if cfg.arch not in ARCHS:
        raise GankitError(f"unknown model.arch {cfg.arch!r}; choose one of: {', '.join(list_archs())}")
    if (cfg.cond != "none") != (cfg.num_classes > 0):
        raise GankitError(f"model.cond {cfg.cond!r} with model.num_classes {cfg.num_classes}: a conditional model "
                          f"needs num_classes > 0 and an unconditional one 0")
    if cfg.pack > 1 and cfg.cond != "none":
        raise GankitError("model.pack > 1 works only with model.cond none")
    if (cfg.g_layers or cfg.d_layers) and cfg.arch != "dcgan":
        raise GankitError(f"model.g_layers / model.d_layers set the depth of model.arch dcgan only (got {cfg.arch}); "
                          f"leave them at 0")
    if cfg.g_norm_slots > 1 and (cfg.arch != "toy" or cfg.g_norm != "batch"):
        raise GankitError(f"model.g_norm_slots {cfg.g_norm_slots} needs model.arch toy with model.g_norm batch "
                          f"(got {cfg.arch}, {cfg.g_norm}); leave it at 1")


def list_archs() -> list[str]:
    """The names ``model.arch`` accepts."""
    return sorted(ARCHS)


def build_generator(cfg: ModelConfig, img_shape: tuple[int, ...]) -> nn.Module:
    """G: ``G(z)``, or ``G(z, labels)`` when ``cfg.cond`` is not none (see :mod:`.conditional`)."""
    check_model(cfg)
    ctor = ARCHS[cfg.arch][0]
    if cfg.cond != "none":
        G = ConditionalGenerator(ctor(replace(cfg, z_dim=cfg.z_dim + cfg.num_classes), tuple(img_shape)),
                                 cfg.num_classes)
    else:
        G = ctor(cfg, tuple(img_shape))
    if cfg.arch == "mlp" and cfg.init == "dcgan":
        init_module_(G, "dcgan")
    return G


def build_discriminator(cfg: ModelConfig, img_shape: tuple[int, ...]) -> nn.Module:
    """D: ``D(x) -> logits``; ``D(x, labels)`` for cond concat/projection; ACGAN adds ``forward_with_aux``."""
    check_model(cfg)
    ctor, shape, k = ARCHS[cfg.arch][1], tuple(img_shape), cfg.num_classes
    if cfg.pack > 1:
        D: nn.Module = PackedDiscriminator(ctor(cfg, packed_shape(shape, cfg.pack)), cfg.pack)
    elif cfg.cond == "concat":
        spatial = cfg.arch in SPATIAL
        inner_shape = (shape[0] + k, *shape[1:]) if spatial else (math.prod(shape) + k,)
        D = ConcatDiscriminator(ctor(cfg, inner_shape), k, spatial)
    elif cfg.cond == "projection":
        D = ProjectionDiscriminator(ctor(cfg, shape), k)
    elif cfg.cond == "acgan":
        D = ACGANDiscriminator(ctor(cfg, shape), k)
    else:
        D = ctor(cfg, shape)
    if cfg.arch == "mlp" and cfg.init == "dcgan":
        init_module_(D, "dcgan")
    if cfg.d_spectral_norm:
        apply_spectral_norm(D)
    return D


def has_batch_coupling(module: nn.Module) -> bool:
    """True when some layer mixes the samples of a batch (batch norm), so real and fake need separate passes."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
