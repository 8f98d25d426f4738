"""Many independent runs of one model trained in lockstep as a single batched network (``gankit train --seeds``).

Protocols report means over seeds (docs/PROTOCOLS.md §1: ≥ 5 seeds per number), and small networks leave a GPU
idle: one toy run launches the same few hundred tiny kernels per step whatever the batch. An :class:`Ensemble`
stacks the K runs' parameters along a new first axis (``torch.func.stack_module_state``) and runs the step once
for all of them with ``torch.func.vmap`` over ``functional_call``: every matrix product becomes one batched
product, and the step costs about what one run's step costs until the GPU is busy.

The runs stay independent:

- each member is a :class:`~gankit.training.run.Run` (its own config, run folder, dataset, seed, initial
  weights, data order and latent stream), built exactly as a single run builds it, so a member's folder is an
  ordinary run folder: ``gankit sample``, ``evaluate``, ``serve`` and ``train --resume`` read it;
- the step's losses are per-member means (vmap over the loss functions) summed, so each member's gradient is
  its own loss's gradient; batch norm keeps per-member statistics (vmap over the running buffers); Adam is
  elementwise, so one optimizer over the stacked tensors is K optimizers;
- a member's batches follow its run's epoch permutation (``epoch_permutation(n, seed, epoch)``) exactly. Its
  latents come from its own generator (seeded like a single run's), drawn a whole epoch at a time, so they are
  the same distribution as a single run's but not the same numbers: a member matches a single run of its seed
  in law, and step for step given the same inputs (tests/train/test_ensemble.py checks both).

On CUDA with ``train.cuda_graphs`` the step -- the batch gather, both updates and the per-step statistics -- is
captured once and replayed; only the epoch's permutations and latents are copied in between epochs.

:func:`fit_together` trains several ensembles (e.g. PacGAN4's and the GAN's, whose shapes differ) in lockstep, one
step of each per turn of the one training loop (:func:`gankit.training.loop.fit`).

Limits (refused with a one-line error; the "seeds" rows of training/options.py): unconditional models, one D
update per G update, fp32, one process, no EMA, gradient penalty, R1/R2, DiffAugment, instance noise, dropout,
spectral norm or lr schedule, and members that differ only in their seeds and dataset (same shape and size).
Ensembles do not roll back a non-finite loss (a single run does): the run stops and names the member.
"""
from __future__ import annotations

import copy
import math
import signal
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.func import functional_call, stack_module_state, vmap

from ..checkpoint import ENSEMBLE_FILE
from ..config import RunConfig
from ..data import to_unit_range
from ..errors import GankitError, option
from ..losses import g_needs_real, get_loss
from ..models import has_batch_coupling
from . import accel, budget, graphs, options
from .loop import RunResult, epoch_permutation, fit
from ..rundir import check_out_free, plot_losses
from .run import Run
from .steps import split_logits, step_stats


MAX_SEEDS = 256  # runs of one --seeds ensemble: each is a Trainer with its data and run folder


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"1,5,7"`` -> [1, 5, 7]; ranges and lists combine (``"0-2,9"``)."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                if b - a >= MAX_SEEDS:  # before the range is built: 0-100000000000 would fill the memory
                    raise GankitError(f"--seeds {text!r}: at most {MAX_SEEDS} runs train together")
                seeds.extend(range(a, b + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise GankitError(f"--seeds {text!r}: expected seeds like 0-4 or 0,1,2 (non-negative integers)") from None
        if len(seeds) > MAX_SEEDS:
            raise GankitError(f"--seeds {text!r}: at most {MAX_SEEDS} runs train together")
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds) or not seeds:
        raise GankitError(f"--seeds {text!r}: expected distinct non-negative seeds like 0-4 or 0,1,2")
    return seeds


def seed_configs(cfg: RunConfig, seeds: Sequence[int]) -> list[RunConfig]:
    """One config per seed: ``train.seed = data.seed = s`` (a toy mixture's training set is drawn per run)."""
    return [cfg.with_overrides({"train.seed": s, "data.seed": s}) for s in seeds]


def check_members(cfgs: Sequence[RunConfig], ctx: options.Context = options.Context()) -> None:
    """Raise a one-line :class:`GankitError` unless ``cfgs`` can train as one ensemble."""
    if not cfgs:
        raise GankitError("an ensemble needs at least one member")
    base = cfgs[0]
    options.check("seeds", base, ctx)

    def shared(c: RunConfig) -> dict[str, Any]:
        d = c.to_dict()
        d["train"] = {k: v for k, v in d["train"].items() if k != "seed"}
        d.pop("data")
        d.pop("preset", None)
        return d
    for c in cfgs[1:]:
        if shared(c) != shared(base):
            raise GankitError("ensemble members must share every setting but train.seed and the data section")


def _stacked_call(base: torch.nn.Module, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
    return functional_call(base, (params, buffers), (x,))


@dataclass
class _Net:
    """K stacked copies of one module: parameters and buffers (K, ...), called as ``net(x)`` with x (K, N, ...)."""

    base: torch.nn.Module  # structure only (on the meta device)
    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]

    @classmethod
    def stack(cls, modules: Sequence[torch.nn.Module]) -> _Net:
        params, buffers = stack_module_state(list(modules))
        base = copy.deepcopy(modules[0]).to("meta")
        return cls(base, params, buffers)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return vmap(partial(_stacked_call, self.base))(self.params, self.buffers, x)

    def train(self, flag: bool) -> None:
        self.base.train(flag)

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        return {**{n: p[k].detach().clone() for n, p in self.params.items()},
                **{n: b[k].clone() for n, b in self.buffers.items()}}


class Ensemble:
    """Trains ``len(cfgs)`` runs into ``outs`` (one run folder each) as one batched network.

    Checkpoints (every member's ``last.pt``) are written at the end, on Ctrl-C/SIGTERM, every
    ``train.checkpoint_every`` epochs, and at the first epoch end after :attr:`save_every_s` seconds without one:
    a crash or ``kill -9`` loses at most that much training (a single run saves every epoch; K members' states
    every epoch would be K times the I/O)."""

    save_every_s: float = 300.0

    def __init__(self, cfgs: Sequence[RunConfig], outs: Sequence[str | Path], *, overwrite: bool = False,
                 resume: bool = False, log: Callable[[str], None] = print):
        if len(cfgs) != len(outs):
            raise GankitError(f"{len(cfgs)} configs for {len(outs)} run folders")
        if not resume:
            check_members(cfgs)
        self.log = log
        for o in outs:  # every member's folder before the first member loads its data
            check_out_free(Path(o), overwrite, resume)
        quiet = lambda *_: None  # the members stay silent; the ensemble reports
        self.members = [Run(c, o, overwrite=overwrite, resume=resume, log=quiet) for c, o in zip(cfgs, outs)]
        first = self.members[0]
        check_members([m.cfg for m in self.members], first.ctx)
        self.cfg, self.device, self.K = first.cfg, first.device, len(self.members)
        self._check_alike()
        self.step = first.step
        self.B, self.spe, self.total_steps = first.cfg.train.batch_size, first.steps_per_epoch, first.total_steps
        self.G = _Net.stack([m.G for m in self.members])
        self.D = _Net.stack([m.D for m in self.members])
        self.two_pass = has_batch_coupling(first.D)
        self.simultaneous = self.cfg.train.updates == "simultaneous"
        self.d_loss_fn, self.g_loss_fn = get_loss(self.cfg.loss.name)
        self.g_real = g_needs_real(self.cfg.loss.name)
        o = self.cfg.optim
        self.opt_G = accel.adam(self.G.params.values(), o.g_lr, o)
        self.opt_D = accel.adam(self.D.params.values(), o.d_lr, o)
        for opt, which in ((self.opt_G, "opt_G"), (self.opt_D, "opt_D")):
            self._load_opt(opt, which)
        self.cuda_graphs = self.cfg.train.cuda_graphs
        graphs.set_capturable((self.opt_G, self.opt_D), self.cuda_graphs)
        self._stack_data()
        n, z_dim = self.spe * self.B, self.cfg.model.z_dim
        self.idx_epoch = torch.zeros(self.K, n, dtype=torch.long, device=self.device)
        self.z_epoch = torch.zeros(self.K, n, z_dim, device=self.device)
        self.cursor = torch.arange(self.B, device=self.device)
        self.stats = torch.zeros(self.spe, self.K, 4, device=self.device)
        self._epoch_noise: list[torch.Tensor] = []
        self._replayer = graphs.Replayer(self.device) if self.cuda_graphs else None
        self._stop_signal: int | None = None
        self._stop_requested = False
        self._pending = 0  # steps run since the last flush
        for k, m in enumerate(self.members):
            m.write_manifest({"step": "ensemble (vmap over stacked members)", "cuda_graphs": self.cuda_graphs,
                              "ensemble": {"members": self.K, "index": k,
                                           "seeds": [x.cfg.train.seed for x in self.members],
                                           "cuda_graphs": self.cuda_graphs}})

    def _check_alike(self) -> None:
        first = self.members[0]
        for m in self.members[1:]:
            if m.img_shape != first.img_shape or len(m.data) != len(first.data):
                raise GankitError(f"ensemble members need datasets of one shape and size: {first.data.name} "
                                  f"{len(first.data)}×{list(first.img_shape)} vs {m.data.name} "
                                  f"{len(m.data)}×{list(m.img_shape)}")
        steps = {m.step for m in self.members}
        if len(steps) > 1:
            raise GankitError(f"cannot resume these runs together: their checkpoints are at different steps "
                              f"({sorted(steps)}); resume each alone with "
                              f"{option('gankit train --resume', 'gankit.train(out=RUN_DIR, resume=True)')}")

    def _stack_data(self) -> None:
        """The data of all members, deduplicated, as one tensor; member k reads rows offset[k] + its permutation."""
        datas: list[torch.Tensor] = []
        offsets = []
        n = len(self.members[0].data)
        for m in self.members:
            for j, d in enumerate(datas):
                if d is m.data.images or (d.shape == m.data.images.shape and torch.equal(d, m.data.images)):
                    offsets.append(j * n)
                    break
            else:
                offsets.append(len(datas) * n)
                datas.append(m.data.images)
        self.data = datas[0] if len(datas) == 1 else torch.cat(datas)
        self.offsets = torch.tensor(offsets, device=self.device).view(self.K, 1)

    # -- state ------------------------------------------------------------------------------------
    def _load_opt(self, opt: torch.optim.Optimizer, which: str) -> None:
        """Stack the members' Adam states (present when resuming) into the ensemble optimizer."""
        states = [getattr(m, which).state_dict()["state"] for m in self.members]
        if not states[0]:
            return
        sd = opt.state_dict()
        stacked = {}
        for i in range(len(sd["param_groups"][0]["params"])):
            s0 = states[0][i]
            stacked[i] = {k: (v if k == "step" else torch.stack([s[i][k] for s in states]))
                          for k, v in s0.items()}
        sd["state"] = stacked
        opt.load_state_dict(sd)

    def _write_back(self) -> None:
        """Copy each member's slice of the stacked weights and Adam states into its Run."""
        for net, opt, which in ((self.G, self.opt_G, "G"), (self.D, self.opt_D, "D")):
            names = list(net.params)
            ens_state = opt.state_dict()["state"]
            for k, m in enumerate(self.members):
                getattr(m, which).load_state_dict(net.member_state(k))
                mopt = getattr(m, f"opt_{which}")
                msd = mopt.state_dict()
                msd["state"] = {i: {key: (v.clone() if key == "step" else v[k].clone())
                                    for key, v in ens_state[i].items()} for i in range(len(names)) if i in ens_state}
                mopt.load_state_dict(msd)
                graphs.set_capturable((mopt,), self.cuda_graphs)
        for m in self.members:
            m.step = self.step

    def save(self) -> None:
        """Each member's ``last.pt``; a mid-epoch save keeps the latent generator's state at the epoch's start,
        so a resumed ensemble redraws this epoch's latents and continues exactly."""
        self._write_back()
        for k, m in enumerate(self.members):
            now = m.noise.get_state()
            if self._epoch_noise and self.step % self.spe:
                m.noise.set_state(self._epoch_noise[k])
            m.save("last.pt")
            m.noise.set_state(now)

    # -- the step ---------------------------------------------------------------------------------
    def update(self, real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """One D and one G update of every member: ``real`` (K, B, ...) in the model's range, ``z`` (K, B, z_dim).
        Returns (K, 4): d_loss, g_loss, D(x), D(G(z)) per member (as a single run's step returns for one). The
        loss is each member's mean loss, summed: each member gets its own loss's gradient."""
        L = self.cfg.loss
        d_loss_fn = partial(self.d_loss_fn, real_target=L.real_target, fake_target=L.fake_target)
        fake = self.G(z)
        if self.simultaneous and not self.two_pass:
            return self._update_one_pass(real, fake, d_loss_fn)
        if self.two_pass:
            real_logits, fake_logits = self.D(real), self.D(fake.detach())
        else:
            real_logits, fake_logits = split_logits(self.D(torch.cat([real, fake.detach()], dim=1)), dim=1)
        d_loss = vmap(d_loss_fn)(real_logits, fake_logits)
        accel.backward_step(d_loss.sum(), self.opt_D, None, step=not self.simultaneous)
        for p in self.D.params.values():
            p.requires_grad_(False)
        g_loss = self._g_loss(self.D(fake), self.D(real) if self.g_real else None)
        accel.backward_step(g_loss.sum(), self.opt_G, None)
        for p in self.D.params.values():
            p.requires_grad_(True)
        if self.simultaneous:
            self.opt_D.step()
        return step_stats(d_loss, g_loss, real_logits, fake_logits, dim=1)

    def _g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None) -> torch.Tensor:
        if real_logits is None:
            return vmap(self.g_loss_fn, in_dims=(0, None))(fake_logits, None)
        return vmap(self.g_loss_fn)(fake_logits, real_logits)

    def _update_one_pass(self, real: torch.Tensor, fake: torch.Tensor, d_loss_fn) -> torch.Tensor:
        """Simultaneous updates with a D that does not mix samples: one D pass on [real, fake] gives both losses
        (D's gradient from D's loss, G's from G's), as the authors' code computes them; then both updates."""
        real_logits, fake_logits = split_logits(self.D(torch.cat([real, fake], dim=1)), dim=1)
        d_loss = vmap(d_loss_fn)(real_logits, fake_logits)
        g_loss = self._g_loss(fake_logits, real_logits if self.g_real else None)
        d_params, g_params = list(self.D.params.values()), list(self.G.params.values())
        grads_d = torch.autograd.grad(d_loss.sum(), d_params, retain_graph=True)
        grads_g = torch.autograd.grad(g_loss.sum(), g_params)
        for p, g in zip(d_params + g_params, grads_d + grads_g):
            # autograd.grad keeps the backward's layout (a weight's gradient may come out transposed), and the
            # fused Adam kernel reads .grad as if laid out like its parameter: with torch 2.13 on CPU a transposed
            # gradient gives a silently wrong update. backward() would have matched the layouts; do it here.
            p.grad = g if g.stride() == p.stride() else torch.empty_like(p).copy_(g)
        self.opt_D.step()
        self.opt_G.step()
        return step_stats(d_loss, g_loss, real_logits, fake_logits, dim=1)

    def _step(self) -> None:
        """The next step of the epoch: gather the members' batches and latents at the cursor, update, record."""
        idx = self.idx_epoch.index_select(1, self.cursor)  # (K, B) rows of self.data
        real = to_unit_range(self.data.index_select(0, idx.reshape(-1))).view(self.K, self.B, *self.data.shape[1:])
        z = self.z_epoch.index_select(1, self.cursor)
        vals = self.update(real, z)
        self.stats.index_copy_(0, torch.div(self.cursor[:1], self.B, rounding_mode="floor"), vals.unsqueeze(0))
        self.cursor.add_(self.B)

    def run_step(self) -> None:
        """One step of every member; on CUDA with ``train.cuda_graphs``, the captured step replayed."""
        if self._replayer is None:
            self._step()
        else:
            self._replayer(self._step)
        self._pending += 1

    def batch_indices(self, k: int, epoch: int) -> torch.Tensor:
        """Member ``k``'s dataset rows for ``epoch``, in order (its run's epoch permutation)."""
        return epoch_permutation(len(self.members[k].data), self.members[k].cfg.train.seed, epoch)

    def begin_epoch(self, epoch: int, pos: int) -> None:
        n = self.spe * self.B
        idx = torch.stack([self.batch_indices(k, epoch)[:n] for k in range(self.K)]).to(self.device)
        self.idx_epoch.copy_(idx + self.offsets)
        self._epoch_noise = [m.noise.get_state() for m in self.members]
        for k, m in enumerate(self.members):
            self.z_epoch[k].copy_(torch.randn(n, self.cfg.model.z_dim, device=self.device, generator=m.noise))
        self.cursor.copy_(torch.arange(self.B, device=self.device) + pos * self.B)

    # -- the loop ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`fit` to stop after the current step (checkpoints are written)."""
        self._stop_requested = True

    def pending(self) -> int:
        return self._pending

    def flush(self) -> list[float]:
        """Log the buffered steps of every member; stop on a non-finite value (ensembles do not roll back).
        Returns the last step's values averaged over the members (for the progress line)."""
        epoch = (self.step - 1) // self.spe
        last = self.step - epoch * self.spe  # positions in the epoch: steps first+1..last are buffered
        first, self._pending = last - self._pending, 0
        vals = self.stats[first:last].cpu().tolist()
        for k, m in enumerate(self.members):
            rows = [(epoch * self.spe + i + 1, epoch + 1, *v[k]) for i, v in zip(range(first, last), vals)]
            for r in rows:
                if not all(math.isfinite(x) for x in r[2:]):
                    raise GankitError(f"member {k} (seed {m.cfg.train.seed}, {m.run_dir}) has a non-finite loss at "
                                      f"step {r[0]}; ensembles do not roll back: train that seed alone "
                                      f"(gankit train --seed {m.cfg.train.seed}) or lower the learning rates")
            if m.steplog is not None:
                m.steplog.append(rows)
        return [sum(v[k][j] for k in range(self.K)) / self.K for v in vals[-1:] for j in range(4)]

    def fit(self) -> list[RunResult]:
        """Train every member to ``total_steps``; Ctrl-C/SIGTERM stop after the current step with checkpoints."""
        return fit_together([self])[0]

    def finish(self, interrupted: bool, by_time: bool = False) -> list[RunResult]:
        if self.pending():
            self.flush()
        self.save()
        for m in self.members:
            if not interrupted:
                m.write_grid("final.png")
                plot_losses(m.run_dir / "log.csv", m.run_dir / "loss.png")
            m.close()
        return [RunResult(m.run_dir, m.cfg, m.G, m.D, self.step, self.step // self.spe, {}, interrupted, by_time)
                for m in self.members]

    def resume_command(self) -> str:
        """How to continue these runs: the --seeds folder's resume, or the same configs and folders."""
        parents = {m.run_dir.parent for m in self.members}
        if len(parents) == 1 and (next(iter(parents)) / ENSEMBLE_FILE).is_file():
            return option(f"gankit train --resume {next(iter(parents))}",
                          "the same Ensemble configs and folders with resume=True")
        return option("the same command and --resume", "the same configs and folders and resume=True")

    def end_epoch(self, epoch: int) -> None:
        t = self.cfg.train
        keep = bool(t.checkpoint_every) and epoch % t.checkpoint_every == 0
        grid = bool(t.sample_every) and epoch % t.sample_every == 0
        if not (keep or grid):
            return
        self._write_back()
        for m in self.members:
            if grid:
                m.write_grid(f"epoch_{epoch:04d}.png")
            if keep:  # epoch_N.pt first: a kill in between leaves last.pt behind it (Trainer.end_epoch)
                m.save(f"epoch_{epoch:04d}.pt")
                m.save("last.pt")
        self.log(f"epoch {epoch}: {self.K} members, step {self.step} of {self.total_steps}")


class Lockstep:
    """The driver :func:`~gankit.training.loop.fit` runs for several ensembles trained together: one step of each
    per turn, one stop signal and time budget (the lead's) for all."""

    def __init__(self, group: Sequence[Ensemble]):
        self.group, self.lead = list(group), group[0]
        lead = self.lead
        for e in self.group[1:]:
            if (e.spe, e.total_steps, e.step) != (lead.spe, lead.total_steps, lead.step):
                raise GankitError(f"ensembles trained together need the same steps per epoch, total steps and "
                                  f"current step: {(lead.spe, lead.total_steps, lead.step)} vs "
                                  f"{(e.spe, e.total_steps, e.step)}")
        if len({str(e.device) for e in self.group}) > 1:
            raise GankitError("ensembles trained together need one device")
        self.cfg, self.total_steps, self.steps_per_epoch, self.is_main = lead.cfg, lead.total_steps, lead.spe, True
        self._stop_signal: int | None = None

    @property
    def step(self) -> int:
        return self.lead.step

    @step.setter
    def step(self, value: int) -> None:
        for e in self.group:
            e.step = value

    @property
    def _stop_requested(self) -> bool:
        return any(e._stop_requested for e in self.group)

    def begin(self, clock: budget.TimeBudget) -> None:
        self._clock, self._step0 = clock, self.step
        self._t0, self._saved_at = time.perf_counter(), time.monotonic()

    def stopping(self) -> bool:
        # at least one step per invocation, as a single run; one clock read per step
        return (self._stop_requested or self._stop_signal is not None
                or (self.step > self._step0 and self._clock.spent()))

    def budget_reached(self) -> bool:
        return self._clock.reached

    def begin_epoch(self, epoch: int, pos: int) -> None:
        for e in self.group:
            e.begin_epoch(epoch, pos)

    def run_step(self) -> None:
        for e in self.group:
            e.run_step()

    def pending(self) -> int:
        return self.lead.pending()

    def flush(self) -> dict[str, float]:
        means = [e.flush() for e in self.group]
        imgs = (self.step - self._step0) * sum(e.B * e.K for e in self.group)
        return {"epoch": (self.step - 1) // self.steps_per_epoch + 1,
                **dict(zip(("d_loss", "g_loss", "d_real", "d_fake"), means[0])),
                "img_per_s": imgs / max(time.perf_counter() - self._t0, 1e-9)}

    def end_epoch(self, epoch: int) -> None:
        for e in self.group:
            e.end_epoch(epoch)
        if time.monotonic() - self._saved_at >= self.lead.save_every_s and self.step < self.total_steps:
            for e in self.group:
                e.save()
            self._saved_at = time.monotonic()

    def finish(self, interrupted: bool, by_time: bool) -> list[list[RunResult]]:
        results = [e.finish(interrupted, by_time) for e in self.group]
        t = self.cfg.train
        if by_time:
            self.lead.log(budget.stop_line(t.time_limit, self.step, self.total_steps,  # type: ignore[arg-type]
                                           " / ".join(dict.fromkeys(e.resume_command() for e in self.group)),
                                           budget.unfinished_schedules(self.cfg)))
        if interrupted:
            how = option("the same command and --resume", "the same configs and folders and resume=True")
            print(f"gankit: {signal.Signals(self._stop_signal).name} received: stopped at step {self.step}, "
                  f"checkpoints saved; resume with {how}", file=sys.stderr, flush=True)
        return results


def fit_together(group: Sequence[Ensemble]) -> list[list[RunResult]]:
    """Train several ensembles in lockstep, one step of each per loop turn. They need the same steps per epoch,
    total steps and current step; each keeps its own members, checkpoints and logs. Ctrl-C/SIGTERM stop all of
    them after the current step, with checkpoints; so does the lead's ``train.time_limit`` once spent, at a step
    boundary (a budget stop ends like a finished run, with grids). Returns each ensemble's :meth:`Ensemble.fit`
    result, in order."""
    return fit(Lockstep(group))
