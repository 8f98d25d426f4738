"""The training loop: owns D and G steps, logging, samples and checkpoints.

One *step* is ``train.d_steps`` D updates followed by one G update; each D update consumes one batch.
Batches are drawn by index from the resident uint8 dataset through a per-epoch permutation seeded by
(seed, epoch), so the position in an epoch is two integers and a resumed run draws the same batches.
Per-step values stay on the device and reach the host every ``train.log_every`` steps.
"""
from __future__ import annotations

import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..config import RunConfig
from ..data import Dataset, load_dataset, to_unit_range
from ..errors import GankitError
from ..images import save_grid, to_numpy_uint8
from ..augment import diff_augment, parse_policy
from ..ema import make_ema, update_ema
from ..losses import check_targets, get_loss
from ..models import build_discriminator, build_generator, has_batch_coupling
from ..regularizers import gradient_penalty, instance_noise, r1_penalty
from .checkpoint import load_checkpoint, load_state_strict, resolve_checkpoint, save_checkpoint
from . import accel
from . import distributed as dist_utils
from .rundir import StepLog, plot_losses, prepare_run_dir, versions, write_manifest

Callback = Callable[["Trainer"], None]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise GankitError(f"train.device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"train.device {name!r} requested but CUDA is not available; use --train.device cpu")
    return dev


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the ``n`` examples in ``epoch`` (0-based), a pure function of (seed, epoch)."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + epoch * 7919 + 17) % (2**63))
    return torch.randperm(n, generator=g)


@dataclass
class RunResult:
    """What :func:`gankit.train` returns."""

    run_dir: Path
    config: RunConfig
    G: torch.nn.Module
    D: torch.nn.Module
    step: int
    epoch: int
    history: dict[str, list[float]] = field(default_factory=dict)
    interrupted: bool = False

    def checkpoint(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"


class Trainer:
    """Trains one GAN described by a :class:`RunConfig` into a run folder.

    Hooks: ``trainer.add_callback("on_epoch_end" | "on_log" | "on_train_end", fn)``; each ``fn(trainer)``.
    """

    def __init__(self, cfg: RunConfig | None, out: str | Path, *, dataset: Dataset | None = None,
                 overwrite: bool = False, resume: bool = False, log: Callable[[str], None] = print):
        """``cfg`` None with ``resume`` takes the checkpoint's config; a given ``cfg`` may only change
        sections that do not alter the model or the data (``train``)."""
        self.log = log
        resume_state = None
        if resume:
            ckpt = resolve_checkpoint(out)
            resume_state = load_checkpoint(ckpt)
            saved = RunConfig.from_dict(resume_state["config"])
            if cfg is None:
                cfg = saved
            else:
                for section in ("data", "model", "loss", "optim"):
                    if getattr(cfg, section) != getattr(saved, section):
                        raise GankitError(f"--resume: the {section} settings differ from the checkpoint's; "
                                          f"only train.* may change when resuming")
            out = ckpt.parent.parent
        if cfg is None:
            raise GankitError("no config given")
        self.cfg = cfg
        self.dist = dist_utils.from_env(cfg.train.device, cfg.train.dist_timeout)
        if not self.dist.is_main:  # only rank 0 speaks and writes
            log = self.log = lambda *_: None
        self.device = resolve_device(dist_utils.device_for(self.dist, cfg.train.device))
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.deterministic:  # GPU kernels with atomics (scatter-add, some convolutions) become exact
            import os

            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        # Everything that can fail on bad input happens before the run folder is touched.
        self.data = (dataset if dataset is not None else load_dataset(cfg.data, log=log)).to(self.device)
        if cfg.train.batch_size % self.dist.world_size:
            raise GankitError(f"train.batch_size {cfg.train.batch_size} is the global batch and must divide evenly "
                              f"over {self.dist.world_size} processes")
        self.local_batch = cfg.train.batch_size // self.dist.world_size
        if len(self.data) < cfg.train.batch_size:
            raise GankitError(f"dataset {self.data.name} has {len(self.data)} images, fewer than one batch "
                              f"(train.batch_size={cfg.train.batch_size}); lower --batch-size")
        self.img_shape = self.data.shape
        torch.manual_seed(cfg.train.seed)
        self.G = build_generator(cfg.model, self.img_shape).to(self.device)
        self.D = build_discriminator(cfg.model, self.img_shape).to(self.device)
        self.d_loss_fn, self.g_loss_fn = get_loss(cfg.loss.name)
        o = cfg.optim
        self.opt_G = _adam(self.G.parameters(), o.g_lr, o)
        self.opt_D = _adam(self.D.parameters(), o.d_lr, o)
        self._setup_zoo()
        self.lr_scale = 1.0  # halved by each non-finite rollback
        self.steps_per_epoch = len(self.data) // (cfg.train.batch_size * cfg.train.d_steps)
        if self.steps_per_epoch == 0:
            raise GankitError(f"dataset {self.data.name} ({len(self.data)} images) is too small for one step of "
                              f"{cfg.train.d_steps} D batches of {cfg.train.batch_size}")
        t = cfg.train
        self.total_steps = t.steps if t.steps is not None else t.epochs * self.steps_per_epoch  # type: ignore
        self.noise = torch.Generator(device=self.device)
        self.noise.manual_seed(t.seed + 1)
        self.fixed_z = torch.randn(t.grid_size, cfg.model.z_dim, generator=torch.Generator().manual_seed(t.seed + 2))
        self.fixed_z = self.fixed_z.to(self.device)
        self.step = 0
        self._wrap_distributed()
        self.run_dir = Path(out).expanduser()
        if self.dist.is_main:
            prepare_run_dir(self.run_dir, overwrite=overwrite, resume=resume)
        self.callbacks: dict[str, list[Callback]] = {"on_epoch_end": [], "on_log": [], "on_train_end": []}
        self._stop_signal: int | None = None
        if resume_state is not None:
            self._restore(resume_state, ckpt)
        elif self.dist.is_main:
            write_manifest(self.run_dir, cfg.to_json(), {
                "seed": t.seed, "device": str(self.device), "threads": torch.get_num_threads(),
                "dataset": {"name": self.data.name, "source": self.data.source, "size": len(self.data),
                            "shape": list(self.img_shape)},
                "parameters": {"G": _count(self.G), "D": _count(self.D)},
                "steps_per_epoch": self.steps_per_epoch, "total_steps": self.total_steps,
                "world_size": self.dist.world_size, "backend": self.dist.backend or None,
            })
        self.steplog = StepLog(self.run_dir / "log.csv", start_step=self.step) if self.dist.is_main else None

    # -- distributed ------------------------------------------------------------------------
    def _wrap_distributed(self) -> None:
        """G_train / D_train: the modules the steps call for updates (DDP wrappers under torchrun).

        D's update passes go through D_train (gradients all-reduced); the G step calls the bare D, whose weight
        gradients it does not need. Only the fakes that G's update backpropagates through go through G_train.
        """
        self.G_train, self.D_train, self.D_train_aux = self.G, self.D, None
        t = self.cfg.train
        if self.cfg.model.cond == "acgan":
            self.D_train_aux = _ForwardWithAux(self.D)
        if not self.dist.enabled:
            self.aux_noise = self.noise
            self._accelerate()
            return
        from torch.nn.parallel import DistributedDataParallel as DDP

        if t.sync_bn:
            if self.device.type != "cuda":
                raise GankitError("train.sync_bn needs CUDA (SyncBatchNorm does not run on CPU); leave it off to "
                                  "keep per-rank batch statistics")
            self.G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
            self.D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        ids = [self.device.index] if self.device.type == "cuda" else None
        self.G_train = DDP(self.G, device_ids=ids)
        if self.D_train_aux is not None:
            self.D_train_aux = DDP(self.D_train_aux, device_ids=ids)
        else:
            self.D_train = DDP(self.D, device_ids=ids)
        # augmentation, penalties and instance noise draw per-rank randomness; z and labels stay global
        self.aux_noise = torch.Generator(device=self.device)
        self.aux_noise.manual_seed((t.seed + 1) * 1_000_003 + self.dist.rank)
        self._accelerate()

    def _accelerate(self) -> None:
        """Mixed precision, channels-last and torch.compile, as train.precision/channels_last/compile say."""
        t, L = self.cfg.train, self.cfg.loss
        dtype = accel.check(t.precision, self.device, L.gp_weight > 0 or L.r1_gamma > 0)
        if t.channels_last and len(self.img_shape) == 3:
            accel.channels_last(self.G)
            accel.channels_last(self.D)
        self.D_fwd, self.D_fwd_aux = self.D, (self.D.forward_with_aux if self.D_train_aux is not None else None)
        self.G_train = accel.wrap(self.G_train, self.device, dtype, t.compile)
        self.D_train = accel.wrap(self.D_train, self.device, dtype, t.compile)
        self.D_fwd = accel.wrap(self.D, self.device, dtype, t.compile)
        if self.D_train_aux is not None:
            self.D_train_aux = accel.wrap(self.D_train_aux, self.device, dtype, t.compile)
            self.D_fwd_aux = accel.wrap(_ForwardWithAux(self.D), self.device, dtype, t.compile)
        self.scaler_D = accel.grad_scaler(t.precision == "fp16", self.device)
        self.scaler_G = accel.grad_scaler(t.precision == "fp16", self.device)

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

    # -- hooks --------------------------------------------------------------------------------
    def add_callback(self, event: str, fn: Callback) -> None:
        if event not in self.callbacks:
            raise GankitError(f"unknown callback event {event!r}; choose one of: {', '.join(self.callbacks)}")
        self.callbacks[event].append(fn)

    def _fire(self, event: str) -> None:
        if not self.dist.is_main:  # hooks write files and logs: rank 0 only
            return
        for fn in self.callbacks[event]:
            fn(self)

    # -- state --------------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self.step // self.steps_per_epoch

    def state_dict(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), "noise": self.noise.get_state(), **_host_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "config": self.cfg.to_dict(), "img_shape": list(self.img_shape), "num_classes": self.data.num_classes,
            "dataset": self.data.name, "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(), "step": self.step,
            "epoch": self.epoch, "steps_per_epoch": self.steps_per_epoch, "rng": rng, "versions": versions(),
            "lr_scale": self.lr_scale,
            **({"scaler_D": self.scaler_D.state_dict(), "scaler_G": self.scaler_G.state_dict()}
               if self.scaler_D is not None else {}),
            **({"G_ema": self.G_ema.state_dict()} if self.G_ema is not None else {}),
        }

    def _restore(self, state: dict[str, Any], path: Path) -> None:
        if list(state["img_shape"]) != list(self.img_shape):
            raise GankitError(f"{path}: checkpoint was trained on images of shape {state['img_shape']}, the data "
                              f"has {list(self.img_shape)}")
        load_state_strict(self.G, state["G"], "G", path)
        load_state_strict(self.D, state["D"], "D", path)
        if self.G_ema is not None:
            load_state_strict(self.G_ema, state.get("G_ema", state["G"]), "G_ema", path)
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.step = int(state["step"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        if self.scaler_D is not None and "scaler_D" in state:
            self.scaler_D.load_state_dict(state["scaler_D"])
            self.scaler_G.load_state_dict(state["scaler_G"])
        torch.set_rng_state(state["rng"]["torch"])
        self.noise.set_state(state["rng"]["noise"])
        _set_host_rng_state(state["rng"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.log(f"resuming {self.run_dir} at step {self.step} (epoch {self.epoch}) of {self.total_steps}")

    def save(self, name: str = "last.pt") -> Path:
        if not self.dist.is_main:
            return self.run_dir / "checkpoints" / name
        return save_checkpoint(self.run_dir / "checkpoints" / name, self.state_dict())

    # -- sampling -----------------------------------------------------------------------------
    @torch.no_grad()
    def sample_fixed(self, z: torch.Tensor | None = None) -> torch.Tensor:
        """G_ema (when kept, else G) in eval mode on the fixed z (and fixed labels, class = index mod K)."""
        G = self.G_ema if self.G_ema is not None else self.G
        z = self.fixed_z if z is None else z
        was_training = G.training
        G.eval()
        if self.cfg.model.cond != "none":
            x = G(z, torch.arange(z.shape[0], device=self.device) % self.cfg.model.num_classes)
        else:
            x = G(z)
        G.train(was_training)
        return x

    def write_grid(self, name: str) -> Path:
        if not self.dist.is_main:
            return self.run_dir / "samples" / name
        if len(self.img_shape) == 1:  # points of a toy mixture: a scatter plot of 2,500 fixed-z samples
            from ..data.toy import save_points_png

            g = torch.Generator().manual_seed(self.cfg.train.seed + 2)
            z = torch.randn(2500, self.cfg.model.z_dim, generator=g)
            return save_points_png(self.sample_fixed(z.to(self.device)), self.run_dir / "samples" / name)
        return save_grid(to_numpy_uint8(self.sample_fixed()), self.run_dir / "samples" / name)

    # -- the loop -----------------------------------------------------------------------------
    def _d_requires_grad(self, flag: bool) -> None:
        for p in self.D.parameters():
            p.requires_grad_(flag)

    def train_step(self, batches: list[torch.Tensor], labels: list[torch.Tensor] | None = None) -> torch.Tensor:
        """One step on ``d_steps`` uint8 real batches; returns (4,) [d_loss, g_loss, D(x), D(G(z))] on device."""
        if not self.plain:
            return self._train_step_zoo(batches, labels)
        cfg = self.cfg
        B = self.local_batch
        for i, real_u8 in enumerate(batches):
            real = to_unit_range(real_u8)
            z = self._global_randn(cfg.train.batch_size, cfg.model.z_dim)
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
            accel.backward_step(d_loss, self.opt_D, self.scaler_D)
        # G step on the last fakes (as the seed does: same z for the D and the G update). D's weight gradients
        # are not needed here, so D's parameters are frozen for this backward pass.
        self._d_requires_grad(False)
        g_loss = self.g_loss_fn(self.D_fwd(fake))
        accel.backward_step(g_loss, self.opt_G, self.scaler_G)
        self._d_requires_grad(True)
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

    def _train_step_zoo(self, batches: list[torch.Tensor], labels: list[torch.Tensor] | None) -> torch.Tensor:
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
            accel.backward_step(d_loss, self.opt_D, self.scaler_D)
        self._d_requires_grad(False)
        g_logits, g_aux = self._D(self._d_input(fake, sigma), y_fake, update=False)
        g_loss = self.g_loss_fn(g_logits)
        if g_aux is not None:
            g_loss = g_loss + L.aux_weight * F.cross_entropy(g_aux, y_fake)
        accel.backward_step(g_loss, self.opt_G, self.scaler_G)
        self._d_requires_grad(True)
        if self.G_ema is not None:
            update_ema(self.G_ema, self.G, cfg.optim.ema_beta)
        with torch.no_grad():
            return torch.stack([d_loss.detach(), g_loss.detach(), torch.sigmoid(real_logits.detach()).mean(),
                                torch.sigmoid(fake_logits.detach()).mean()])

    def _install_signal_handlers(self) -> dict[int, Any]:
        old = {}

        def handler(signum, _frame):
            if self._stop_signal is not None:  # second signal: give up waiting
                raise KeyboardInterrupt
            self._stop_signal = signum
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                old[s] = signal.signal(s, handler)
            except ValueError:  # not in the main thread
                pass
        return old

    def _stopping(self) -> bool:
        # Under torchrun every rank must stop at the same step: the signal only counts once the ranks have
        # agreed on it at a log flush (a rank leaving early would leave the others waiting in an all-reduce).
        return self._stop_agreed if self.dist.enabled else self._stop_signal is not None

    def _sync_flush(self, vals: torch.Tensor) -> torch.Tensor:
        """Average the buffered per-step values over the ranks and agree on a pending stop signal."""
        if not self.dist.enabled:
            return vals
        flag = torch.tensor([1.0 if self._stop_signal is not None else 0.0], device=vals.device)
        packed = torch.cat([vals.flatten(), flag])
        torch.distributed.all_reduce(packed)
        self._stop_agreed = bool(packed[-1].item() > 0)
        if self._stop_agreed and self._stop_signal is None:
            self._stop_signal = signal.SIGTERM  # a peer was signalled
        return packed[:-1].view_as(vals) / self.dist.world_size

    def fit(self) -> RunResult:
        """Train to ``total_steps``; returns a :class:`RunResult`. Ctrl-C/SIGTERM stop cleanly with a checkpoint."""
        try:
            return self._fit()
        except RuntimeError as e:
            if self.dist.enabled:
                raise dist_utils.failure(self.dist, e) from None
            raise
        finally:
            dist_utils.shutdown(self.dist)

    def _fit(self) -> RunResult:
        cfg, t = self.cfg, self.cfg.train
        B, k = t.batch_size, t.d_steps
        lo, hi = self.dist.rank * self.local_batch, (self.dist.rank + 1) * self.local_batch  # this rank's shard
        buf = torch.zeros(t.log_every, 4, device=self.device)
        buf_steps: list[tuple[int, int]] = []
        history: dict[str, list[float]] = {"step": [], "d_loss": [], "g_loss": [], "d_real": [], "d_fake": []}
        bar = _progress(t.progress and self.dist.is_main, self.total_steps, self.step)
        old_handlers = self._install_signal_handlers()
        perm_epoch, perm = -1, None
        t0, imgs0 = time.perf_counter(), 0
        self._good, self._retries, self._stop_agreed = self._snapshot(), 0, False
        try:
            while self.step < self.total_steps and not self._stopping():
                epoch, pos = divmod(self.step, self.steps_per_epoch)
                if epoch != perm_epoch:
                    perm = epoch_permutation(len(self.data), t.seed, epoch).to(self.device)
                    perm_epoch = epoch
                first = pos * B * k
                idx = [perm[first + i * B + lo: first + i * B + hi] for i in range(k)]
                batches = [self.data.images[j] for j in idx]
                labels = [self.data.labels[j] for j in idx] if cfg.model.cond != "none" else None
                buf[len(buf_steps)] = self.train_step(batches, labels)
                self.step += 1
                buf_steps.append((self.step, epoch + 1))
                imgs0 += B * k
                epoch_done = self.step % self.steps_per_epoch == 0
                if len(buf_steps) == t.log_every or epoch_done or self.step == self.total_steps:
                    vals = self._sync_flush(buf[: len(buf_steps)]).cpu().tolist()  # the only host sync
                    bad = self._first_nonfinite(vals, buf_steps)
                    if bad is not None:
                        self._rollback(bad)
                        buf_steps, perm_epoch = [], -1
                        continue
                    rows = [(s, e, *v) for (s, e), v in zip(buf_steps, vals)]
                    if self.steplog is not None:
                        self.steplog.append(rows)
                    for r in rows:
                        for key, v in zip(("step", "d_loss", "g_loss", "d_real", "d_fake"), (r[0], *r[2:])):
                            history[key].append(v)
                    elapsed = time.perf_counter() - t0
                    last = rows[-1]
                    self.last_stats = {"step": last[0], "epoch": last[1], "d_loss": last[2], "g_loss": last[3],
                                       "d_real": last[4], "d_fake": last[5], "img_per_s": imgs0 / max(elapsed, 1e-9)}
                    bar.update(len(rows), self.last_stats)
                    buf_steps = []
                    self._good = self._snapshot()
                    self._fire("on_log")
                if epoch_done:
                    self._end_of_epoch(self.step // self.steps_per_epoch)
        finally:
            for s, h in old_handlers.items():
                signal.signal(s, h)
            bar.close()
        interrupted = self._stop_signal is not None
        if buf_steps and self.steplog is not None:  # flush what an interruption left in the buffer
            vals = buf[: len(buf_steps)].cpu().tolist()
            self.steplog.append([(s, e, *v) for (s, e), v in zip(buf_steps, vals)])
        self.save("last.pt")
        if interrupted:
            name = signal.Signals(self._stop_signal).name
            if self.dist.is_main:
                print(f"gankit: {name} received: stopped at step {self.step}, checkpoint saved; resume with: "
                      f"gankit train --resume {self.run_dir}", file=sys.stderr, flush=True)
        else:
            self.write_grid("final.png")
            if self.dist.is_main:
                plot_losses(self.run_dir / "log.csv", self.run_dir / "loss.png")
        self._fire("on_train_end")
        return RunResult(self.run_dir, self.cfg, self.G, self.D, self.step, self.epoch, history, interrupted)

    def _end_of_epoch(self, epoch: int) -> None:
        t = self.cfg.train
        if t.sample_every and epoch % t.sample_every == 0:
            self.write_grid(f"epoch_{epoch:04d}.png")
        self.save("last.pt")
        if t.checkpoint_every and epoch % t.checkpoint_every == 0:
            self.save(f"epoch_{epoch:04d}.pt")
        self._fire("on_epoch_end")

    def _first_nonfinite(self, vals: list[list[float]], steps: list[tuple[int, int]]) -> tuple[int, list] | None:
        for (s, _), v in zip(steps, vals):
            if not all(math.isfinite(x) for x in v):
                return s, v
        return None

    def _snapshot(self) -> dict[str, Any]:
        """The last known-good training state, in memory (cheap next to ``log_every`` steps)."""
        import copy

        mods = {"G": self.G, "D": self.D, "opt_G": self.opt_G, "opt_D": self.opt_D}
        if self.G_ema is not None:
            mods["G_ema"] = self.G_ema
        snap = {k: copy.deepcopy(m.state_dict()) for k, m in mods.items()}
        snap.update(step=self.step, noise=self.noise.get_state(), torch=torch.get_rng_state())
        return snap

    def _rollback(self, bad: tuple[int, list]) -> None:
        """Non-finite loss: restore the last good state and halve the learning rates, a bounded number of
        times; then stop with a message saying what happened and where."""
        s, v = bad
        t = self.cfg.train
        if self._retries >= t.nonfinite_retries:
            self.save(f"nonfinite_step_{s}.pt")
            raise GankitError(f"non-finite loss at step {s} (d_loss={v[0]}, g_loss={v[1]}) after "
                              f"{self._retries} rollbacks with halved learning rates; the state is in "
                              f"{self.run_dir / 'checkpoints'}; try a lower learning rate or another loss")
        self._retries += 1
        snap = self._good
        for k in ("G", "D", "opt_G", "opt_D", "G_ema"):
            if k in snap:
                getattr(self, k).load_state_dict(snap[k])
        self.step = snap["step"]
        self.noise.set_state(snap["noise"])
        torch.set_rng_state(snap["torch"])
        self.lr_scale *= 0.5
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] *= 0.5
        self.log(f"non-finite loss at step {s} (d_loss={v[0]:.4g}, g_loss={v[1]:.4g}): rolled back to step "
                 f"{self.step} and halved the learning rates (retry {self._retries} of {t.nonfinite_retries})")


def _adam(params, lr: float, o) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all tensors: 2.6x faster than foreach for the seed on CPU),
    falling back to foreach where this torch build has no fused Adam for the device."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), eps=o.eps, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), eps=o.eps, foreach=True)


class _ForwardWithAux(torch.nn.Module):
    """Makes ACGAN's ``forward_with_aux`` the ``forward`` that DistributedDataParallel wraps."""

    def __init__(self, D: torch.nn.Module):
        super().__init__()
        self.D = D

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.D.forward_with_aux(x)


def _host_rng_state() -> dict[str, Any]:
    """Python's and numpy's global RNG states as plain data (gankit draws nothing from them, user hooks may)."""
    import random

    import numpy as np

    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(words), gauss],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]}


def _set_host_rng_state(rng: dict[str, Any]) -> None:
    import random

    import numpy as np

    if "python" in rng:
        version, words, gauss = rng["python"]
        random.setstate((version, tuple(words), gauss))
    if "numpy" in rng:
        kind, keys, pos, has_gauss, cached = rng["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


class _progress:
    """tqdm on a terminal; otherwise a plain line every ~10 % of the run."""

    def __init__(self, enabled: bool, total: int, initial: int):
        self.bar = None
        self.enabled = enabled
        self.total = total
        self.done = initial
        self.next_print = initial
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)
            except ImportError:
                self.bar = None

    def update(self, n: int, s: dict[str, float]) -> None:
        self.done += n
        text = (f"ep {s['epoch']:.0f} D {s['d_loss']:.3f} G {s['g_loss']:.3f} D(x) {s['d_real']:.2f} "
                f"D(G(z)) {s['d_fake']:.2f} {s['img_per_s']:.0f} img/s")
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(n)
        elif self.enabled and self.done >= self.next_print:
            print(f"step {self.done}/{self.total} {text}", file=sys.stderr, flush=True)
            self.next_print = self.done + max(1, self.total // 10)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
