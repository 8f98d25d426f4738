"""Gradient penalty, R1 and R2 against finite differences, instance noise's spread, spectral norm's σ_max."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit.regularizers import apply_spectral_norm, gradient_penalty, instance_noise, r1_penalty, r2_penalty


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


def _fd_batch_sq_grad_norms(D, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """‖∇ₓᵢ Σⱼ D(x)ⱼ‖² per sample by central finite differences of the summed logits, one input entry at a time."""
    flat = x.detach().flatten()
    grad = torch.zeros_like(flat)
    for k in range(flat.numel()):
        e = torch.zeros_like(flat)
        e[k] = h
        grad[k] = (D((flat + e).view_as(x)).sum() - D((flat - e).view_as(x)).sum()).item() / (2 * h)
    return grad.view(x.shape[0], -1).square().sum(dim=1)


def test_r2_matches_finite_differences_and_trains_only_d():
    D = _critic()
    w = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)  # stands in for G: fakes depend on it
    fake = w.view(3, 1, 2, 3) * 2.0
    r2 = r2_penalty(D, fake)
    assert r2.item() == pytest.approx(_fd_batch_sq_grad_norms(D, fake).mean().item(), rel=1e-6)
    assert r2.item() == r1_penalty(D, fake).item()  # R1's math on the other batch
    r2.backward()
    assert w.grad is None  # a penalty of D: G gets no gradient from it
    assert all(D[i].weight.grad.abs().sum() > 0 for i in (1, 3))


def test_r2_on_an_r3gan_d_matches_finite_differences():
    """Through the r3gan D's grouped convs and antialiased resampling (double backward), with its residual
    branches made non-zero (at init each is the identity and D is linear in x)."""
    from gankit.config import ModelConfig
    from gankit.models import build_discriminator
    from gankit.models.r3gan import ResidualBlock

    torch.manual_seed(3)
    D = build_discriminator(ModelConfig(arch="r3gan", z_dim=4, stage_channels=(4, 8), group_channels=4),
                            (1, 8, 8)).double()
    with torch.no_grad():
        for block in D.modules():
            if isinstance(block, ResidualBlock):
                block.project.weight.normal_(0.0, 0.5)
    fake = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    r2 = r2_penalty(D, fake)
    assert r2.item() == pytest.approx(_fd_batch_sq_grad_norms(D, fake).mean().item(), rel=1e-6)
    r2.backward()
    assert D.from_img.weight.grad.abs().sum() > 0


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
