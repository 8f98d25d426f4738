"""Gradient penalty and R1 against finite differences, spectral norm's σ_max, EMA arithmetic, DiffAugment."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit.augment import POLICIES, brightness, color, contrast, diff_augment, parse_policy, saturation, translation
from gankit.ema import beta_from_half_life, make_ema, update_ema
from gankit.errors import GankitError
from gankit.regularizers import apply_spectral_norm, gradient_penalty, instance_noise, r1_penalty


def _critic() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 1), nn.Flatten(0)).double()


def _fd_grad_norm(D, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """‖∇D(x_i)‖ per sample by central finite differences."""
    norms = []
    for i in range(x.shape[0]):
        g = torch.zeros(x[i].numel(), dtype=x.dtype)
        for j in range(x[i].numel()):
            e = torch.zeros(x[i].numel(), dtype=x.dtype)
            e[j] = h
            xp = x[i:i + 1] + e.view_as(x[i:i + 1])
            xm = x[i:i + 1] - e.view_as(x[i:i + 1])
            g[j] = (D(xp) - D(xm)).item() / (2 * h)
        norms.append(g.norm())
    return torch.stack(norms)


def test_gradient_penalty_matches_finite_differences():
    D = _critic()
    real = torch.randn(4, 1, 2, 3, dtype=torch.float64)
    fake = torch.randn(4, 1, 2, 3, dtype=torch.float64)
    gen = torch.Generator().manual_seed(5)
    gp = gradient_penalty(D, real, fake, generator=gen)
    eps = torch.rand(4, 1, 1, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    assert len(set(eps.flatten().tolist())) == 4  # one ε per sample
    x_hat = eps * real + (1 - eps) * fake
    want = ((_fd_grad_norm(D, x_hat) - 1) ** 2).mean()
    assert gp.item() == pytest.approx(want.item(), rel=1e-6)
    gp.backward()  # differentiable in D's parameters (double backprop)
    assert all(D[i].weight.grad.abs().sum() > 0 for i in (1, 3))  # (the last bias does not move ∇ₓD)


def test_r1_matches_finite_differences():
    D = _critic()
    real = torch.randn(3, 1, 2, 3, dtype=torch.float64)
    want = (_fd_grad_norm(D, real) ** 2).mean()
    assert r1_penalty(D, real).item() == pytest.approx(want.item(), rel=1e-6)


def test_gradient_penalty_zero_for_unit_slope_linear_critic():
    D = nn.Sequential(nn.Flatten(), nn.Linear(4, 1, bias=False), nn.Flatten(0))
    with torch.no_grad():
        D[1].weight.copy_(torch.tensor([[0.6, 0.8, 0.0, 0.0]]))  # ‖w‖ = 1 everywhere
    assert gradient_penalty(D, torch.randn(5, 4), torch.randn(5, 4)).item() == pytest.approx(0.0, abs=1e-12)


def test_instance_noise_statistics():
    x = torch.zeros(20000, 3)
    y = instance_noise(x, 0.5, torch.Generator().manual_seed(0))
    assert y.std().item() == pytest.approx(0.5, rel=0.02)
    assert instance_noise(x, 0.0) is x


@pytest.mark.parametrize("make", [lambda: nn.Linear(20, 7), lambda: nn.Conv2d(3, 8, 3),
                                  lambda: nn.ConvTranspose2d(8, 4, 4)], ids=["linear", "conv", "convT"])
def test_spectral_norm_top_singular_value_is_one(make):
    torch.manual_seed(1)  # the layer too: built at collection, its weights depended on what ran before
    layer = make()
    m = apply_spectral_norm(nn.Sequential(layer))
    x = torch.randn(2, 20) if isinstance(layer, nn.Linear) else torch.randn(2, layer.in_channels, 6, 6)
    for _ in range(50):  # one power iteration per training-mode forward
        m(x)
    m.eval()
    w = m[0].weight
    mat = w.transpose(0, 1) if isinstance(layer, nn.ConvTranspose2d) else w
    sigma = torch.linalg.matrix_norm(mat.reshape(mat.shape[0], -1), ord=2).item()
    assert sigma == pytest.approx(1.0, abs=1e-3)


def test_spectral_norm_reaches_the_projection_embedding():
    """model.d_spectral_norm on a projection D normalises its class embedding too (as Miyato & Koyama's code
    does): after power iterations the (K, F) matrix has largest singular value ~1."""
    from gankit.config import ModelConfig
    from gankit.models import build_discriminator

    torch.manual_seed(2)
    D = build_discriminator(ModelConfig(arch="dcgan", cond="projection", num_classes=5, d_channels=4,
                                        d_spectral_norm=True), (1, 8, 8))
    x, y = torch.randn(6, 1, 8, 8), torch.arange(6) % 5
    for _ in range(50):
        D(x, y)
    D.eval()
    assert torch.linalg.matrix_norm(D.embed.weight.detach(), ord=2).item() == pytest.approx(1.0, abs=1e-3)


def test_ema_update_arithmetic():
    G = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    E = make_ema(G)
    assert not any(p.requires_grad for p in E.parameters())
    w0 = E[0].weight.clone()
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1.0)
        G[1].running_mean.fill_(3.0)
    update_ema(E, G, beta=0.9)
    torch.testing.assert_close(E[0].weight, 0.9 * w0 + 0.1 * (w0 + 1.0))
    torch.testing.assert_close(E[1].running_mean, torch.full((2,), 3.0))
    update_ema(E, G, beta=0.0)
    torch.testing.assert_close(E[0].weight, G[0].weight)
    assert beta_from_half_life(10) ** 10 == pytest.approx(0.5)


def test_diffaugment_shapes_ranges_and_gradients():
    x = (torch.rand(6, 3, 16, 16) * 2 - 1).requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    for name in POLICIES:
        y = diff_augment(x, name, g)
        assert y.shape == x.shape
        y.square().sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        x.grad = None
    for name in ("translation", "cutout"):  # these only move or zero pixels
        y = diff_augment(x, name, g).detach()
        assert y.min() >= min(x.min().item(), 0.0) and y.max() <= max(x.max().item(), 0.0)
    y = diff_augment(x, "color", g).detach()  # brightness ±0.5, saturation ×2, contrast ×1.5 bound the change
    assert y.abs().max() <= 1.5 + 2 * 2.5 * 1.5


def _images64(n=200, seed=0) -> torch.Tensor:
    return torch.rand(n, 3, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_brightness_adds_one_constant_per_sample_in_range():
    x = _images64()
    d = brightness(x, torch.Generator().manual_seed(1)) - x  # (N, C, H, W): the same value at every pixel
    c = d.flatten(1)[:, :1]
    torch.testing.assert_close(d.flatten(1), c.expand(-1, d[0].numel()), rtol=0, atol=1e-12)
    assert c.min() >= -0.5 and c.max() < 0.5 and c.min() < -0.4 and c.max() > 0.4  # U(-0.5, 0.5), 200 draws
    torch.testing.assert_close(c[:, 0], torch.rand(200, dtype=torch.float64,
                                                   generator=torch.Generator().manual_seed(1)) - 0.5)


def test_saturation_scales_deviations_from_the_channel_mean():
    x = _images64()
    y = saturation(x, torch.Generator().manual_seed(2))
    mean = x.mean(dim=1, keepdim=True)  # (N, 1, H, W): each pixel's mean over channels is kept
    torch.testing.assert_close(y.mean(dim=1, keepdim=True), mean, rtol=0, atol=1e-12)
    s = ((y - mean) * (x - mean)).flatten(1).sum(1) / (x - mean).square().flatten(1).sum(1)  # least-squares factor
    torch.testing.assert_close(y - mean, (x - mean) * s.view(-1, 1, 1, 1), rtol=0, atol=1e-12)
    assert s.min() >= 0 and s.max() < 2 and s.min() < 0.2 and s.max() > 1.8  # U(0, 2)


def test_contrast_scales_deviations_from_the_image_mean():
    x = _images64()
    y = contrast(x, torch.Generator().manual_seed(3))
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1): each image's mean is kept
    torch.testing.assert_close(y.mean(dim=(1, 2, 3), keepdim=True), mean, rtol=0, atol=1e-12)
    s = ((y - mean) * (x - mean)).flatten(1).sum(1) / (x - mean).square().flatten(1).sum(1)
    torch.testing.assert_close(y - mean, (x - mean) * s.view(-1, 1, 1, 1), rtol=0, atol=1e-12)
    assert s.min() >= 0.5 and s.max() < 1.5 and s.min() < 0.6 and s.max() > 1.4  # U(0.5, 1.5)


def test_color_matches_the_reference_formula():
    """DiffAugment's rand_brightness, rand_saturation, rand_contrast, in that order, one U[0, 1) per sample each."""
    x = _images64(n=6)
    ref = torch.Generator().manual_seed(4)
    u_b, u_s, u_c = (torch.rand(6, 1, 1, 1, dtype=torch.float64, generator=ref) for _ in range(3))
    want = x + (u_b - 0.5)
    m = want.mean(dim=1, keepdim=True)
    want = (want - m) * (2 * u_s) + m
    m = want.mean(dim=(1, 2, 3), keepdim=True)
    want = (want - m) * (u_c + 0.5) + m
    torch.testing.assert_close(color(x, torch.Generator().manual_seed(4)), want, rtol=0, atol=1e-12)
    torch.testing.assert_close(diff_augment(x, "color", torch.Generator().manual_seed(4)), want, rtol=0, atol=1e-12)


def test_translation_is_a_shift():
    x = torch.arange(64.0).view(1, 1, 8, 8)
    y = translation(x, torch.Generator().manual_seed(3))
    # some shift (dy, dx) in [-1, 1]² reproduces y from x with zero fill
    ok = False
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            want = torch.zeros_like(x)
            src = x[..., max(0, -dy): 8 - max(0, dy), max(0, -dx): 8 - max(0, dx)]
            want[..., max(0, dy): 8 - max(0, -dy), max(0, dx): 8 - max(0, -dx)] = src
            ok |= torch.equal(want, y)
    assert ok


def test_cutout_zeroes_a_quarter_inside_the_image():
    x = torch.ones(50, 1, 8, 8)
    y = diff_augment(x, "cutout", torch.Generator().manual_seed(0))
    zeros = (y == 0).sum(dim=(1, 2, 3))
    assert zeros.max().item() == 16 and zeros.min().item() >= 4  # a 4×4 square, clipped at the border


def test_unknown_policy():
    with pytest.raises(GankitError, match="unknown augmentation 'flip'"):
        parse_policy("color,flip")
