"""The r3gan family (Huang et al. 2024) at the sizes its presets run: identity residual blocks at init, shapes and
ranges, no normalisation layer, grouped convs of the configured width, the paper's init scale, and the presets."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from gankit.config import preset_config
from gankit.errors import GankitError
from gankit.models import build_discriminator, build_generator, check_model, has_batch_coupling, unread_keys
from gankit.models.r3gan import LEAKY_GAIN, ResidualBlock

PRESETS = {"r3gan-mnist": (1, 28, 28), "r3gan-cifar10": (3, 32, 32)}  # each preset at its data's image shape
NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm, nn.LayerNorm,
         nn.LocalResponseNorm)


def _nets(preset: str, shape=None, **model):
    cfg = replace(preset_config(preset).model, **model)
    torch.manual_seed(0)
    shape = shape or PRESETS[preset]
    return cfg, build_generator(cfg, shape), build_discriminator(cfg, shape)


def _blocks(net: nn.Module) -> list[ResidualBlock]:
    return [m for m in net.modules() if isinstance(m, ResidualBlock)]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_residual_block_is_the_identity_at_init(preset):
    cfg, G, D = _nets(preset)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [b.register_forward_hook(lambda _, args, out: seen.append((args[0], out))) for b in _blocks(G) + _blocks(D)]
    fake = G(torch.randn(4, G.z_dim))
    D(fake).sum().backward()
    D(torch.rand(4, *PRESETS[preset]) * 2 - 1)
    for h in hooks:
        h.remove()
    stages = 3 if PRESETS[preset][1] == 28 else 4  # 7, 14, 28 or 4, 8, 16, 32
    assert len(seen) == 3 * stages * cfg.stage_blocks  # G's blocks, then D's on fakes and on reals
    for x, y in seen:
        assert torch.equal(x, y)
    # the branches are live: the zero last conv gets a gradient, so training moves the blocks off the identity
    assert all(b.project.weight.grad.abs().sum() > 0 for b in _blocks(D))


@pytest.mark.parametrize("preset,shape", [("r3gan-mnist", (1, 28, 28)), ("r3gan-mnist", (3, 28, 28)),
                                          ("r3gan-cifar10", (3, 32, 32))])
def test_shapes_and_ranges(preset, shape):
    _, G, D = _nets(preset, shape)
    with torch.no_grad():
        fake = G(torch.randn(5, G.z_dim) * 3)  # wide z: the tanh must still bound the images
        logits = D(fake)
    assert fake.shape == (5, *shape) and fake.dtype == torch.float32
    assert fake.abs().max() <= 1.0 and fake.std() > 0
    assert logits.shape == (5,) and torch.isfinite(logits).all()
    assert D.features(fake).shape == (5, D.head.in_features)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_no_normalisation_layer_and_no_batch_coupling(preset):
    _, G, D = _nets(preset)
    for net in (G, D):
        assert not [type(m).__name__ for m in net.modules() if isinstance(m, NORMS)]
        assert not has_batch_coupling(net)
    x = torch.rand(4, *PRESETS[preset]) * 2 - 1
    with torch.no_grad():  # each logit depends on its own sample only
        torch.testing.assert_close(D(x)[1:2], D(x[1:2]))


def test_grouped_convs_have_the_configured_channels_per_group():
    for group_channels in (16, 8):
        cfg, G, D = _nets("r3gan-mnist", group_channels=group_channels)
        for block in _blocks(G) + _blocks(D):
            mix = block.mix
            assert mix.in_channels == block.expand.in_channels * cfg.block_expansion
            assert mix.in_channels // mix.groups == group_channels and mix.groups > 1
    narrow = _nets("r3gan-mnist", stage_channels=(4,), group_channels=16)[1]
    assert {b.mix.groups for b in _blocks(narrow)} == {1}  # an expanded width of 8 < 16 is one group
    with pytest.raises(GankitError, match=r"^r3gan: a block's expanded width 256 is not a multiple of "
                                          r"model.group_channels 24; change"):
        _nets("r3gan-mnist", group_channels=24)


def test_init_scales_the_branches_by_the_depth():
    """The paper's fix-up: a branch's first two convs ~ N(0, (gain·L^(-1/4))² / fan_in), L = blocks in the net."""
    cfg, G, _ = _nets("r3gan-mnist", stage_blocks=2)
    L = 3 * 2
    w = torch.cat([torch.cat([b.expand.weight.flatten(), b.mix.weight.flatten() * math.sqrt(9 * 16 / 128)])
                   for b in _blocks(G) if b.expand.in_channels == 128])  # the mix conv's fan-in is 16·9, not 128
    assert w.std().item() == pytest.approx(LEAKY_GAIN * L ** -0.25 / math.sqrt(128), rel=0.03)


def test_stage_widths_from_the_image_resolution_down():
    _, G, D = _nets("r3gan-cifar10", stage_channels=(32, 64))
    assert [b.expand.in_channels for b in _blocks(D)] == [32, 64, 64, 64]  # 32×32, 16, 8, 4
    assert [b.expand.in_channels for b in _blocks(G)] == [64, 64, 64, 32]
    with pytest.raises(GankitError, match=r"^model.stage_channels 8,8,8,8 lists 4 widths, but r3gan at 28×28 has "
                                          r"3 stages; give at most 3$"):
        _nets("r3gan-mnist", stage_channels=(8, 8, 8, 8))


def test_wrappers_and_spectral_norm_fit_around_the_nets():
    shape = (1, 28, 28)
    for model in ({"cond": "projection", "num_classes": 3}, {"cond": "concat", "num_classes": 3},
                  {"cond": "acgan", "num_classes": 3}):
        _, G, D = _nets("r3gan-mnist", **model)
        labels = torch.tensor([0, 1, 2, 0])
        assert D(G(torch.randn(4, G.z_dim), labels), labels).shape == (4,)
    _, _, D = _nets("r3gan-mnist", pack=2)
    assert D(torch.rand(4, *shape)).shape == (2,)
    _, _, D = _nets("r3gan-mnist", d_spectral_norm=True)  # a zero weight under spectral norm would give NaN
    assert torch.isfinite(D(torch.rand(4, *shape))).all()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_build_and_set_only_keys_the_family_reads(preset):
    cfg = preset_config(preset)
    check_model(cfg.model)
    assert cfg.model.arch == "r3gan" and unread_keys(cfg.model) == []
    assert (cfg.loss.r1_gamma > 0 and cfg.loss.r2_gamma > 0 and cfg.optim.beta1 == 0.0 and cfg.optim.beta2 == 0.99
            and cfg.optim.ema_beta > 0)
    _, G, D = _nets(preset)
    assert G(torch.randn(2, G.z_dim)).shape == (2, *PRESETS[preset])


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_loss_is_the_relativistic_one(preset):
    from gankit.losses import list_losses

    name = preset_config(preset).loss.name
    assert name == "relativistic"
    if name not in list_losses():
        pytest.skip("loss 'relativistic' is not in gankit.losses yet (being added with issue #19)")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_d_under_bf16_autocast_on_the_cpu_follows_float32(preset):
    """D's antialiased downsample has no bf16 CPU kernel in torch; it runs that filter in float32 under autocast.
    D's logits and input gradients (what R1 penalises) then follow the float32 ones to bf16's precision."""
    _, _, D = _nets(preset)
    x = torch.randn(16, *PRESETS[preset])
    x32 = x.clone().requires_grad_(True)
    (g32,) = torch.autograd.grad(D(x32).sum(), x32)
    xb = x.clone().requires_grad_(True)
    with torch.autocast("cpu", torch.bfloat16):
        logits = D(xb)
    (gb,) = torch.autograd.grad(logits.float().sum(), xb)
    ref = D(x).detach()
    assert (logits.float() - ref).abs().max() <= 3e-2 * ref.abs().max() + 1e-3
    assert (gb - g32).norm() <= 5e-2 * g32.norm()
