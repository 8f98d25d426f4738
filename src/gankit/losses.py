"""Adversarial losses as small pure functions on D's logits.

Every D loss has the signature ``d_loss(real_logits, fake_logits, *, real_target, fake_target) -> Tensor``
and every G loss ``g_loss(fake_logits) -> Tensor``; logits are (N,) float, D(x) = sigmoid(logit).
Goodfellow et al. (2014): V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))], D maximises V, G minimises it.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .errors import GankitError


def d_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor, *, real_target: float = 1.0,
          fake_target: float = 0.0) -> torch.Tensor:
    """Sigmoid cross-entropy of D: BCE(D(x), real_target) + BCE(D(G(z)), fake_target).

    With targets 1 and 0 this is -V(D, G) for one batch, so minimising it maximises V. A ``real_target``
    of 0.9 is one-sided label smoothing, as in the seed tutorial.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.full_like(fake_logits, fake_target))
    return real + fake


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(G(z))] = BCE(D(G(z)), 1): Goodfellow et al.'s heuristic with strong early gradients."""
    return F.softplus(-fake_logits).mean()


def g_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """E[log(1 - D(G(z)))] exactly as in the minimax formula (saturates when D rejects fakes).

    log(1 - sigmoid(l)) = -softplus(l), computed stably.
    """
    return -F.softplus(fake_logits).mean()


def d_least_squares(real_logits: torch.Tensor, fake_logits: torch.Tensor, *, real_target: float = 1.0,
                    fake_target: float = 0.0) -> torch.Tensor:
    """LSGAN (Mao et al. 2017, a=0, b=1) on raw outputs:
    ½E[(D(x) - real_target)²] + ½E[(D(G(z)) - fake_target)²]."""
    return 0.5 * ((real_logits - real_target) ** 2).mean() + 0.5 * ((fake_logits - fake_target) ** 2).mean()


def g_least_squares(fake_logits: torch.Tensor) -> torch.Tensor:
    """LSGAN G (c=1): ½E[(D(G(z)) - 1)²]."""
    return 0.5 * ((fake_logits - 1.0) ** 2).mean()


def d_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor, *, real_target: float = 1.0,
            fake_target: float = 0.0) -> torch.Tensor:
    """Hinge D (Lim & Ye 2017; SNGAN): E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]. Targets do not apply
    (the config allows only 1 and 0)."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge and Wasserstein G: -E[D(G(z))]."""
    return -fake_logits.mean()


def d_wasserstein(real_logits: torch.Tensor, fake_logits: torch.Tensor, *, real_target: float = 1.0,
                  fake_target: float = 0.0) -> torch.Tensor:
    """WGAN critic (Arjovsky et al. 2017): E[D(G(z))] - E[D(x)], the negated Wasserstein-1 estimate. Needs a
    Lipschitz constraint (gradient penalty or spectral norm). Targets do not apply."""
    return fake_logits.mean() - real_logits.mean()


LOSSES: dict[str, tuple[Callable[..., torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {
    "nonsaturating": (d_bce, g_nonsaturating),
    "minimax": (d_bce, g_minimax),
    "least_squares": (d_least_squares, g_least_squares),
    "hinge": (d_hinge, g_hinge),
    "wasserstein": (d_wasserstein, g_hinge),
}

# Losses whose D objective has no targets: loss.real_target/fake_target must stay 1 and 0 with them.
TARGETLESS = ("hinge", "wasserstein")


def check_targets(name: str, real_target: float, fake_target: float) -> None:
    """Hinge and Wasserstein have no targets: refuse smoothing values that would be silently ignored."""
    if name in TARGETLESS and (real_target != 1.0 or fake_target != 0.0):
        raise GankitError(f"loss {name!r} has no targets, but loss.real_target={real_target} and "
                          f"loss.fake_target={fake_target}; set --loss.real_target 1.0 --loss.fake_target 0.0")


def list_losses() -> list[str]:
    """The names ``loss.name`` accepts."""
    return sorted(LOSSES)


def get_loss(name: str) -> tuple[Callable[..., torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]:
    """(d_loss, g_loss) for a loss name."""
    if name not in LOSSES:
        raise GankitError(f"unknown loss {name!r}; choose one of: {', '.join(list_losses())}")
    return LOSSES[name]
