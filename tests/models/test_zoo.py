"""Every model family × (grayscale, RGB) × (conditional or not): forward and backward on tiny configs; packing
shapes; projection and concat arithmetic; rebuild from config; errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit.config import ModelConfig, preset_config
from gankit.errors import GankitError
from gankit.models import build_discriminator, build_generator, has_batch_coupling, list_archs, model_keys
from gankit.models.pack import PackedDiscriminator, pack

TINY = dict(z_dim=4, g_hidden=(8,), d_hidden=(8,), g_channels=4, d_channels=4, maxout_pieces=2)


def _cfg(arch: str, cond: str = "none", **kw) -> ModelConfig:
    tiny = {k: v for k, v in TINY.items() if k in model_keys(arch)}  # a family refuses the keys it does not read
    return ModelConfig(arch=arch, cond=cond, num_classes=0 if cond == "none" else 3, **{**tiny, **kw})


def _run(G, D, cond, n=4, z_dim=4):
    z = torch.randn(n, z_dim)
    y = torch.arange(n) % 3
    x = G(z, y) if cond != "none" else G(z)
    if cond == "acgan":
        logits, aux = D.forward_with_aux(x)
        assert aux.shape == (n, 3)
        loss = logits.sum() + aux.sum()
    else:
        logits = D(x, y) if cond in ("concat", "projection") else D(x)
        loss = logits.sum()
    return x, logits, loss


def test_all_archs_registered():
    assert list_archs() == ["dcgan", "mlp", "r3gan", "resnet", "toy"]


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet", "toy"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("cond", ["none", "concat", "projection", "acgan"])
def test_forward_backward(arch, channels, cond):
    torch.manual_seed(0)
    cfg = _cfg(arch, cond, g_norm="batch")
    G, D = build_generator(cfg, (channels, 8, 8)), build_discriminator(cfg, (channels, 8, 8))
    x, logits, loss = _run(G, D, cond)
    assert x.shape == (4, channels, 8, 8) and logits.shape == (4,)
    if arch != "toy":
        assert x.abs().max() <= 1.0  # tanh output
    loss.backward()
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        assert p.grad is not None, name
    assert sum(p.grad.abs().sum() for p in G.parameters()) > 0
    assert sum(p.grad.abs().sum() for p in D.parameters()) > 0


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
@pytest.mark.parametrize("res,channels", [(28, 1), (32, 3), (64, 3)])
def test_conv_resolutions(arch, res, channels):
    cfg = _cfg(arch)
    G, D = build_generator(cfg, (channels, res, res)), build_discriminator(cfg, (channels, res, res))
    x = G(torch.randn(2, 4))
    assert x.shape == (2, channels, res, res) and D(x).shape == (2,)


def test_dcgan_64_matches_the_paper_widths():
    D = build_discriminator(ModelConfig(arch="dcgan", d_channels=64, d_norm="batch"), (3, 64, 64))
    convs = [m.out_channels for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [64, 128, 256, 512]
    assert has_batch_coupling(D) and not has_batch_coupling(build_discriminator(ModelConfig(), (1, 8, 8)))


def test_dcgan_d_layers_4_at_28_is_the_stacked_mnist_protocol_d():
    """docs/PROTOCOLS.md §2: D convs 64-128-256-512 with leaky ReLU and BN, here 28 -> 14 -> 7 -> 3 -> 1 pixels."""
    cfg = ModelConfig(arch="dcgan", d_channels=64, d_norm="batch", d_layers=4, pack=2)
    D = build_discriminator(cfg, (3, 28, 28))
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 128, 256, 512] and convs[0].in_channels == 6  # packed
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1])) for m in convs]
    assert D(torch.randn(4, 3, 28, 28)).shape == (2,)
    assert sizes == [14, 7, 3, 1]
    for h in hooks:
        h.remove()
    with pytest.raises(GankitError, match="halves 28-pixel images below one pixel; use at most 4"):
        build_discriminator(ModelConfig(arch="dcgan", d_layers=5), (1, 28, 28))


def _convt_sizes(G, z):
    sizes = []
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:]))) for m in convs]
    out = G(z)
    for h in hooks:
        h.remove()
    return convs, sizes, out


def test_dcgan_g_layers_4_at_28_mirrors_the_stacked_mnist_d():
    """docs/PROTOCOLS.md §2's G mirrors its D: Linear to 512x2x2 (ceil(28 / 16)), then ConvT 512-256-128-64-3 growing
    2 -> 4 -> 7 -> 14 -> 28, the DCGAN code's output sizes ceil(28 / 2^k); both stacked presets use it."""
    for preset in ("dcgan-stacked-mnist", "pacgan-stacked-mnist"):
        assert preset_config(preset).model.g_layers == 4
    G = build_generator(ModelConfig(arch="dcgan", g_channels=64, g_norm="batch", g_layers=4), (3, 28, 28))
    assert G.fc.out_features == 512 * 2 * 2
    convs, sizes, out = _convt_sizes(G, torch.randn(2, 100))
    assert [(m.in_channels, m.out_channels) for m in convs] == [(512, 256), (256, 128), (128, 64), (64, 3)]
    assert sizes == [(256, 4, 4), (128, 7, 7), (64, 14, 14), (3, 28, 28)]
    assert out.shape == (2, 3, 28, 28) and out.abs().max() <= 1


def test_dcgan_g_layers_naming_the_automatic_depth_builds_the_same_g():
    """g_layers 0 picks the depth that doubles exactly from >= 4 pixels (28: 7 -> 14 -> 28); naming that depth
    builds the identical network, weights included under the same seed."""
    nets = []
    for k in (0, 2):
        torch.manual_seed(3)
        nets.append(build_generator(ModelConfig(arch="dcgan", g_channels=8, g_layers=k), (1, 28, 28)).state_dict())
    assert nets[0].keys() == nets[1].keys() and all(torch.equal(nets[0][k], nets[1][k]) for k in nets[0])
    with pytest.raises(GankitError, match="starts 28-pixel images below one pixel; use at most 4"):
        build_generator(ModelConfig(arch="dcgan", g_layers=5), (1, 28, 28))
    with pytest.raises(GankitError, match="g_layers 2 has no effect on the resnet family"):
        build_generator(ModelConfig(arch="resnet", g_layers=2), (3, 32, 32))


@pytest.mark.parametrize("arch", ["mlp", "toy"])
def test_vector_data(arch):
    cfg = _cfg(arch, g_hidden=(8, 8))
    G, D = build_generator(cfg, (2,)), build_discriminator(cfg, (2,))
    assert G(torch.randn(5, 4)).shape == (5, 2) and D(torch.randn(5, 2)).shape == (5,)


def test_pack_shapes_and_grouping():
    x = torch.arange(24.0).view(6, 2, 1, 2)
    p = pack(x, 3)
    assert p.shape == (2, 6, 1, 2)
    torch.testing.assert_close(p[1], torch.cat([x[3], x[4], x[5]], dim=0))
    with pytest.raises(GankitError, match="divisible by 4"):
        pack(x, 4)


@pytest.mark.parametrize("arch,shape", [("toy", (2,)), ("dcgan", (1, 8, 8)), ("mlp", (3, 8, 8)), ("resnet", (3, 8, 8))])
def test_packed_discriminator(arch, shape):
    cfg = _cfg(arch, pack=4)
    D = build_discriminator(cfg, shape)
    assert isinstance(D, PackedDiscriminator)
    x = torch.randn(8, *shape)
    out = D(x)
    assert out.shape == (2,)
    want = D.inner(torch.cat([x[4], x[5], x[6], x[7]], dim=0)[None])
    torch.testing.assert_close(out[1:], want)
    if arch == "resnet":  # the first block's convs see the 4 packed images as 12 channels
        assert D.inner.blocks[0].c1.in_channels == D.inner.blocks[0].sc.in_channels == 4 * shape[0]


def test_projection_closed_form():
    torch.manual_seed(0)
    D = build_discriminator(_cfg("toy", "projection"), (2,))
    x, y = torch.randn(5, 2), torch.tensor([0, 1, 2, 1, 0])
    phi = D.inner.features(x)
    want = phi @ D.inner.head.weight[0] + D.inner.head.bias + (phi * D.embed.weight[y]).sum(1)
    torch.testing.assert_close(D(x, y), want)


def test_concat_label_changes_output_and_g_obeys_labels():
    torch.manual_seed(0)
    cfg = _cfg("dcgan", "concat")
    G, D = build_generator(cfg, (1, 8, 8)), build_discriminator(cfg, (1, 8, 8))
    x = torch.randn(2, 1, 8, 8)
    assert not torch.allclose(D(x, torch.tensor([0, 0])), D(x, torch.tensor([1, 1])))
    z = torch.randn(2, 4)
    assert not torch.allclose(G(z, torch.tensor([0, 0])), G(z, torch.tensor([2, 2])))
    assert G.z_dim == 4


@pytest.mark.parametrize("arch", ["dcgan", "resnet", "toy"])
def test_rebuild_from_config_gives_identical_outputs(arch):
    cfg = _cfg(arch, "projection", d_spectral_norm=True)
    torch.manual_seed(1)
    G1, D1 = build_generator(cfg, (3, 8, 8)), build_discriminator(cfg, (3, 8, 8))
    torch.manual_seed(2)
    G2, D2 = build_generator(cfg, (3, 8, 8)), build_discriminator(cfg, (3, 8, 8))
    G2.load_state_dict(G1.state_dict())
    D2.load_state_dict(D1.state_dict())
    G1.eval(), G2.eval(), D1.eval(), D2.eval()
    z, y = torch.randn(3, 4), torch.tensor([0, 1, 2])
    torch.testing.assert_close(G1(z, y), G2(z, y))
    torch.testing.assert_close(D1(G1(z, y), y), D2(G2(z, y), y))


def test_spectral_norm_wraps_every_d_weight():
    D = build_discriminator(_cfg("resnet", d_spectral_norm=True), (3, 8, 8))
    layers = [m for m in D.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)


def test_dcgan_init_statistics():
    G = build_generator(ModelConfig(arch="dcgan", init="dcgan", g_norm="batch"), (1, 28, 28))
    w = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert w.std().item() == pytest.approx(0.02, rel=0.05) and abs(w.mean().item()) < 1e-3


def test_errors():
    with pytest.raises(GankitError, match="needs images"):
        build_generator(ModelConfig(arch="dcgan"), (2,))
    with pytest.raises(GankitError, match="square images"):
        build_discriminator(ModelConfig(arch="resnet"), (3, 7, 7))
    with pytest.raises(GankitError, match="needs num_classes > 0"):
        build_generator(ModelConfig(cond="acgan"), (1, 8, 8))
    with pytest.raises(GankitError, match="only with model.cond none"):
        build_discriminator(ModelConfig(cond="concat", num_classes=2, pack=2), (1, 8, 8))
    with pytest.raises(GankitError, match="unknown model.arch 'vit'"):
        build_generator(ModelConfig(arch="vit"), (1, 8, 8))
    with pytest.raises(GankitError, match="d_norm batch has no effect on the resnet family"):
        build_discriminator(ModelConfig(arch="resnet", d_norm="batch"), (3, 8, 8))
