"""The training step: the seed's exact step, and the general step for every option beyond it.

:class:`StepMixin` is part of :class:`gankit.train.loop.Trainer`; it lives here to keep the loop (data order,
logging, checkpoints, signals) apart from the arithmetic of one D and G update.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..augment import diff_augment, parse_policy
from ..data import to_unit_range
from ..ema import make_ema, update_ema
from ..errors import GankitError
from ..losses import check_targets
from ..models import has_batch_coupling
from ..regularizers import gradient_penalty, instance_noise, r1_penalty
from . import accel


class StepMixin:
    """D and G updates of :class:`~gankit.train.loop.Trainer` (uses its models, optimizers and generators)."""

    def _global_randn(self, n: int, dim: int) -> torch.Tensor:
        """Latents for this rank's shard of a global batch of ``n``: drawn whole on every rank, then sliced,
        so the run does not depend on the number of processes."""
        z = torch.randn(n, dim, device=self.device, generator=self.noise)
        if not self.dist.enabled:
            return z
        b = n // self.dist.world_size
        return z[self.dist.rank * b:(self.dist.rank + 1) * b]

    def _global_randint(self, high: int, n: int) -> torch.Tensor:
        y = torch.randint(0, high, (n,), device=self.device, generator=self.noise)
        if not self.dist.enabled:
            return y
        b = n // self.dist.world_size
        return y[self.dist.rank * b:(self.dist.rank + 1) * b]

    def _draw_inputs(self, k: int) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """The latents (and fake labels, for conditional models) of one step's ``k`` D batches, in the order the
        eager step draws them; the CUDA-graph step draws them ahead (graphs.py)."""
        cfg = self.cfg
        out = []
        for _ in range(k):
            z = self._global_randn(cfg.train.batch_size, cfg.model.z_dim)
            y = (self._global_randint(cfg.model.num_classes, cfg.train.batch_size) if cfg.model.cond != "none"
                 else None)
            out.append((z, y))
        return out

    # -- the loop -----------------------------------------------------------------------------
    def _d_requires_grad(self, flag: bool) -> None:
        for p in self.D.parameters():
            p.requires_grad_(flag)

    def train_step(self, batches: list[torch.Tensor], labels: list[torch.Tensor] | None = None,
                   inputs: list[tuple[torch.Tensor, torch.Tensor | None]] | None = None) -> torch.Tensor:
        """One step on ``d_steps`` uint8 real batches; returns (4,) [d_loss, g_loss, D(x), D(G(z))] on device.
        ``inputs``: the step's (z, fake labels) per batch, drawn ahead by :meth:`_draw_inputs`; None draws them
        here (the option steps interleave them with their other random numbers)."""
        if not self.plain:
            return self._train_step_zoo(batches, labels, inputs)
        if inputs is None:  # the seed's step draws nothing else from self.noise: drawing ahead is the same stream
            inputs = self._draw_inputs(len(batches))
        if self._fused is not None:
            return self._fused(batches, inputs)
        cfg = self.cfg
        B = self.local_batch
        for i, real_u8 in enumerate(batches):
            real = to_unit_range(real_u8)
            z = inputs[i][0]
            if i == len(batches) - 1:
                fake = self.G_train(z)  # G's update backpropagates through these fakes
            else:
                with torch.no_grad():
                    fake = self.G(z)
            # D sees real and fake in one pass (D has no batch-coupled layers): one kernel chain, not two.
            logits = self.D_train(torch.cat([real, fake.detach()]))
            real_logits, fake_logits = logits[:B], logits[B:]
            d_loss = self.d_loss_fn(real_logits, fake_logits, real_target=cfg.loss.real_target,
                                    fake_target=cfg.loss.fake_target)
            accel.backward_step(d_loss, self.opt_D, self.scaler_D, step=not self.simultaneous)
        # G step on the last fakes (as the seed does: same z for the D and the G update). D's weight gradients
        # are not needed here, so D's parameters are frozen for this backward pass.
        self._d_requires_grad(False)
        g_loss = self.g_loss_fn(self.D_fwd(fake))
        accel.backward_step(g_loss, self.opt_G, self.scaler_G)
        self._d_requires_grad(True)
        if self.simultaneous:  # D's update comes after G's gradient was taken through the old D
            accel.optimizer_step(self.opt_D, self.scaler_D)
        with torch.no_grad():
            return torch.stack([d_loss.detach(), g_loss.detach(), torch.sigmoid(real_logits.detach()).mean(),
                                torch.sigmoid(fake_logits.detach()).mean()])

    # -- options beyond the seed: conditioning, penalties, augmentation, noise, EMA, lr schedule --------
    def _setup_zoo(self) -> None:
        cfg, m, L = self.cfg, self.cfg.model, self.cfg.loss
        check_targets(L.name, L.real_target, L.fake_target)
        self.augment = parse_policy(L.augment)
        if self.augment and len(self.img_shape) != 3:
            raise GankitError(f"loss.augment {L.augment!r} needs images, dataset {self.data.name} holds vectors; "
                              f"set --loss.augment ''")
        if m.cond != "none":
            if self.data.labels is None:
                raise GankitError(f"model.cond {m.cond} needs labels, dataset {self.data.name} has none; "
                                  f"use model.cond none")
            if self.data.num_classes > m.num_classes:
                raise GankitError(f"dataset {self.data.name} has {self.data.num_classes} classes, model.num_classes "
                                  f"is {m.num_classes}; set --model.num_classes {self.data.num_classes}")
        if cfg.train.batch_size % m.pack:
            raise GankitError(f"train.batch_size {cfg.train.batch_size} is not a multiple of model.pack {m.pack}")
        if self.local_batch % m.g_norm_slots:
            raise GankitError(f"train.batch_size {cfg.train.batch_size} (per process {self.local_batch}) is not a "
                              f"multiple of model.g_norm_slots {m.g_norm_slots}")
        self.simultaneous = cfg.train.updates == "simultaneous"
        if self.simultaneous and cfg.train.d_steps != 1:
            raise GankitError(f"train.updates simultaneous needs train.d_steps 1, got {cfg.train.d_steps}")
        self.G_ema = make_ema(self.G) if cfg.optim.ema_beta > 0 else None
        self.two_pass = has_batch_coupling(self.D)  # batch norm in D: real and fake must not share a batch
        # The seed's exact step (single D pass) serves every run that uses none of the options below.
        self.plain = (m.cond == "none" and m.pack == 1 and not self.two_pass and not self.augment and L.gp_weight == 0
                      and L.r1_gamma == 0 and L.instance_noise == 0 and self.G_ema is None
                      and cfg.optim.lr_schedule == "constant")

    def _D(self, x: torch.Tensor, y: torch.Tensor | None, update: bool = True
           ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, class logits or None) of D on x, labels y where the model is conditional. ``update``: a pass
        of D's own update (through the DDP wrapper when distributed), else the G step's pass through bare D."""
        cond = self.cfg.model.cond
        if cond == "acgan":
            return self.D_train_aux(x) if update else self.D_fwd_aux(x)
        D = self.D_train if update else self.D_fwd
        return (D(x, y) if cond != "none" else D(x)), None

    def _d_input(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        if self.augment:
            x = diff_augment(x, self.augment, self.aux_noise)
        return instance_noise(x, sigma, self.aux_noise)

    def _train_step_zoo(self, batches: list[torch.Tensor], labels: list[torch.Tensor] | None,
                        inputs: list[tuple[torch.Tensor, torch.Tensor | None]] | None) -> torch.Tensor:
        cfg, L = self.cfg, self.cfg.loss
        B, K, cond = self.local_batch, cfg.model.num_classes, cfg.model.cond
        frac = self.step / max(self.total_steps, 1)
        if cfg.optim.lr_schedule == "linear":
            for opt, lr in ((self.opt_G, cfg.optim.g_lr), (self.opt_D, cfg.optim.d_lr)):
                for group in opt.param_groups:
                    group["lr"] = lr * self.lr_scale * (1.0 - frac)
        sigma = L.instance_noise * (1.0 - frac)
        for i, real_u8 in enumerate(batches):
            real = to_unit_range(real_u8)
            y_real = labels[i] if labels is not None else None
            if inputs is not None:
                z, y_fake = inputs[i]
            else:
                z = self._global_randn(cfg.train.batch_size, cfg.model.z_dim)
                y_fake = self._global_randint(K, cfg.train.batch_size) if cond != "none" else None
            last = i == len(batches) - 1  # G's update backpropagates through the last fakes only
            with torch.set_grad_enabled(last):
                G = self.G_train if last else self.G
                fake = G(z, y_fake) if cond != "none" else G(z)
            r_in, f_in = self._d_input(real, sigma), self._d_input(fake.detach(), sigma)
            if self.two_pass:
                (real_logits, real_aux), (fake_logits, fake_aux) = self._D(r_in, y_real), self._D(f_in, y_fake)
            else:
                y_both = torch.cat([y_real, y_fake]) if cond != "none" else None
                logits, aux = self._D(torch.cat([r_in, f_in]), y_both)
                n_real = logits.shape[0] // 2  # (B or B/pack logits per half)
                real_logits, fake_logits = logits[:n_real], logits[n_real:]
                real_aux, fake_aux = (aux[:B], aux[B:]) if aux is not None else (None, None)
            d_loss = self.d_loss_fn(real_logits, fake_logits, real_target=L.real_target, fake_target=L.fake_target)
            if real_aux is not None:
                d_loss = d_loss + L.aux_weight * (F.cross_entropy(real_aux, y_real) + F.cross_entropy(fake_aux, y_fake))
            if L.gp_weight > 0:  # conditional Ds judge the interpolates under the real labels
                d_loss = d_loss + L.gp_weight * gradient_penalty(lambda x: self._D(x, y_real)[0], r_in, f_in,
                                                                 generator=self.aux_noise)
            if L.r1_gamma > 0:
                d_loss = d_loss + 0.5 * L.r1_gamma * r1_penalty(lambda x: self._D(x, y_real)[0], r_in)
            accel.backward_step(d_loss, self.opt_D, self.scaler_D, step=not self.simultaneous)
        self._d_requires_grad(False)
        g_logits, g_aux = self._D(self._d_input(fake, sigma), y_fake, update=False)
        g_loss = self.g_loss_fn(g_logits)
        if g_aux is not None:
            g_loss = g_loss + L.aux_weight * F.cross_entropy(g_aux, y_fake)
        accel.backward_step(g_loss, self.opt_G, self.scaler_G)
        self._d_requires_grad(True)
        if self.simultaneous:  # D's update comes after G's gradient was taken through the old D
            accel.optimizer_step(self.opt_D, self.scaler_D)
        if self.G_ema is not None:
            update_ema(self.G_ema, self.G, cfg.optim.ema_beta)
        with torch.no_grad():
            return torch.stack([d_loss.detach(), g_loss.detach(), torch.sigmoid(real_logits.detach()).mean(),
                                torch.sigmoid(fake_logits.detach()).mean()])


class ForwardWithAux(torch.nn.Module):
    """Makes ACGAN's ``forward_with_aux`` the ``forward`` that DistributedDataParallel wraps."""

    def __init__(self, D: torch.nn.Module):
        super().__init__()
        self.D = D

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.D.forward_with_aux(x)
