"""One run's state: its config, data, networks, optimizers, random streams and run folder.

A :class:`Run` is what a checkpoint holds and what a run folder records. It neither steps nor loops: a
:class:`~gankit.training.loop.Trainer` drives one run, an :class:`~gankit.training.ensemble.Ensemble` drives K runs
as one batched network. Everything that can fail on bad input happens before the run folder is touched.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch

from .. import memory
from ..checkpoint import host_rng_state, load_checkpoint, load_state_strict, resolve_checkpoint, save_checkpoint, \
    set_host_rng_state
from ..augment import parse_policy
from ..config import RunConfig
from ..data import Dataset, check_data, clusters, load_dataset, run_data
from ..data.toy import read_points, write_points
from ..device import resolve_device
from ..ema import make_ema
from ..errors import GankitError, option
from ..images import save_grid, to_numpy_uint8
from ..losses import check_targets, get_loss
from ..models import build_discriminator, build_generator, check_model
from . import distributed as dist_utils
from . import fused, graphs, options, threads
from ..rundir import StepLog, check_checkpoint_of_run, check_out_free, checkpoint_home, prepare_run_dir, \
    resume_elsewhere, versions, write_manifest


def check_config(cfg: RunConfig, data: bool = True) -> None:
    """The checks of a run's config that need no data, device or file: the dataset's name (``data`` False: an
    in-memory dataset replaces it), the model's cross-field rules and the loss. A run makes them first;
    ``gankit train --dry-run`` makes them alone, so a dry run accepts what the real run accepts."""
    if data:
        check_data(cfg.data)
    check_model(cfg.model)
    get_loss(cfg.loss.name)
    check_targets(cfg.loss.name, cfg.loss.real_target, cfg.loss.fake_target)
    parse_policy(cfg.loss.augment)  # an unknown augmentation fails here, before the run folder exists


def _resume_source(cfg: RunConfig | None, out: str | Path, resume: bool | str | Path):
    """(config, out, checkpoint state, checkpoint path, resumed_from, in_place) of a resume."""
    source = Path(out if resume is True else resume).expanduser()  # type: ignore[arg-type]
    ckpt = resolve_checkpoint(source)
    state = load_checkpoint(ckpt)
    saved = RunConfig.from_dict(state["config"])
    home = checkpoint_home(source, ckpt)
    in_place = resume is True or (home is not None and Path(out).expanduser().resolve() == home.resolve())
    resumed_from = None
    if in_place:
        if home is None:
            raise GankitError(f"{ckpt} is not in a run folder's checkpoints/; to continue from it, give a new run "
                              f"folder: {resume_elsewhere(ckpt)}")
        check_checkpoint_of_run(ckpt, saved, home)  # another run's checkpoint copied over last.pt
        out = home
    else:
        resumed_from = ckpt.resolve()
    if cfg is None:  # the budget was the earlier invocation's: a resume gets its own, or none
        cfg = saved.with_overrides({"train.time_limit": None})
    else:
        for section in ("preset", "data", "model", "loss", "optim"):
            if getattr(cfg, section) != getattr(saved, section):
                what = f"preset ({cfg.preset}) differs" if section == "preset" else f"{section} settings differ"
                raise GankitError(f"{option('--resume', 'resume')}: the {what} from the checkpoint's; only train.* "
                                  f"may change when resuming")
    return cfg, out, state, ckpt, resumed_from, in_place


class Run:
    """The state of one run in its folder (``out``); see :class:`~gankit.training.loop.Trainer` for the arguments."""

    def __init__(self, cfg: RunConfig | None, out: str | Path, *, dataset: Dataset | None = None,
                 overwrite: bool = False, resume: bool | str | Path = False, log: Callable[[str], None] = print):
        self.log = log
        state, ckpt, self.resumed_from, in_place = None, None, None, False
        if resume:
            cfg, out, state, ckpt, self.resumed_from, in_place = _resume_source(cfg, out, resume)
        if cfg is None:
            raise GankitError("no config given")
        # drawn points with no data.dir: the points.json in the resumed checkpoint's run folder
        data_cfg = run_data(cfg.data, ckpt) if ckpt is not None else cfg.data
        check_config(replace(cfg, data=data_cfg), data=dataset is None)
        self.cfg, t = cfg, cfg.train
        self.dist = dist_utils.from_env(t.device, t.dist_timeout)
        if not self.dist.is_main:  # only rank 0 speaks and writes
            self.log = log = lambda *_: None
        self.device = resolve_device(dist_utils.device_for(self.dist, t.device), "train.device")
        saved_threads = state.get("threads") if state is not None else None
        self.threads = threads.resolve(t.threads, saved_threads if isinstance(saved_threads, int) else None, log)
        torch.set_num_threads(self.threads)  # fixed for the run: CPU results depend on it (threads.py)
        from . import accel

        saved_precision = state.get("precision") if state is not None else None
        # train.precision auto: bf16 where the device has bf16 kernels, else fp32 (accel.py); what ran is recorded
        self.precision = accel.resolve_precision(t.precision, self.device, saved_precision
                                                 if isinstance(saved_precision, str) else None, log)
        # Everything that can fail on bad input happens before the run folder is touched; a taken run folder
        # fails before the data is loaded (an MNIST download takes a while).
        if self.dist.is_main:
            check_out_free(Path(out), overwrite, in_place)
        self.data = (dataset if dataset is not None else load_dataset(data_cfg, log=log, model=cfg.preset))
        self._check_batch()
        self.img_shape = self.data.shape
        k = cfg.data.clusters  # self-conditioning (data/clusters.py): k classes, made below once the checks pass
        ctx = options.Context(device=self.device.type, precision=self.precision, distributed=self.dist.enabled,
                              dataset=self.data.name,
                              images=len(self.img_shape) == 3, local_batch=self.local_batch,
                              classes=k or (self.data.num_classes if self.data.labels is not None else None))
        memory.check_training_fits(cfg, self.img_shape, self.device)  # before G and D are allocated
        options.check("run", cfg, ctx)
        # data.clusters: the labels are k-means clusters of the pixels; fake labels follow the clusters' sizes
        self.label_shares, self.cluster_digest = None, None
        if k:
            self.data, shares, self.cluster_digest = clusters.relabel(self.data, k, cfg.data.seed, log)
            self.label_shares = shares.float().to(self.device)
            if state is not None and state.get("cluster_digest") != self.cluster_digest:
                raise GankitError(f"{ckpt}: the data's {k} k-means clusters differ from the ones this run trained "
                                  f"on (is it the same data?); resume on the run's own data")
        self.data = self.data.to(self.device)
        self._process_switches()
        torch.manual_seed(t.seed)
        self.G = build_generator(cfg.model, self.img_shape).to(self.device)
        self.D = build_discriminator(cfg.model, self.img_shape).to(self.device)
        self.ctx = replace(ctx, mlp_layers=fused.mlp_layers(self.G, self.D),
                           matmul_only=threads.matmul_only(self.G, self.D))
        for path, on in (("adaptive_threads", t.adaptive_threads), ("cuda_graphs", t.cuda_graphs)):
            if on:
                options.check(path, cfg, self.ctx)
        o = cfg.optim
        self.opt_G = accel.adam(self.G.parameters(), o.g_lr, o)
        self.opt_D = accel.adam(self.D.parameters(), o.d_lr, o)
        graphs.set_capturable((self.opt_G, self.opt_D), t.cuda_graphs)
        self.G_ema = make_ema(self.G) if o.ema_beta > 0 else None
        self.lr_scale = 1.0  # halved by each non-finite rollback
        self.total_steps = t.steps if t.steps is not None else t.epochs * self.steps_per_epoch  # type: ignore
        self.noise = torch.Generator(device=self.device)
        self.noise.manual_seed(t.seed + 1)
        self.fixed_z = torch.randn(t.grid_size, cfg.model.z_dim,
                                   generator=torch.Generator().manual_seed(t.seed + 2)).to(self.device)
        self.step = 0
        self.run_dir = Path(out).expanduser()
        # rank 0 locks the folder (held until the run is closed) before it touches anything there
        self._run_lock = prepare_run_dir(self.run_dir, overwrite, in_place) if self.dist.is_main else None
        if self.dist.is_main and dataset is None and data_cfg is not cfg.data and not in_place:
            write_points(self.run_dir, read_points(data_cfg.dir))  # a new folder keeps the run's own points too
        self.resumed = state is not None
        if state is not None:
            self._restore(state, ckpt)  # type: ignore[arg-type]
        self.steplog = StepLog(self.run_dir / "log.csv", start_step=self.step) if self.dist.is_main else None

    def _check_batch(self) -> None:
        t, n = self.cfg.train, len(self.data)
        if t.batch_size % self.dist.world_size:
            raise GankitError(f"train.batch_size {t.batch_size} is the global batch and must divide evenly over "
                              f"{self.dist.world_size} processes")
        self.local_batch = t.batch_size // self.dist.world_size
        if n < t.batch_size:
            raise GankitError(f"dataset {self.data.name} has {n} images, fewer than one batch "
                              f"(train.batch_size={t.batch_size}); lower --batch-size")
        self.steps_per_epoch = n // (t.batch_size * t.d_steps)
        if self.steps_per_epoch == 0:
            raise GankitError(f"dataset {self.data.name} ({n} images) is too small for one step of {t.d_steps} D "
                              f"batches of {t.batch_size}")

    def _process_switches(self) -> None:
        """Process-wide switches: each run sets them as its config says."""
        t = self.cfg.train
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = t.tf32
        if t.deterministic:  # GPU kernels with atomics (scatter-add, some convolutions) become exact
            import os

            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False

    def write_manifest(self, extra: dict[str, Any]) -> None:
        """manifest.json: the run as it is now (a resume may change train.*) and this command line."""
        if not self.dist.is_main:
            return
        t = self.cfg.train
        write_manifest(self.run_dir, self.cfg.to_json(), {
            "seed": t.seed, "device": str(self.device), "threads": self.threads, "threads_adaptive": t.adaptive_threads,
            "precision": self.precision,
            "dataset": {"name": self.data.name, "source": self.data.source, "size": len(self.data),
                        "shape": list(self.img_shape)},
            "parameters": {"G": _count(self.G), "D": _count(self.D)}, "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps, "world_size": self.dist.world_size, "backend": self.dist.backend or None,
            **extra,
        }, resumed_at=self.step if self.resumed else None, resumed_from=self.resumed_from)

    def close(self) -> None:
        """Give the run folder back (its lock)."""
        if self._run_lock is not None:
            self._run_lock.release()

    # -- state --------------------------------------------------------------------------------------
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
            "lr_scale": self.lr_scale, "threads": self.threads, "precision": self.precision,
            **({"scaler_D": self.scaler_D.state_dict(), "scaler_G": self.scaler_G.state_dict()}
               if getattr(self, "scaler_D", None) is not None else {}),
            **({"G_ema": self.G_ema.state_dict()} if self.G_ema is not None else {}),
            **({"label_shares": self.label_shares.tolist(), "cluster_digest": self.cluster_digest}
               if self.label_shares is not None else {}),
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
        graphs.set_capturable((self.opt_G, self.opt_D), self.cfg.train.cuda_graphs)
        self.step = int(state["step"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self._scaler_state = {k: state[k] for k in ("scaler_D", "scaler_G") if k in state}
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
        if not self.state_finite():
            raise GankitError(f"refusing to write {path}: the weights or optimizer state hold NaN/inf at step "
                              f"{self.step}; the previous checkpoint is unchanged")
        return save_checkpoint(path, {**self.state_dict(), **(extra or {})})

    def _state_tensors(self) -> list[torch.Tensor]:
        """Every floating tensor a checkpoint holds: weights, buffers, G_ema, the optimizers' moments."""
        mods = [self.G, self.D] + ([self.G_ema] if self.G_ema is not None else [])
        out = [t for m in mods for t in m.state_dict().values() if t.is_floating_point()]
        for opt in (self.opt_G, self.opt_D):
            out += [t for st in opt.state.values() for t in st.values()
                    if isinstance(t, torch.Tensor) and t.is_floating_point()]
        return out

    def state_finite(self) -> bool:
        """True when no weight, buffer or optimizer moment is NaN/inf (one host sync)."""
        with torch.no_grad():
            flags = [torch.isfinite(t).all() for t in self._state_tensors()]
            return bool(torch.stack(flags).all().item()) if flags else True

    def snapshot(self) -> dict[str, Any]:
        """The training state in memory, for a rollback; only ever taken of a finite state."""
        mods = {"G": self.G, "D": self.D, "opt_G": self.opt_G, "opt_D": self.opt_D}
        if self.G_ema is not None:
            mods["G_ema"] = self.G_ema
        snap = {k: copy.deepcopy(m.state_dict()) for k, m in mods.items()}
        snap.update(step=self.step, noise=self.noise.get_state(), torch=torch.get_rng_state(),
                    lr_scale=self.lr_scale)
        return snap

    def restore_snapshot(self, snap: dict[str, Any]) -> None:
        for k in ("G", "D", "G_ema"):  # modules copy into their own tensors
            if k in snap:
                getattr(self, k).load_state_dict(snap[k])
        for k in ("opt_G", "opt_D"):  # an optimizer keeps the given tensors (same dtype and device): give it
            getattr(self, k).load_state_dict(copy.deepcopy(snap[k]))  # copies, or its updates corrupt the snapshot
        self.step = snap["step"]
        self.noise.set_state(snap["noise"])
        torch.set_rng_state(snap["torch"])
        self.apply_lr_scale()
        graphs.set_capturable((self.opt_G, self.opt_D), self.cfg.train.cuda_graphs)

    def apply_lr_scale(self) -> None:
        """Both optimizers' rates = the configured rates times ``lr_scale`` (2^-rollbacks). Set outright, not
        halved in place: the snapshot's optimizer state carries the rate of its own time."""
        o = self.cfg.optim
        for opt, lr in ((self.opt_G, o.g_lr), (self.opt_D, o.d_lr)):
            for group in opt.param_groups:
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(lr * self.lr_scale)
                else:
                    group["lr"] = lr * self.lr_scale

    # -- pictures -----------------------------------------------------------------------------------
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


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
