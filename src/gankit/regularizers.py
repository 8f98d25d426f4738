"""Regularizers of D as small pure functions: gradient penalty, R1, R2, instance noise, spectral norm.

Each penalty returns an unweighted scalar; the training loop multiplies it by its configured weight.
``D`` is any callable ``D(x) -> logits (N',)`` (a packed D returns N/m logits; that is fine here).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

Critic = Callable[[torch.Tensor], torch.Tensor]


def _grad_norms(D: Critic, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """‖∇ₓ D(x)‖₂ per sample, (N,); ``x`` must require grad."""
    out = D(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=create_graph)
    return grad.flatten(1).norm(2, dim=1)


def gradient_penalty(D: Critic, real: torch.Tensor, fake: torch.Tensor, *, target: float = 1.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017, Alg. 1): E[(‖∇D(x̂)‖₂ - target)²], x̂ = εx + (1-ε)x̃.

    ε ~ U[0, 1] is drawn once per sample (not per batch). ``real``, ``fake``: (N, ...) float; the penalty is
    differentiable with respect to D's parameters (create_graph=True). Returns a scalar.
    """
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype,
                     generator=generator)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    return ((_grad_norms(D, x_hat) - target) ** 2).mean()


def _zero_centred_penalty(D: Critic, x: torch.Tensor) -> torch.Tensor:
    """E[‖∇ₓD(x)‖₂²] over the samples of ``x`` (N, ...), differentiable in D's parameters, not in ``x``."""
    return (_grad_norms(D, x.detach().requires_grad_(True)) ** 2).mean()


def r1_penalty(D: Critic, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E[‖∇D(x)‖₂²] on real data; the loop weights it by γ/2. Returns a scalar."""
    return _zero_centred_penalty(D, real)


def r2_penalty(D: Critic, fake: torch.Tensor) -> torch.Tensor:
    """R2 (Mescheder et al. 2018): E[‖∇D(x̃)‖₂²] on generated data, R1's math on the other batch; the loop weights
    it by γ/2. R3GAN (Huang et al. 2024) needs both for its convergence guarantee. Returns a scalar."""
    return _zero_centred_penalty(D, fake)


def instance_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + N(0, std²) (Sønderby et al. 2017; Arjovsky & Bottou 2017), applied to real and fake D inputs alike."""
    if std <= 0:
        return x
    return x + std * torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)


def apply_spectral_norm(module: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) on every Linear, Conv and Embedding weight of ``module``, in
    place (the embedding is the projection discriminator's class matrix, normalised in Miyato & Koyama's code too).

    Uses torch's parametrization: the weight is divided by a power-iteration estimate of its largest singular
    value, updated once per forward pass in training mode.
    """
    sn = torch.nn.utils.parametrizations.spectral_norm
    for m in list(module.modules()):
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)):
            dim = 1 if isinstance(m, nn.ConvTranspose2d) else 0
            sn(m, n_power_iterations=n_power_iterations, dim=dim)
    return module
