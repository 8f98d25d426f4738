"""The training step: one call signature for every way of computing it.

A step object is called as ``step(batches, labels=None, inputs=None)`` on ``train.d_steps`` uint8 real batches
(and their labels, for conditional models) and returns (4,) [d_loss, g_loss, D(x), D(G(z))] on the device.
``inputs`` are the step's latents (and fake labels), one ``(z, y)`` per batch, drawn by :func:`draw_inputs`;
None draws them inside the step, interleaved with the step's other random numbers (augmentation, penalties).

- :class:`AutogradStep` computes every config: the seed's update and every option beyond it;
- :class:`~gankit.training.fused.FusedMLPStep` computes the seed's update with hand-derived gradients;
- :class:`~gankit.training.graphs.GraphedStep` captures either in a CUDA graph and replays it.

:func:`split_logits` and :func:`step_stats` are shared with the ensembles' vmapped step (ensemble.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..augment import diff_augment, parse_policy
from ..data import to_unit_range
from ..data.clusters import draw_labels
from ..ema import update_ema
from ..losses import g_needs_real, get_loss
from ..models import has_batch_coupling
from ..regularizers import gradient_penalty, instance_noise, r1_penalty, r2_penalty
from . import accel

Inputs = list[tuple[torch.Tensor, "torch.Tensor | None"]]


def split_logits(logits: torch.Tensor, dim: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(real, fake) halves of D's logits on [real; fake] (B, or B/pack packs, per half)."""
    half = logits.shape[dim] // 2
    return logits.narrow(dim, 0, half), logits.narrow(dim, half, logits.shape[dim] - half)


@torch.no_grad()
def step_stats(d_loss, g_loss, real_logits, fake_logits, dim: int = 0) -> torch.Tensor:
    """[d_loss, g_loss, D(x), D(G(z))] as a step returns them; ``dim`` 1 for (K, N) logits of K members."""
    return torch.stack([d_loss.detach(), g_loss.detach(), torch.sigmoid(real_logits.detach()).mean(dim),
                        torch.sigmoid(fake_logits.detach()).mean(dim)], dim=-1 if dim else 0)


def _shard(run: Any, x: torch.Tensor) -> torch.Tensor:
    """This rank's slice of a global draw: drawn whole on every rank, so a run does not depend on the number of
    processes."""
    if not run.dist.enabled:
        return x
    b = x.shape[0] // run.dist.world_size
    return x[run.dist.rank * b:(run.dist.rank + 1) * b]


def draw_one(run: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One D batch's latents (and fake labels) from the run's noise generator."""
    cfg = run.cfg
    B = cfg.train.batch_size
    z = _shard(run, torch.randn(B, cfg.model.z_dim, device=run.device, generator=run.noise))
    if cfg.model.cond == "none":
        return z, None
    shares = getattr(run, "label_shares", None)  # data.clusters: the clusters' sizes, not uniform
    if shares is not None:
        return z, _shard(run, draw_labels(shares, B, run.noise))
    return z, _shard(run, torch.randint(0, cfg.model.num_classes, (B,), device=run.device, generator=run.noise))


def draw_inputs(run: Any, k: int) -> Inputs:
    """The latents (and fake labels) of one step's ``k`` D batches, in the order the step draws them."""
    return [draw_one(run) for _ in range(k)]


class ForwardWithAux(torch.nn.Module):
    """Makes ACGAN's ``forward_with_aux`` the ``forward`` that DistributedDataParallel wraps."""

    def __init__(self, D: torch.nn.Module):
        super().__init__()
        self.D = D

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.D.forward_with_aux(x)


@dataclass
class Nets:
    """The callables a step uses for G and D: ``G_train`` for the fakes G's update backpropagates through,
    ``D_train`` for D's update passes (DDP wrappers under torchrun: gradients all-reduced), ``D_fwd`` for the G
    step's pass through bare D (its weight gradients are not needed); the ``*_aux`` variants return ACGAN's class
    logits too. Each is autocast and/or compiled as ``train.precision``/``train.compile`` say, except ``D_pen``
    (``D_pen_aux``): D_train never compiled, for the gradient penalties' passes, whose second backward pass
    (create_graph) a compiled backward cannot take."""

    G: torch.nn.Module
    D: torch.nn.Module
    G_train: Any
    D_train: Any
    D_fwd: Any
    D_train_aux: Any = None
    D_fwd_aux: Any = None
    D_pen: Any = None
    D_pen_aux: Any = None


def build_nets(run: Any) -> Nets:
    """The step's callables for ``run`` (a :class:`~gankit.training.run.Run`); under torchrun wraps G and D in
    DDP (SyncBatchNorm first with ``train.sync_bn``, replacing ``run.G``/``run.D``) and gives the run a per-rank
    ``aux_noise`` generator for augmentation and penalties (z and labels stay global)."""
    t = run.cfg.train
    acgan = run.cfg.model.cond == "acgan"
    G_train, D_train = run.G, run.D
    D_train_aux = ForwardWithAux(run.D) if acgan else None
    run.aux_noise = run.noise
    if run.dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        if t.sync_bn:
            run.G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(run.G)
            run.D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(run.D)
        ids = [run.device.index] if run.device.type == "cuda" else None
        G_train = DDP(run.G, device_ids=ids)
        if acgan:
            D_train_aux = DDP(D_train_aux, device_ids=ids)
        else:
            D_train = DDP(run.D, device_ids=ids)
        run.aux_noise = torch.Generator(device=run.device)
        run.aux_noise.manual_seed((t.seed + 1) * 1_000_003 + run.dist.rank)
    if t.channels_last and len(run.img_shape) == 3:
        accel.channels_last(run.G)
        accel.channels_last(run.D)
    dtype = accel.PRECISIONS[run.precision]  # train.precision, auto resolved (Run)

    def wrap(m, compile_=t.compile):
        return accel.wrap(m, run.device, dtype, compile_)
    run.scaler_D = accel.grad_scaler(run.precision == "fp16", run.device)
    run.scaler_G = accel.grad_scaler(run.precision == "fp16", run.device)
    for name, sd in getattr(run, "_scaler_state", {}).items():
        getattr(run, name).load_state_dict(sd)
    nets = Nets(run.G, run.D, wrap(G_train), wrap(D_train), wrap(run.D),
                wrap(D_train_aux) if acgan else None, wrap(ForwardWithAux(run.D)) if acgan else None)
    nets.D_pen = wrap(D_train, False) if t.compile else nets.D_train
    nets.D_pen_aux = (wrap(D_train_aux, False) if t.compile else nets.D_train_aux) if acgan else None
    return nets


class AutogradStep:
    """The step for every config, by autograd: ``d_steps`` D updates (each on a fresh real batch and fresh fakes)
    then one G update through the last fakes, as the seed does; conditioning, packing, penalties, augmentation,
    instance noise, EMA, the lr schedule and simultaneous updates are the options beyond it.

    Reads from ``run``: cfg, opt_G/opt_D, scaler_G/scaler_D, G_ema, noise/aux_noise, step/total_steps/lr_scale (the
    schedules), local_batch, dist, device."""

    def __init__(self, run: Any, nets: Nets):
        self.run, self.nets = run, nets
        cfg, L = run.cfg, run.cfg.loss
        self.d_loss_fn, self.g_loss_fn = get_loss(L.name)
        self.g_real = g_needs_real(L.name)  # the G loss reads D(real) through the same D as D(fake)
        self.augment = parse_policy(L.augment)
        self.two_pass = has_batch_coupling(run.D)  # batch norm in D: real and fake must not share a batch
        self.simultaneous = cfg.train.updates == "simultaneous"
        self.cond = cfg.model.cond

    def draw(self, k: int) -> Inputs:
        return draw_inputs(self.run, k)

    def _D(self, x: torch.Tensor, y: torch.Tensor | None, update: bool = True, penalty: bool = False
           ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, class logits or None) of D on x, labels y where the model is conditional. ``update``: a pass
        of D's own update (through the DDP wrapper when distributed), else the G step's pass through bare D.
        ``penalty``: a gradient penalty's pass of D's update, never compiled (it is differentiated twice)."""
        n = self.nets
        if self.cond == "acgan":
            return (n.D_pen_aux if penalty else n.D_train_aux if update else n.D_fwd_aux)(x)
        D = n.D_pen if penalty else n.D_train if update else n.D_fwd
        return (D(x, y) if self.cond != "none" else D(x)), None

    def _d_input(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        if self.augment:
            x = diff_augment(x, self.augment, self.run.aux_noise)
        return instance_noise(x, sigma, self.run.aux_noise) if sigma > 0 else x

    def _schedule(self) -> float:
        """Sets a linear lr decay's rates for this step; returns the instance-noise sigma."""
        run, o = self.run, self.run.cfg.optim
        frac = run.step / max(run.total_steps, 1)
        if o.lr_schedule == "linear":
            for opt, lr in ((run.opt_G, o.g_lr), (run.opt_D, o.d_lr)):
                for group in opt.param_groups:
                    group["lr"] = lr * run.lr_scale * (1.0 - frac)
        return run.cfg.loss.instance_noise * (1.0 - frac)

    def _d_update(self, real, y_real, fake, y_fake, sigma: float):
        """One D update on a real batch and detached fakes; returns (d_loss, real logits, fake logits)."""
        run, L = self.run, self.run.cfg.loss
        r_in, f_in = self._d_input(real, sigma), self._d_input(fake.detach(), sigma)
        if self.two_pass:
            (real_logits, real_aux), (fake_logits, fake_aux) = self._D(r_in, y_real), self._D(f_in, y_fake)
        else:
            y_both = torch.cat([y_real, y_fake]) if self.cond != "none" else None
            logits, aux = self._D(torch.cat([r_in, f_in]), y_both)
            real_logits, fake_logits = split_logits(logits)
            real_aux, fake_aux = split_logits(aux) if aux is not None else (None, None)
        d_loss = self.d_loss_fn(real_logits, fake_logits, real_target=L.real_target, fake_target=L.fake_target)
        if real_aux is not None:
            d_loss = d_loss + L.aux_weight * (F.cross_entropy(real_aux, y_real) + F.cross_entropy(fake_aux, y_fake))
        def on_real(x):
            return self._D(x, y_real, penalty=True)[0]
        if L.gp_weight > 0:  # conditional Ds judge the interpolates under the real labels
            d_loss = d_loss + L.gp_weight * gradient_penalty(on_real, r_in, f_in, generator=run.aux_noise)
        if L.r1_gamma > 0:
            d_loss = d_loss + 0.5 * L.r1_gamma * r1_penalty(on_real, r_in)
        if L.r2_gamma > 0:
            d_loss = d_loss + 0.5 * L.r2_gamma * r2_penalty(lambda x: self._D(x, y_fake, penalty=True)[0], f_in)
        accel.backward_step(d_loss, run.opt_D, run.scaler_D, step=not self.simultaneous)
        return d_loss, real_logits, fake_logits

    def __call__(self, batches: list[torch.Tensor], labels: list[torch.Tensor] | None = None,
                 inputs: Inputs | None = None) -> torch.Tensor:
        return self.g_phase(self.d_phase(batches, labels, inputs))

    def d_phase(self, batches: list[torch.Tensor], labels: list[torch.Tensor] | None = None,
                inputs: Inputs | None = None) -> dict[str, Any]:
        """The step's D updates, one per batch; returns what :meth:`g_phase` needs (the last batch's reals and
        fakes, the fakes still attached to G's graph). The lab (gankit lab) calls the phases one at a time."""
        sigma = self._schedule()
        for i, real_u8 in enumerate(batches):
            real = to_unit_range(real_u8)
            y_real = labels[i] if labels is not None else None
            z, y_fake = inputs[i] if inputs is not None else draw_one(self.run)
            last = i == len(batches) - 1  # G's update backpropagates through the last fakes only
            with torch.set_grad_enabled(last):
                G = self.nets.G_train if last else self.nets.G
                fake = G(z, y_fake) if self.cond != "none" else G(z)
            d_loss, real_logits, fake_logits = self._d_update(real, y_real, fake, y_fake, sigma)
        return {"real": real, "y_real": y_real, "fake": fake, "y_fake": y_fake, "sigma": sigma, "d_loss": d_loss,
                "real_logits": real_logits, "fake_logits": fake_logits}

    def g_inputs(self, real_u8: torch.Tensor, labels: torch.Tensor | None = None,
                 inputs: Inputs | None = None) -> dict[str, Any]:
        """What :meth:`g_phase` needs for a G update without a D update before it (the lab's single G step):
        fresh fakes on G's graph and a real batch (read by the relativistic loss); no D statistics."""
        z, y_fake = inputs[0] if inputs is not None else draw_one(self.run)
        fake = self.nets.G_train(z, y_fake) if self.cond != "none" else self.nets.G_train(z)
        nan = torch.full((), float("nan"), device=fake.device)
        return {"real": to_unit_range(real_u8), "y_real": labels, "fake": fake, "y_fake": y_fake, "sigma":
                self._schedule(), "d_loss": nan, "real_logits": nan.view(1), "fake_logits": nan.view(1)}

    def g_phase(self, ctx: dict[str, Any]) -> torch.Tensor:
        """G's update through D on ``ctx``'s fakes (as the seed does: the same z for the D and the G update); D's
        weight gradients are not needed here, so D's parameters are frozen for this backward pass."""
        run, L = self.run, self.run.cfg.loss
        fake, y_fake, sigma = ctx["fake"], ctx["y_fake"], ctx["sigma"]
        self.nets.D.requires_grad_(False)
        g_logits, g_aux = self._D(self._d_input(fake, sigma), y_fake, update=False)
        r_logits = (self._D(self._d_input(ctx["real"], sigma), ctx["y_real"], update=False)[0] if self.g_real
                    else None)
        g_loss = self.g_loss_fn(g_logits, r_logits)
        if g_aux is not None:
            g_loss = g_loss + L.aux_weight * F.cross_entropy(g_aux, y_fake)
        accel.backward_step(g_loss, run.opt_G, run.scaler_G)
        self.nets.D.requires_grad_(True)
        if self.simultaneous:  # D's update comes after G's gradient was taken through the old D
            accel.optimizer_step(run.opt_D, run.scaler_D)
        if run.G_ema is not None:
            update_ema(run.G_ema, run.G, run.cfg.optim.ema_beta)
        return step_stats(ctx["d_loss"], g_loss, ctx["real_logits"], ctx["fake_logits"])


def build_step(run: Any) -> Any:
    """The step object for ``run``: the fused MLP step where it computes exactly this run's update (else
    autograd), captured in a CUDA graph with ``train.cuda_graphs``. Sets ``run.nets`` and ``run.step_kind``."""
    from . import fused, graphs, options

    run.nets = build_nets(run)
    why = options.why_not("fused", run.cfg, run.ctx)
    step = fused.FusedMLPStep(run) if why is None else AutogradStep(run, run.nets)
    run.step_kind = "fused-mlp" if why is None else f"autograd ({why})"
    return graphs.GraphedStep(step, run.device) if run.cfg.train.cuda_graphs else step

