"""DiffAugment (augment.py): every policy keeps shapes and passes gradients; brightness, saturation and contrast
against their invariants and factor ranges, color against the reference formula, translation as a shift, cutout's
square; unknown policy names."""
from __future__ import annotations

import pytest
import torch

from gankit.augment import POLICIES, brightness, color, contrast, diff_augment, parse_policy, saturation, translation
from gankit.errors import GankitError


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
