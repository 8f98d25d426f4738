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

from ..config import RunConfig
from ..data import Dataset, check_data, load_dataset
from .. import memory
from ..device import resolve_device as _resolve_device
from ..errors import GankitError, option
from ..images import save_grid, to_numpy_uint8
from ..losses import get_loss
from ..models import build_discriminator, build_generator, check_model
from . import accel
from . import distributed as dist_utils
from . import budget, fused, graphs
from .checkpoint import (
    host_rng_state,
    load_checkpoint,
    load_state_strict,
    resolve_checkpoint,
    save_checkpoint,
    set_host_rng_state,
)
from .rundir import (
    Progress,
    StepLog,
    check_checkpoint_of_run,
    check_out_free,
    checkpoint_home,
    plot_losses,
    prepare_run_dir,
    resume_elsewhere,
    resume_in_place,
    versions,
    write_manifest,
)
from .steps import ForwardWithAux, StepMixin
from . import threads
from .threads import ThreadTuner

Callback = Callable[["Trainer"], None]


def resolve_device(name: str) -> torch.device:
    return _resolve_device(name, "train.device")


def check_config(cfg: RunConfig, data: bool = True) -> None:
    """The checks of a run's config that need no data, device or file: the dataset's name (``data`` False: an
    in-memory dataset replaces it), the model's cross-field rules and the loss's name. The Trainer runs them
    first; ``gankit train --dry-run`` runs them alone, so a dry run accepts what the real run accepts."""
    if data:
        check_data(cfg.data)
    check_model(cfg.model)
    get_loss(cfg.loss.name)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the ``n`` examples in ``epoch`` (0-based), a pure function of (seed, epoch)."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + epoch * 7919 + 17) % (2**63))
    return torch.randperm(n, generator=g)


def install_stop_handlers(owner: Any) -> dict[int, Any]:
    """SIGINT/SIGTERM set ``owner._stop_signal`` (the loop stops after the current step and saves); a second
    signal raises KeyboardInterrupt. Returns the handlers replaced, for ``signal.signal`` to restore."""
    old = {}

    def handler(signum, _frame):
        if owner._stop_signal is not None:  # second signal: give up waiting
            raise KeyboardInterrupt
        owner._stop_signal = signum
    for s in (signal.SIGINT, signal.SIGTERM):
        try:
            old[s] = signal.signal(s, handler)
        except ValueError:  # not in the main thread
            pass
    return old


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
    interrupted: bool = False  # stopped by Ctrl-C/SIGTERM
    stopped_by_time: bool = False  # stopped by train.time_limit before total_steps (resume to continue)

    def checkpoint(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"


class Trainer(StepMixin):
    """Trains one GAN described by a :class:`RunConfig` into a run folder.

    Hooks: ``trainer.add_callback("on_epoch_end" | "on_log" | "on_train_end", fn)``; each ``fn(trainer)``.
    """

    def __init__(self, cfg: RunConfig | None, out: str | Path, *, dataset: Dataset | None = None,
                 overwrite: bool = False, resume: bool | str | Path = False, log: Callable[[str], None] = print):
        """``resume`` True continues the run in ``out`` (a run folder, or a checkpoint in its ``checkpoints/``);
        a path (a checkpoint file or run folder) continues from there into the new folder ``out``, or in place
        when ``out`` is that checkpoint's run folder. ``cfg`` None with ``resume`` takes the checkpoint's config;
        a given ``cfg`` may only change sections that do not alter the model or the data (``train``)."""
        self.log = log
        resume_state, resumed_from, in_place = None, None, False
        if resume:
            source = Path(out if resume is True else resume).expanduser()
            ckpt = resolve_checkpoint(source)
            resume_state = load_checkpoint(ckpt)
            saved = RunConfig.from_dict(resume_state["config"])
            home = checkpoint_home(source, ckpt)
            in_place = resume is True or (home is not None and Path(out).expanduser().resolve() == home.resolve())
            if in_place:
                if home is None:
                    raise GankitError(f"{ckpt} is not in a run folder's checkpoints/; to continue from it, give "
                                      f"a new run folder: {resume_elsewhere(ckpt)}")
                check_checkpoint_of_run(ckpt, saved, home)  # another run's checkpoint copied over last.pt
                out = home
            else:
                resumed_from = ckpt.resolve()
            if cfg is None:  # the budget was the earlier invocation's: a resume gets its own, or none
                cfg = saved.with_overrides({"train.time_limit": None})
            else:
                for section in ("preset", "data", "model", "loss", "optim"):
                    if getattr(cfg, section) != getattr(saved, section):
                        what = (f"preset ({cfg.preset}) differs" if section == "preset"
                                else f"{section} settings differ")
                        raise GankitError(f"{option('--resume', 'resume')}: the {what} from the checkpoint's; "
                                          f"only train.* may change when resuming")
        if cfg is None:
            raise GankitError("no config given")
        check_config(cfg, data=dataset is None)
        self.cfg = cfg
        self.dist = dist_utils.from_env(cfg.train.device, cfg.train.dist_timeout)
        if not self.dist.is_main:  # only rank 0 speaks and writes
            log = self.log = lambda *_: None
        self.device = resolve_device(dist_utils.device_for(self.dist, cfg.train.device))
        saved_threads = resume_state.get("threads") if resume_state is not None else None
        self.threads = threads.resolve(cfg.train.threads, saved_threads if isinstance(saved_threads, int) else None,
                                       log)
        torch.set_num_threads(self.threads)  # fixed for the run: CPU results depend on it (threads.py)
        if self.device.type == "cuda":  # process-wide switch: each run sets it as its config says
            torch.backends.cuda.matmul.allow_tf32 = cfg.train.tf32
        elif cfg.train.tf32:
            raise GankitError(f"train.tf32 needs a CUDA device, this run uses {self.device}")
        if cfg.train.deterministic:  # GPU kernels with atomics (scatter-add, some convolutions) become exact
            import os

            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        # Everything that can fail on bad input happens before the run folder is touched; a taken run folder
        # fails before the data is loaded (an MNIST download takes a while).
        if self.dist.is_main:
            check_out_free(Path(out), overwrite, in_place)
        self.data = (dataset if dataset is not None else load_dataset(cfg.data, log=log, model=cfg.preset))
        self.data = self.data.to(self.device)
        if cfg.train.batch_size % self.dist.world_size:
            raise GankitError(f"train.batch_size {cfg.train.batch_size} is the global batch and must divide evenly "
                              f"over {self.dist.world_size} processes")
        self.local_batch = cfg.train.batch_size // self.dist.world_size
        if len(self.data) < cfg.train.batch_size:
            raise GankitError(f"dataset {self.data.name} has {len(self.data)} images, fewer than one batch "
                              f"(train.batch_size={cfg.train.batch_size}); lower --batch-size")
        self.img_shape = self.data.shape
        memory.check_training_fits(cfg, self.img_shape, self.device)  # before G and D are allocated
        torch.manual_seed(cfg.train.seed)
        self.G = build_generator(cfg.model, self.img_shape).to(self.device)
        self.D = build_discriminator(cfg.model, self.img_shape).to(self.device)
        if cfg.train.adaptive_threads:
            threads.check_adaptive(self.device, self.dist.enabled, self.G, self.D)
        self.d_loss_fn, self.g_loss_fn = get_loss(cfg.loss.name)
        o = cfg.optim
        self.opt_G = accel.adam(self.G.parameters(), o.g_lr, o)
        self.opt_D = accel.adam(self.D.parameters(), o.d_lr, o)
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
        self._fused_why = fused.eligible(self)
        self._fused = fused.FusedMLPStep(self) if self._fused_why is None else None
        self._graphed: graphs.GraphedStep | None = None
        if t.cuda_graphs:
            graphs.check(cfg, self.device, self.dist.enabled)
            self._graphed = graphs.GraphedStep(self)
        graphs.set_capturable((self.opt_G, self.opt_D), self._graphed is not None)
        self.run_dir = Path(out).expanduser()
        # rank 0 locks the folder (held until fit ends) before it touches anything there
        self._run_lock = prepare_run_dir(self.run_dir, overwrite, in_place) if self.dist.is_main else None
        self.callbacks: dict[str, list[Callback]] = {"on_epoch_end": [], "on_log": [], "on_train_end": []}
        self._stop_signal: int | None = None
        self._stop_requested = False
        self._budget = budget.TimeBudget(None)  # fit() starts train.time_limit's clock
        self._stop_agreed = self._time_agreed = False
        self._fit_step0 = 0
        if resume_state is not None:
            self._restore(resume_state, ckpt)
        if self.dist.is_main:  # the run as it is now (a resume may change train.*), and this command line
            write_manifest(self.run_dir, cfg.to_json(), {
                "seed": t.seed, "device": str(self.device), "threads": self.threads,
                "threads_adaptive": t.adaptive_threads,
                "dataset": {"name": self.data.name, "source": self.data.source, "size": len(self.data),
                            "shape": list(self.img_shape)},
                "parameters": {"G": _count(self.G), "D": _count(self.D)},
                "steps_per_epoch": self.steps_per_epoch, "total_steps": self.total_steps,
                "world_size": self.dist.world_size, "backend": self.dist.backend or None,
                "step": "fused-mlp" if self._fused is not None else f"autograd ({self._fused_why})",
                "cuda_graphs": self._graphed is not None,
            }, resumed_at=self.step if resume_state is not None else None, resumed_from=resumed_from)
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
            self.D_train_aux = ForwardWithAux(self.D)
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
            self.D_fwd_aux = accel.wrap(ForwardWithAux(self.D), self.device, dtype, t.compile)
        self.scaler_D = accel.grad_scaler(t.precision == "fp16", self.device)
        self.scaler_G = accel.grad_scaler(t.precision == "fp16", self.device)

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
        rng = {"torch": torch.get_rng_state(), "noise": self.noise.get_state(), **host_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "config": self.cfg.to_dict(), "img_shape": list(self.img_shape), "num_classes": self.data.num_classes,
            "dataset": self.data.name, "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(), "step": self.step,
            "epoch": self.epoch, "steps_per_epoch": self.steps_per_epoch, "rng": rng, "versions": versions(),
            "lr_scale": self.lr_scale, "threads": self.threads,
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
        graphs.set_capturable((self.opt_G, self.opt_D), self._graphed is not None)
        self.step = int(state["step"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        if self.scaler_D is not None and "scaler_D" in state:
            self.scaler_D.load_state_dict(state["scaler_D"])
            self.scaler_G.load_state_dict(state["scaler_G"])
        torch.set_rng_state(state["rng"]["torch"])
        self.noise.set_state(state["rng"]["noise"])
        set_host_rng_state(state["rng"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.log(f"resuming {self.run_dir} at step {self.step} (epoch {self.epoch}) of {self.total_steps}")

    def save(self, name: str = "last.pt", extra: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint; a state holding NaN/inf is never written (the previous file stays)."""
        path = self.run_dir / "checkpoints" / name
        if not self.dist.is_main:
            return path
        if not self._state_finite():
            raise GankitError(f"refusing to write {path}: the weights or optimizer state hold NaN/inf at step "
                              f"{self.step}; the previous checkpoint is unchanged")
        return save_checkpoint(path, {**self.state_dict(), **(extra or {})})

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

    def _install_signal_handlers(self) -> dict[int, Any]:
        return install_stop_handlers(self)

    def stop(self) -> None:
        """Ask :meth:`fit` to finish after the current step (from a callback); the run ends normally."""
        self._stop_requested = True

    def _stopping(self) -> bool:
        if self._stop_requested:
            return True
        # Under torchrun every rank must stop at the same step: a signal or a spent time budget only counts once
        # the ranks have agreed on it at a log flush (a rank leaving early would leave the others waiting in an
        # all-reduce).
        if self.dist.enabled:
            return self._stop_agreed or self._time_agreed
        # one clock read per step; at least one step per invocation, so a resumed run always moves on
        return self._stop_signal is not None or (self.step > self._fit_step0 and self._budget.spent())

    def _sync_flush(self, vals: torch.Tensor) -> torch.Tensor:
        """Average the buffered per-step values over the ranks and agree on a pending stop signal or budget."""
        if not self.dist.enabled:
            return vals
        flags = torch.tensor([1.0 if self._stop_signal is not None else 0.0, 1.0 if self._budget.spent() else 0.0],
                             device=vals.device)
        packed = torch.cat([vals.flatten(), flags])
        torch.distributed.all_reduce(packed)
        self._stop_agreed = bool(packed[-2].item() > 0)
        self._time_agreed = bool(packed[-1].item() > 0)
        if self._stop_agreed and self._stop_signal is None:
            self._stop_signal = signal.SIGTERM  # a peer was signalled
        return packed[:-2].view_as(vals) / self.dist.world_size

    def fit(self) -> RunResult:
        """Train to ``total_steps``; returns a :class:`RunResult`. Ctrl-C/SIGTERM stop cleanly with a checkpoint."""
        ok = False
        try:
            result = self._fit()
            ok = True
            return result
        except RuntimeError as e:
            if self.dist.enabled:
                raise dist_utils.failure(self.dist, e) from None
            raise
        finally:
            dist_utils.shutdown(self.dist, barrier=ok)
            self.close()

    def close(self) -> None:
        """Give the run folder back (its lock); :meth:`fit` does at its end."""
        if self._run_lock is not None:
            self._run_lock.release()

    def _fit(self) -> RunResult:
        cfg, t = self.cfg, self.cfg.train
        B, k = t.batch_size, t.d_steps
        lo, hi = self.dist.rank * self.local_batch, (self.dist.rank + 1) * self.local_batch  # this rank's shard
        buf = torch.zeros(t.log_every, 4, device=self.device)
        buf_steps: list[tuple[int, int]] = []
        history: dict[str, list[float]] = {"step": [], "d_loss": [], "g_loss": [], "d_real": [], "d_fake": []}
        bar = Progress(t.progress and self.dist.is_main, self.total_steps, self.step)
        old_handlers = self._install_signal_handlers()
        perm_epoch, perm = -1, None
        t0, imgs0 = time.perf_counter(), 0
        if not self._state_finite():
            where = (f"; resume from an earlier checkpoint in {self.run_dir / 'checkpoints'}" if self.step
                     else "")
            raise GankitError(f"the weights or optimizer state hold NaN/inf at step {self.step}, before training "
                              f"(a damaged checkpoint or a hook?){where}")
        self._good, self._retries, self._stop_agreed, self._time_agreed = self._snapshot(), 0, False, False
        self._budget = budget.TimeBudget(t.time_limit)  # per invocation: counts from here
        self._fit_step0 = self.step
        self._halt: tuple[int, list, str] | None = None  # retries spent: replay to just before this step, then stop
        # train.adaptive_threads on CPU: adapt the thread count to the machine's load (not reproducible; threads.py)
        tuner = ThreadTuner() if t.adaptive_threads else None  # checked in __init__: CPU, one process, MLP
        tuner = tuner if tuner is not None and tuner.enabled else None
        if tuner is not None:
            tuner.start()
        threads_before = torch.get_num_threads()
        step_fn = self._graphed if self._graphed is not None else self.train_step
        try:
            while self.step < self.total_steps and not self._stopping():
                if self._halt is not None and self.step >= self._halt[0] - 1:
                    self._fail_nonfinite(buf[: len(buf_steps)].cpu().tolist(), buf_steps)
                epoch, pos = divmod(self.step, self.steps_per_epoch)
                if epoch != perm_epoch:
                    perm = epoch_permutation(len(self.data), t.seed, epoch).to(self.device)
                    perm_epoch = epoch
                first = pos * B * k
                idx = [perm[first + i * B + lo: first + i * B + hi] for i in range(k)]
                # index_select: ~8x faster than advanced indexing for a batch of uint8 rows on CPU
                batches = [torch.index_select(self.data.images, 0, j) for j in idx]
                labels = ([torch.index_select(self.data.labels, 0, j) for j in idx] if cfg.model.cond != "none"
                          else None)
                buf[len(buf_steps)] = step_fn(batches, labels)
                self.step += 1
                buf_steps.append((self.step, epoch + 1))
                imgs0 += B * k
                epoch_done = self.step % self.steps_per_epoch == 0
                if len(buf_steps) == t.log_every or epoch_done or self.step == self.total_steps:
                    if tuner is not None:
                        tuner.window_done(len(buf_steps))
                    vals = self._sync_flush(buf[: len(buf_steps)]).cpu().tolist()  # the only host sync
                    bad = self._first_nonfinite(vals, buf_steps)
                    if bad is None and not self._state_finite():  # the window's last update broke the weights
                        bad = (buf_steps[-1][0], vals[-1], "weights")
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
                if tuner is not None and not buf_steps:  # time the next window from here, after the I/O
                    tuner.start()
        finally:
            for s, h in old_handlers.items():
                signal.signal(s, h)
            bar.close()
            torch.set_num_threads(threads_before)
        interrupted = self._stop_signal is not None
        # the budget, not a stop() hook or a signal, ended the run before its last step
        by_time = (not interrupted and not self._stop_requested and self.step < self.total_steps
                   and (self._budget.reached or self._time_agreed))
        if buf_steps:  # flush what an interruption left in the buffer, unless it went non-finite
            vals = buf[: len(buf_steps)].cpu().tolist()
            if self._first_nonfinite(vals, buf_steps) is None and self._state_finite():
                if self.steplog is not None:
                    self.steplog.append([(s, e, *v) for (s, e), v in zip(buf_steps, vals)])
            else:  # never save a non-finite state: back to the last good one; resuming reruns those steps
                self._restore_snapshot(self._good)
                self.log(f"the last {len(buf_steps)} steps went non-finite: saving the state of step {self.step}")
        self.save("last.pt")
        if interrupted:
            name = signal.Signals(self._stop_signal).name
            if self.dist.is_main:
                print(f"gankit: {name} received: stopped at step {self.step}, checkpoint saved; resume with: "
                      f"{resume_in_place(self.run_dir)}", file=sys.stderr, flush=True)
        else:  # a budget stop ends like a finished run (grid, plot), which a resume later overwrites
            self.write_grid("final.png")
            if self.dist.is_main:
                plot_losses(self.run_dir / "log.csv", self.run_dir / "loss.png")
            if by_time:
                self.log(budget.stop_line(t.time_limit, self.step, self.total_steps, resume_in_place(self.run_dir),
                                          budget.unfinished_schedules(cfg)))
        self._fire("on_train_end")
        return RunResult(self.run_dir, self.cfg, self.G, self.D, self.step, self.epoch, history, interrupted,
                         by_time)

    def _end_of_epoch(self, epoch: int) -> None:
        t = self.cfg.train
        if t.sample_every and epoch % t.sample_every == 0:
            self.write_grid(f"epoch_{epoch:04d}.png")
        # epoch_N.pt before last.pt: a kill between the two leaves last.pt at the previous epoch, so a resume
        # runs epoch N again and writes the same epoch_N.pt; the other order would skip it for good
        if t.checkpoint_every and epoch % t.checkpoint_every == 0:
            self.save(f"epoch_{epoch:04d}.pt")
        self.save("last.pt")
        self._fire("on_epoch_end")

    def _first_nonfinite(self, vals: list[list[float]], steps: list[tuple[int, int]]
                         ) -> tuple[int, list, str] | None:
        for (s, _), v in zip(steps, vals):
            if not all(math.isfinite(x) for x in v):
                return s, v, "loss"
        return None

    def _state_tensors(self) -> list[torch.Tensor]:
        """Every floating tensor a checkpoint holds: weights, buffers, G_ema, the optimizers' moments."""
        mods = [self.G, self.D] + ([self.G_ema] if self.G_ema is not None else [])
        out = [t for m in mods for t in m.state_dict().values() if t.is_floating_point()]
        for opt in (self.opt_G, self.opt_D):
            out += [t for st in opt.state.values() for t in st.values()
                    if isinstance(t, torch.Tensor) and t.is_floating_point()]
        return out

    def _state_finite(self) -> bool:
        """True when no weight, buffer or optimizer moment is NaN/inf (one host sync)."""
        with torch.no_grad():
            flags = [torch.isfinite(t).all() for t in self._state_tensors()]
            return bool(torch.stack(flags).all().item()) if flags else True

    def _snapshot(self) -> dict[str, Any]:
        """The last known-good training state, in memory (cheap next to ``log_every`` steps); only ever taken
        of a finite state (the flush checks the weights first)."""
        import copy

        mods = {"G": self.G, "D": self.D, "opt_G": self.opt_G, "opt_D": self.opt_D}
        if self.G_ema is not None:
            mods["G_ema"] = self.G_ema
        snap = {k: copy.deepcopy(m.state_dict()) for k, m in mods.items()}
        snap.update(step=self.step, noise=self.noise.get_state(), torch=torch.get_rng_state(),
                    lr_scale=self.lr_scale)
        return snap

    def _restore_snapshot(self, snap: dict[str, Any]) -> None:
        import copy

        for k in ("G", "D", "G_ema"):  # modules copy into their own tensors
            if k in snap:
                getattr(self, k).load_state_dict(snap[k])
        for k in ("opt_G", "opt_D"):  # an optimizer keeps the given tensors (same dtype and device): give it
            getattr(self, k).load_state_dict(copy.deepcopy(snap[k]))  # copies, or its updates corrupt the snapshot
        self.step = snap["step"]
        self.noise.set_state(snap["noise"])
        torch.set_rng_state(snap["torch"])
        self._apply_lr_scale()
        graphs.set_capturable((self.opt_G, self.opt_D), self._graphed is not None)
        if self._graphed is not None:  # new optimizer state and learning rates: capture again
            self._graphed.reset()

    def _apply_lr_scale(self) -> None:
        """Both optimizers' rates = the configured rates times ``lr_scale`` (2^-rollbacks). Set outright, not
        halved in place: the snapshot's optimizer state carries the rate of its own time."""
        o = self.cfg.optim
        for opt, lr in ((self.opt_G, o.g_lr), (self.opt_D, o.d_lr)):
            for group in opt.param_groups:
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(lr * self.lr_scale)
                else:
                    group["lr"] = lr * self.lr_scale

    def _rollback(self, bad: tuple[int, list, str]) -> None:
        """Non-finite loss or weights at step S: restore the last good state and halve the learning rates, a
        bounded number of times. When the retries are spent, replay from the last good state to just before
        step S (at the rates that failed) and stop there: :meth:`_fail_nonfinite`."""
        s, v, what = bad
        t = self.cfg.train
        if self._halt is not None or self._retries >= t.nonfinite_retries:
            self._restore_snapshot(self._good)
            if self._halt is not None:  # the replay itself went non-finite earlier (a non-deterministic device)
                self._fail_nonfinite([], [], bad)
            self._halt = bad
            return
        self._retries += 1
        self._restore_snapshot(self._good)
        self.lr_scale *= 0.5
        self._apply_lr_scale()
        self.log(f"{_describe(bad)}: rolled back to step {self.step} and halved the learning rates "
                 f"(retry {self._retries} of {t.nonfinite_retries})")

    def _fail_nonfinite(self, vals: list[list[float]], steps: list[tuple[int, int]],
                        bad: tuple[int, list, str] | None = None) -> None:
        """Save the last finite state before the failing step S as ``nonfinite_step_S.pt`` and stop."""
        bad = bad or self._halt
        assert bad is not None
        s = bad[0]
        if self._state_finite():
            if self.steplog is not None and steps:  # the replayed steps before S are finite: log them
                self.steplog.append([(st, e, *v) for (st, e), v in zip(steps, vals)])
        else:
            self._restore_snapshot(self._good)
        path = self.save(f"nonfinite_step_{s}.pt",
                         {"nonfinite": {"step": s, "what": bad[2], "values": [float(x) for x in bad[1]]}})
        raise GankitError(f"{_describe(bad)} after {self._retries} rollbacks with halved learning rates; "
                          f"{path} holds the state step {s} starts from (step {self.step}); try a lower "
                          f"learning rate or another loss")


def _describe(bad: tuple[int, list, str]) -> str:
    s, v, what = bad
    if what == "weights":
        return f"non-finite weights after step {s} (its losses d_loss={v[0]:.4g}, g_loss={v[1]:.4g} were finite)"
    return f"non-finite loss at step {s} (d_loss={v[0]:.4g}, g_loss={v[1]:.4g})"


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
