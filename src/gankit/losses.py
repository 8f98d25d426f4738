"""Adversarial losses as small pure functions on D's logits.

Every D loss has the signature ``d_loss(real_logits, fake_logits, *, real_target, fake_target) -> Tensor``
and every G loss ``g_loss(fake_logits, real_logits) -> Tensor``; logits are (N,) float, D(x) = sigmoid(logit),
and each returns a scalar. In the G step ``real_logits`` is D's output on a real batch *through the same D the
G step uses* (the D, weights and input pipeline alike, that gives ``fake_logits`` there), one real per fake.
Only the losses in ``G_NEEDS_REAL`` read it: the training step asks ``g_needs_real(name)`` and, when False,
skips that extra D(real) pass and passes None.
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


def g_nonsaturating(fake_logits: torch.Tensor, real_logits: torch.Tensor | None) -> torch.Tensor:
    """-E[log D(G(z))] = BCE(D(G(z)), 1): Goodfellow et al.'s heuristic with strong early gradients."""
    return F.softplus(-fake_logits).mean()


def g_minimax(fake_logits: torch.Tensor, real_logits: torch.Tensor | None) -> torch.Tensor:
    """E[log(1 - D(G(z)))] exactly as in the minimax formula (saturates when D rejects fakes).

    log(1 - sigmoid(l)) = -softplus(l), computed stably.
    """
    return -F.softplus(fake_logits).mean()


def d_least_squares(real_logits: torch.Tensor, fake_logits: torch.Tensor, *, real_target: float = 1.0,
                    fake_target: float = 0.0) -> torch.Tensor:
    """LSGAN (Mao et al. 2017, a=0, b=1) on raw outputs:
    ½E[(D(x) - real_target)²] + ½E[(D(G(z)) - fake_target)²]."""
    return 0.5 * ((real_logits - real_target) ** 2).mean() + 0.5 * ((fake_logits - fake_target) ** 2).mean()


def g_least_squares(fake_logits: torch.Tensor, real_logits: torch.Tensor | None) -> torch.Tensor:
    """LSGAN G (c=1): ½E[(D(G(z)) - 1)²]."""
    return 0.5 * ((fake_logits - 1.0) ** 2).mean()


def d_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor, *, real_target: float = 1.0,
            fake_target: float = 0.0) -> torch.Tensor:
    """Hinge D (Lim & Ye 2017; SNGAN): E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]. Targets do not apply
    (the config allows only 1 and 0)."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge(fake_logits: torch.Tensor, real_logits: torch.Tensor | None) -> torch.Tensor:
    """Hinge and Wasserstein G: -E[D(G(z))]."""
    return -fake_logits.mean()


def d_wasserstein(real_logits: torch.Tensor, fake_logits: torch.Tensor, *, real_target: float = 1.0,
                  fake_target: float = 0.0) -> torch.Tensor:
    """WGAN critic (Arjovsky et al. 2017): E[D(G(z))] - E[D(x)], the negated Wasserstein-1 estimate. Needs a
    Lipschitz constraint (gradient penalty or spectral norm). Targets do not apply."""
    return fake_logits.mean() - real_logits.mean()


def _paired(real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
    """D(x_i) - D(G(z_i)) for the pairs i; the relativistic loss compares sample i of each half with the other."""
    if real_logits is None:
        raise GankitError("loss 'relativistic' needs D's logits on a real batch in the G step, got None; "
                          "compute them when gankit.losses.g_needs_real(name) is True")
    if real_logits.shape != fake_logits.shape:
        raise GankitError(f"loss 'relativistic' pairs real and fake logits one to one, got real "
                          f"{tuple(real_logits.shape)} and fake {tuple(fake_logits.shape)}; give D equal batches")
    return real_logits - fake_logits


def d_relativistic(real_logits: torch.Tensor, fake_logits: torch.Tensor, *, real_target: float = 1.0,
                   fake_target: float = 0.0) -> torch.Tensor:
    """Relativistic pairing D (RpGAN; Jolicoeur-Martineau 2019, "The relativistic discriminator"; the loss of R3GAN,
    Huang et al. 2024, with f(t) = softplus(-t)): E_i[softplus(-(D(x_i) - D(G(z_i))))], the BCE of "real x_i is
    more real than its paired fake". Logits (N,), the same N for both halves (N = B/pack with packing). Targets do
    not apply."""
    return F.softplus(-_paired(real_logits, fake_logits)).mean()


def g_relativistic(fake_logits: torch.Tensor, real_logits: torch.Tensor | None) -> torch.Tensor:
    """Relativistic pairing G: E_i[softplus(-(D(G(z_i)) - D(x_i)))], D's loss with real and fake swapped.
    Needs ``real_logits`` (see ``g_needs_real``); its gradient also flows into them if they require it."""
    return F.softplus(_paired(real_logits, fake_logits)).mean()


LOSSES: dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]] = {
    "nonsaturating": (d_bce, g_nonsaturating),
    "minimax": (d_bce, g_minimax),
    "least_squares": (d_least_squares, g_least_squares),
    "hinge": (d_hinge, g_hinge),
    "wasserstein": (d_wasserstein, g_hinge),
    "relativistic": (d_relativistic, g_relativistic),
}

# Losses whose D objective has no targets: loss.real_target/fake_target must stay 1 and 0 with them.
TARGETLESS = ("hinge", "wasserstein", "relativistic")

# Losses whose G loss reads real_logits: the G step must run D on a real batch for them (one more D pass).
G_NEEDS_REAL = frozenset({"relativistic"})


def g_needs_real(name: str) -> bool:
    """Whether loss ``name``'s G loss reads ``real_logits``; when False the G step may pass None instead."""
    get_loss(name)  # an unknown name is an error here too, not a silent False
    return name in G_NEEDS_REAL


def check_targets(name: str, real_target: float, fake_target: float) -> None:
    """Hinge, Wasserstein and relativistic have no targets: refuse smoothing values that would be silently ignored."""
    if name in TARGETLESS and (real_target != 1.0 or fake_target != 0.0):
        raise GankitError(f"loss {name!r} has no targets, but loss.real_target={real_target} and "
                          f"loss.fake_target={fake_target}; set --loss.real_target 1.0 --loss.fake_target 0.0")


def list_losses() -> list[str]:
    """The names ``loss.name`` accepts."""
    return sorted(LOSSES)


def get_loss(name: str) -> tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    """(d_loss, g_loss) for a loss name."""
    if name not in LOSSES:
        raise GankitError(f"unknown loss {name!r}; choose one of: {', '.join(list_losses())}")
    return LOSSES[name]
