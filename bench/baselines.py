"""The two reference training loops gankit's speed is measured against (same model, same math).

(a) ``careful_eager``: the whole data set preloaded as one float tensor, ``randint`` batches, one D and one G
    step, no host sync for logging — what a careful PyTorch user writes.
(b) ``tutorial``: a ``DataLoader`` over a ``Dataset`` that scales each item in ``__getitem__``, ``.item()``
    logging every step — the shape of the popular PyTorch GAN collections' loops.
Both build the seed model through gankit's registry so the arithmetic is identical; only the loop differs.
(c) ``careful_conv``: (a) for the conv presets (``quick-mnist``, bench/quick_speed.py): eager fp32, one D pass on
    cat(real, fake) where D has no batch norm (two where it has), D's weights frozen in the G step, R1, G_ema and
    labels (fake ones drawn by the real ones' shares) when the config has them — the careful plain-PyTorch step of
    the same networks and the same math.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from gankit.config import RunConfig
from gankit.data.clusters import draw_labels
from gankit.models import build_discriminator, build_generator


def _models(cfg: RunConfig, shape):
    torch.manual_seed(0)
    G, D = build_generator(cfg.model, shape), build_discriminator(cfg.model, shape)
    o = cfg.optim
    opt_g = torch.optim.Adam(G.parameters(), lr=o.g_lr, betas=(o.beta1, o.beta2), eps=o.eps)
    opt_d = torch.optim.Adam(D.parameters(), lr=o.d_lr, betas=(o.beta1, o.beta2), eps=o.eps)
    return G, D, opt_g, opt_d


def _step(G, D, opt_g, opt_d, real, z, real_target):
    """One D and one G step written the plain way: two D passes, D's weight gradients computed in the G step."""
    fake = G(z)
    dr, df = D(real), D(fake.detach())
    d_loss = (F.binary_cross_entropy_with_logits(dr, torch.full_like(dr, real_target))
              + F.binary_cross_entropy_with_logits(df, torch.zeros_like(df)))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    gl = D(fake)
    g_loss = F.binary_cross_entropy_with_logits(gl, torch.ones_like(gl))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return d_loss, g_loss


def careful_eager(cfg: RunConfig, images_u8: torch.Tensor, steps: int, windows: list[float]) -> None:
    """Run ``steps`` steps; append the wall time of each block of 50 steps to ``windows``."""
    shape = tuple(images_u8.shape[1:])
    G, D, opt_g, opt_d = _models(cfg, shape)
    data = images_u8.float() / 127.5 - 1  # preloaded once
    B, z_dim, t = cfg.train.batch_size, cfg.model.z_dim, cfg.loss.real_target
    t0 = time.perf_counter()
    for i in range(steps):
        real = data[torch.randint(0, data.shape[0], (B,))]
        _step(G, D, opt_g, opt_d, real, torch.randn(B, z_dim), t)
        if (i + 1) % 50 == 0:
            now = time.perf_counter()
            windows.append(now - t0)
            t0 = now


class _ScaledItems(torch.utils.data.Dataset):
    def __init__(self, images_u8):
        self.images = images_u8

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.images[i].float() / 255.0 * 2 - 1  # per-item transform, like ToTensor + Normalize


def tutorial(cfg: RunConfig, images_u8: torch.Tensor, steps: int, windows: list[float]) -> None:
    shape = tuple(images_u8.shape[1:])
    G, D, opt_g, opt_d = _models(cfg, shape)
    B, z_dim, t = cfg.train.batch_size, cfg.model.z_dim, cfg.loss.real_target
    loader = torch.utils.data.DataLoader(_ScaledItems(images_u8), batch_size=B, shuffle=True, drop_last=True)
    losses = []
    done = 0
    t0 = time.perf_counter()
    while done < steps:
        for real in loader:
            d_loss, g_loss = _step(G, D, opt_g, opt_d, real, torch.randn(B, z_dim), t)
            losses.append((d_loss.item(), g_loss.item()))  # per-step host sync for logging
            done += 1
            if done % 50 == 0:
                now = time.perf_counter()
                windows.append(now - t0)
                t0 = now
            if done >= steps:
                break


def _ema_copy(G):
    import copy

    G_ema = copy.deepcopy(G).eval()
    G_ema.requires_grad_(False)
    return G_ema


def careful_conv(cfg: RunConfig, images_u8: torch.Tensor, steps: int, windows: list[float],
                 labels: torch.Tensor | None = None, shares: torch.Tensor | None = None) -> None:
    """(c): a careful eager fp32 step of a conv GAN (non-saturating loss, optional R1 on the real batch, optional
    G_ema). A conditional model (``model.cond``) takes the real images' ``labels`` and fake labels drawn by
    ``shares`` (a self-conditioned run's cluster sizes). Appends the wall time of each block of 50 steps to
    ``windows``."""
    L, o = cfg.loss, cfg.optim
    if L.name != "nonsaturating" or L.r2_gamma or L.gp_weight:
        raise ValueError("careful_conv writes the non-saturating loss (+ R1) only")
    cond = cfg.model.cond != "none"
    if cond and (labels is None or shares is None or cfg.model.cond == "acgan"):
        raise ValueError("careful_conv: a concat or projection model needs the labels and the label shares")
    shape = tuple(images_u8.shape[1:])
    G, D, opt_g, opt_d = _models(cfg, shape)
    G_ema = _ema_copy(G) if o.ema_beta > 0 else None
    data = images_u8.float() / 127.5 - 1  # preloaded once
    B, z_dim, t = cfg.train.batch_size, cfg.model.z_dim, L.real_target
    t0 = time.perf_counter()
    for i in range(steps):
        idx = torch.randint(0, data.shape[0], (B,))
        real = data[idx]
        if cond:  # G and D both take the label; fake labels by the shares, as gankit's step draws them
            y_real = labels[idx]
            y_fake = draw_labels(shares.float(), B)
            Gf, Df = (lambda z: G(z, y_fake)), (lambda x, y: D(x, y))
        else:
            y_real = y_fake = None
            Gf, Df = G, (lambda x, y: D(x))
        fake = Gf(torch.randn(B, z_dim))
        if cfg.model.d_norm == "batch":  # batch norm: real and fake each need their own batch statistics
            dr, df = Df(real, y_real), Df(fake.detach(), y_fake)
        else:  # one D pass: nothing couples the halves
            logits = Df(torch.cat([real, fake.detach()]), torch.cat([y_real, y_fake]) if cond else None)
            dr, df = logits[:B], logits[B:]
        d_loss = (F.binary_cross_entropy_with_logits(dr, torch.full_like(dr, t))
                  + F.binary_cross_entropy_with_logits(df, torch.zeros_like(df)))
        if L.r1_gamma > 0:  # R1 on its own pass: the penalty needs d D(x)/dx with a graph
            x = real.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(Df(x, y_real).sum(), x, create_graph=True)
            d_loss = d_loss + 0.5 * L.r1_gamma * g.flatten(1).pow(2).sum(1).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        D.requires_grad_(False)  # no D weight gradients in the G step
        g_loss = F.softplus(-Df(fake, y_fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
        if G_ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(list(G_ema.parameters()), list(G.parameters()), 1.0 - o.ema_beta)
                for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                    b_ema.copy_(b)
        if (i + 1) % 50 == 0:
            now = time.perf_counter()
            windows.append(now - t0)
            t0 = now
