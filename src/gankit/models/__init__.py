"""Model families, registered by name: ``build_models(cfg, img_shape) -> (G, D)``."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Callable

from torch import nn

from ..config import ModelConfig
from ..errors import GankitError
from ..regularizers import apply_spectral_norm
from . import dcgan, mlp, r3gan, resnet, toy
from .conditional import ACGANDiscriminator, ConcatDiscriminator, ConditionalGenerator, ProjectionDiscriminator
from .dcgan import DCGANDiscriminator, DCGANGenerator, init_module_
from .layers import MinibatchStd
from .mlp import MLPDiscriminator, MLPGenerator
from .pack import PackedDiscriminator, packed_shape
from .resnet import ResNetDiscriminator, ResNetGenerator
from .toy import ToyDiscriminator, ToyGenerator


@dataclass(frozen=True)
class Family:
    """A model family: its G and D constructors ``(cfg, img_shape) -> nn.Module`` and the ``model.*`` keys they
    read besides :data:`COMMON_KEYS` (declared next to the constructors, in the family's file)."""

    generator: Callable[..., nn.Module]
    discriminator: Callable[..., nn.Module]
    keys: frozenset[str]


ARCHS: dict[str, Family] = {
    "mlp": Family(MLPGenerator, MLPDiscriminator, mlp.KEYS),
    "dcgan": Family(DCGANGenerator, DCGANDiscriminator, dcgan.KEYS),
    "resnet": Family(ResNetGenerator, ResNetDiscriminator, resnet.KEYS),
    "toy": Family(ToyGenerator, ToyDiscriminator, toy.KEYS),
    "r3gan": Family(r3gan.R3GANGenerator, r3gan.R3GANDiscriminator, r3gan.KEYS),
}
SPATIAL = ("dcgan", "resnet", "r3gan")  # archs whose D convolves: a one-hot label joins them as constant planes
# The model.* keys every family honours: this file applies them around any family's G and D (the conditional and
# packing wrappers, spectral norm, the init scheme); each family's nets read z_dim and init themselves.
COMMON_KEYS = frozenset({"arch", "z_dim", "init", "cond", "num_classes", "pack", "d_spectral_norm"})
_DEFAULTS = ModelConfig()  # the dataclass defaults: a key at its default asks for nothing, whatever the family


def model_keys(arch: str) -> frozenset[str]:
    """Every ``model.*`` key (without the prefix) that the family ``arch`` reads."""
    return COMMON_KEYS | ARCHS[arch].keys


def unread_keys(cfg: ModelConfig) -> list[str]:
    """The ``model.*`` keys set away from their ModelConfig default that the family ``cfg.arch`` never reads."""
    if cfg.arch not in ARCHS:
        return []  # check_model names the unknown family
    read = model_keys(cfg.arch)
    return [f.name for f in fields(cfg) if f.name not in read and getattr(cfg, f.name) != getattr(_DEFAULTS, f.name)]


def without_unread(cfg: ModelConfig) -> ModelConfig:
    """``cfg`` with the keys its family never reads back at their defaults: the same nets. For checkpoints written
    before such keys were refused (gankit.load), which must still load."""
    return replace(cfg, **{key: getattr(_DEFAULTS, key) for key in unread_keys(cfg)})


def _shown(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)  # as typed: --model.g_hidden 64,64


def check_model(cfg: ModelConfig) -> None:
    """Checks of ``model.*`` across fields (run at build time; overrides are applied one key at a time): a known
    family, no key the family would ignore (an option is honoured or refused, never ignored), and the rules that
    tie keys together."""
    if cfg.arch not in ARCHS:
        raise GankitError(f"unknown model.arch {cfg.arch!r}; choose one of: {', '.join(list_archs())}")
    unread = unread_keys(cfg)
    if unread:
        key = unread[0]
        others = [a for a in list_archs() if key in ARCHS[a].keys]
        raise GankitError(f"model.{key} {_shown(getattr(cfg, key))} has no effect on the {cfg.arch} family (it reads "
                          f"{', '.join(sorted(ARCHS[cfg.arch].keys))} and the common keys); remove it or choose a "
                          f"family that has it: {', '.join(others)}")
    if (cfg.cond != "none") != (cfg.num_classes > 0):
        raise GankitError(f"model.cond {cfg.cond!r} with model.num_classes {cfg.num_classes}: a conditional model "
                          f"needs num_classes > 0 and an unconditional one 0")
    if cfg.pack > 1 and cfg.cond != "none":
        raise GankitError("model.pack > 1 works only with model.cond none")
    if cfg.g_norm_slots > 1 and cfg.g_norm != "batch":
        raise GankitError(f"model.g_norm_slots {cfg.g_norm_slots} needs model.g_norm batch (got {cfg.g_norm}); "
                          f"leave it at 1")
    if cfg.bn_momentum != _DEFAULTS.bn_momentum and "batch" not in (cfg.g_norm, cfg.d_norm):
        raise GankitError(f"model.bn_momentum {cfg.bn_momentum} needs a batch norm (model.g_norm or model.d_norm "
                          f"batch); leave it at {_DEFAULTS.bn_momentum}")


def list_archs() -> list[str]:
    """The names ``model.arch`` accepts."""
    return sorted(ARCHS)


def build_generator(cfg: ModelConfig, img_shape: tuple[int, ...]) -> nn.Module:
    """G: ``G(z)``, or ``G(z, labels)`` when ``cfg.cond`` is not none (see :mod:`.conditional`)."""
    check_model(cfg)
    ctor = ARCHS[cfg.arch].generator
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
    ctor, shape, k = ARCHS[cfg.arch].discriminator, tuple(img_shape), cfg.num_classes
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
    """True when some layer mixes the samples of a batch (batch norm, minibatch std), so real and fake need
    separate passes."""
    return any(isinstance(m, (nn.modules.batchnorm._BatchNorm, MinibatchStd)) for m in module.modules())
