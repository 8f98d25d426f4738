"""Small G and D, toy 2-D data and the two training loops the theory report needs.

Kept local to :mod:`gankit.theory` on purpose: these are the few lines a reader follows next to the derivation
(a fixed-p_g discriminator fit, and a plain alternating GAN loop with optional PacGAN packing), not the
general trainer of :mod:`gankit.train`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..data.toy import MIXTURES as _MIXTURES
from ..errors import GankitError
from ..losses import d_bce

Sampler = Callable[[int, torch.Generator], torch.Tensor]  # (n, generator) -> (n, dim) float32


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, *, batch_norm: bool = False) -> nn.Sequential:
    """Linear layers with leaky ReLU 0.2 between them (and batch norm before it if asked); no output activation."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if batch_norm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(nn.LeakyReLU(0.2))
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class Discriminator(nn.Module):
    """x (N, dim) -> logits (N // pack,). With ``pack`` m > 1, D judges m samples at once (PacGAN, Lin et al.
    2018): consecutive groups of m rows are concatenated into one (m * dim) input, all real or all fake."""

    def __init__(self, dim: int, hidden: tuple[int, ...], pack: int = 1):
        super().__init__()
        if pack < 1:
            raise GankitError(f"packing must be at least 1, got {pack}")
        self.pack = pack
        self.net = mlp(dim * pack, hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] % self.pack:
            raise GankitError(f"batch of {x.shape[0]} samples is not a multiple of the packing {self.pack}")
        return self.net(x.reshape(x.shape[0] // self.pack, -1)).squeeze(1)


class Generator(nn.Module):
    """z (N, z_dim) ~ N(0, I) -> x (N, dim)."""

    def __init__(self, z_dim: int, hidden: tuple[int, ...], dim: int, *, batch_norm: bool = False):
        super().__init__()
        self.z_dim = z_dim
        self.net = mlp(z_dim, hidden, dim, batch_norm=batch_norm)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        was = self.training
        self.eval()
        x = self(torch.randn(n, self.z_dim, generator=generator))
        self.train(was)
        return x


# ---- ring8 (docs/PROTOCOLS.md §1): 8 Gaussians at angles 2πk/8, k = 0..7, radius 1, std 0.01 -----------------------
# One definition for the whole toolkit: the dataset's (gankit.data.toy), which metrics' mode counting uses too.
RING8_STD = _MIXTURES["ring8"].std
RING8_MEANS = _MIXTURES["ring8"].means


def ring8_sample(n: int, generator: torch.Generator) -> torch.Tensor:
    """n points of ring8, float32 (n, 2). (Not linspace(0, 2π, 8): its first and last angles coincide.)"""
    k = torch.randint(0, 8, (n,), generator=generator)
    means = torch.tensor(RING8_MEANS, dtype=torch.float32)[k]
    return means + RING8_STD * torch.randn(n, 2, generator=generator)


def mode_stats(samples: np.ndarray) -> dict:
    """docs/PROTOCOLS.md §1 on generated ring8 samples (N, 2), by the toolkit's own protocol code
    (:class:`gankit.metrics.mixtures.ModeCounter`): modes captured, % high quality, and ``kl`` (None where no
    sample is high quality). Beyond the protocol: ``effective_modes``, exp(entropy) of the mode histogram of the
    samples within half the smallest distance between two means of their nearest mean (so unambiguously in that
    mode's basin): 1 when they all sit at one mode, K when they spread evenly, None if there are none; and
    ``basin_pct``, the % of samples it counts. Together they see collapse before the samples are sharp enough to
    count as high quality."""
    from ..metrics.mixtures import ModeCounter

    samples = np.asarray(samples, dtype=np.float64)
    counter = ModeCounter("ring8")
    counter.update(torch.from_numpy(samples))
    proto = counter.compute()
    means = RING8_MEANS
    dist = np.linalg.norm(samples[:, None, :] - means[None, :, :], axis=-1)  # (N, K)
    nearest = dist.argmin(1)
    spacing = np.linalg.norm(means[:, None] - means[None], axis=-1)[~np.eye(len(means), dtype=bool)].min()
    in_basin = dist[np.arange(len(samples)), nearest] < spacing / 2
    effective = None
    if in_basin.any():
        share = np.bincount(nearest[in_basin], minlength=len(means)) / in_basin.sum()
        effective = math.exp(-float((share[share > 0] * np.log(share[share > 0])).sum()))
    return {"modes": proto["modes"], "high_quality_pct": 100.0 * proto["high_quality"],
            "kl": proto["kl"] if math.isfinite(proto["kl"]) else None, "effective_modes": effective,
            "basin_pct": float(100.0 * in_basin.mean()), "counts": counter.hq_counts.astype(int).tolist()}


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """2 E|X - Y| - E|X - X'| - E|Y - Y'| for samples (N, d), (M, d): zero iff the distributions agree."""
    x, y = x.double(), y.double()
    return float(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean())


# ---- training ---------------------------------------------------------------------------------------------------
def train_d_fixed(D: nn.Module, sample_real: Sampler, sample_fake: Sampler, *, steps: int, batch: int, lr: float,
                  generator: torch.Generator) -> list[float]:
    """Fit D against a fixed p_g by minimising d_bce (= maximising V) on fresh samples, Adam with a cosine decay
    of the learning rate to zero so the last iterates average out the sampling noise. Returns V per step."""
    opt = torch.optim.Adam(D.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    values = []
    for _ in range(steps):
        loss = d_bce(D(sample_real(batch, generator)), D(sample_fake(batch, generator)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        values.append(-float(loss.detach()))
    return values


@dataclass
class GANHistory:
    """Per step: V(D, G) on the batch D just saw, mean D(G(z)) and the L2 norm of G's gradient at G's step."""

    value: list[float] = field(default_factory=list)
    d_fake: list[float] = field(default_factory=list)
    g_grad_norm: list[float] = field(default_factory=list)


def train_gan(G: Generator, D: Discriminator, sample_real: Sampler,
              g_loss: Callable[[torch.Tensor, None], torch.Tensor], *, steps: int, batch: int, lr: float,
              generator: torch.Generator, betas=(0.5, 0.999),
              optimizer: str = "adam", on_step: Callable[[int, Generator, Discriminator], None] | None = None,
              history: GANHistory | None = None) -> GANHistory:
    """Alternate one D step (d_bce, targets 1/0) and one G step (``g_loss``) per iteration, as in Algorithm 1 of
    Goodfellow et al. (2014) with k = 1. ``batch`` counts D's inputs: with packing m, each step draws m * batch
    real and m * batch fake samples, as PacGAN does.
    ``optimizer``: ``adam`` (with ``betas``) or ``sgd`` (momentum ``betas[0]``, the paper's plain stochastic
    gradient steps). ``on_step(step, G, D)`` runs before step ``step`` (0..steps) for snapshots."""
    hist = history if history is not None else GANHistory()
    opt_g, opt_d = (_optimizer(net, optimizer, lr, betas) for net in (G, D))
    n = batch * D.pack
    for step in range(steps):
        if on_step is not None:
            on_step(step, G, D)
        real = sample_real(n, generator)
        z = torch.randn(n, G.z_dim, generator=generator)
        with torch.no_grad():
            fake = G(z)
        loss_d = d_bce(D(real), D(fake))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        hist.value.append(-float(loss_d.detach()))

        fake_logits = D(G(torch.randn(n, G.z_dim, generator=generator)))
        loss_g = g_loss(fake_logits, None)  # the BCE G losses read no real logits (gankit.losses.g_needs_real)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        grad_sq = sum(float(p.grad.pow(2).sum()) for p in G.parameters() if p.grad is not None)
        opt_g.step()
        hist.g_grad_norm.append(math.sqrt(grad_sq))
        hist.d_fake.append(float(torch.sigmoid(fake_logits.detach()).mean()))
    if on_step is not None:
        on_step(steps, G, D)
    return hist


def _optimizer(net: nn.Module, name: str, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(net.parameters(), lr=lr, betas=betas)
    if name == "sgd":
        return torch.optim.SGD(net.parameters(), lr=lr, momentum=betas[0])
    raise GankitError(f"unknown optimizer {name!r}; choose adam or sgd")


@torch.no_grad()
def value_mc(D: Discriminator, real: torch.Tensor, fake: torch.Tensor) -> tuple[float, float]:
    """Monte Carlo V(D, G) = mean log D(x) + mean log(1 - D(G(z))) and its standard error (float64)."""
    lr = -torch.nn.functional.softplus(-D(real).double())  # log D(x)
    lf = -torch.nn.functional.softplus(D(fake).double())  # log(1 - D(G(z)))
    se = math.sqrt(float(lr.var()) / lr.numel() + float(lf.var()) / lf.numel())
    return float(lr.mean() + lf.mean()), se
