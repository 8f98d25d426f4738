"""The training loop: one :func:`fit` for a single run (:class:`Trainer`) and for ensembles (ensemble.py).

One *step* is ``train.d_steps`` D updates followed by one G update; each D update consumes one batch.
Batches are drawn by index from the resident uint8 dataset through a per-epoch permutation seeded by
(seed, epoch), so the position in an epoch is two integers and a resumed run draws the same batches.
Per-step values stay on the device and reach the host every ``train.log_every`` steps.

:func:`fit` drives any object with this protocol (a *driver*):

- ``step``, ``total_steps``, ``steps_per_epoch``, ``cfg``, ``is_main``, ``_stop_signal``, ``_stop_requested``;
- ``begin(budget)``: the loop starts (``budget``: this invocation's :class:`~gankit.training.budget.TimeBudget`);
- ``stopping()``: stop before the next step (a signal, a spent budget, a callback's ``stop()``);
- ``begin_epoch(epoch, pos)``: the loop enters ``epoch`` at step ``pos`` of it (also after a rollback);
- ``run_step()``: one step of every run the driver trains, its values buffered on the device;
- ``pending()``: the steps buffered; ``flush()``: log them and return the progress line's values (with
  ``img_per_s``), or None when the non-finite policy rolled the run back (the loop then re-enters the epoch); a
  driver that cannot roll back raises instead;
- ``end_epoch(epoch)``; ``finish(interrupted, by_time)``: save, write pictures, return the results.
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
from ..data import Dataset
from ..errors import GankitError
from . import budget
from . import distributed as dist_utils
from ..rundir import Progress, plot_losses, resume_in_place
from .run import Run, check_config  # noqa: F401  (check_config: gankit train --dry-run)
from .steps import build_step
from .threads import ThreadTuner

Callback = Callable[["Trainer"], None]
ROWS = ("step", "d_loss", "g_loss", "d_real", "d_fake")


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


def fit(driver: Any) -> Any:
    """Train ``driver`` (see the module's protocol) to its total steps, a stop signal or its time budget."""
    t = driver.cfg.train
    bar = Progress(t.progress and driver.is_main, driver.total_steps, driver.step)
    old = install_stop_handlers(driver)
    clock = budget.TimeBudget(t.time_limit)  # per invocation: counts from here
    driver.begin(clock)
    entered = -1
    try:
        while driver.step < driver.total_steps and not driver.stopping():
            epoch, pos = divmod(driver.step, driver.steps_per_epoch)
            if epoch != entered:
                driver.begin_epoch(epoch, pos)
                entered = epoch
            driver.run_step()
            driver.step += 1
            epoch_done = driver.step % driver.steps_per_epoch == 0
            if driver.pending() >= t.log_every or epoch_done or driver.step == driver.total_steps:
                n = driver.pending()
                stats = driver.flush()
                if stats is None:  # rolled back: the step counter moved back, re-enter the epoch
                    entered = -1
                    continue
                bar.update(n, stats)
            if epoch_done:
                driver.end_epoch(driver.step // driver.steps_per_epoch)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        bar.close()
    interrupted = driver._stop_signal is not None
    # the budget, not a stop() hook or a signal, ended the run before its last step
    by_time = (not interrupted and not driver._stop_requested and driver.step < driver.total_steps
               and driver.budget_reached())
    return driver.finish(interrupted, by_time)


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


class Trainer(Run):
    """Trains one GAN described by a :class:`RunConfig` into a run folder: a :class:`~gankit.training.run.Run`
    and the driver :func:`fit` runs, with the non-finite policy (roll back, then stop with the last finite state).

    ``resume`` True continues the run in ``out`` (a run folder, or a checkpoint in its ``checkpoints/``); a path
    (a checkpoint file or run folder) continues from there into the new folder ``out``, or in place when ``out``
    is that checkpoint's run folder. ``cfg`` None with ``resume`` takes the checkpoint's config; a given ``cfg``
    may only change sections that do not alter the model or the data (``train``).

    Hooks: ``trainer.add_callback("on_epoch_end" | "on_log" | "on_train_end", fn)``; each ``fn(trainer)``.
    """

    def __init__(self, cfg: RunConfig | None, out: str | Path, *, dataset: Dataset | None = None,
                 overwrite: bool = False, resume: bool | str | Path = False, log: Callable[[str], None] = print):
        super().__init__(cfg, out, dataset=dataset, overwrite=overwrite, resume=resume, log=log)
        self.train_step = build_step(self)  # a step object (steps.py): autograd, fused, or CUDA-graphed
        self.write_manifest({"step": self.step_kind, "cuda_graphs": self.cfg.train.cuda_graphs})
        self.callbacks: dict[str, list[Callback]] = {"on_epoch_end": [], "on_log": [], "on_train_end": []}
        self._stop_signal: int | None = None
        self._stop_requested = False
        self._budget = budget.TimeBudget(None)
        self.is_main = self.dist.is_main

    # -- hooks ----------------------------------------------------------------------------------------
    def add_callback(self, event: str, fn: Callback) -> None:
        if event not in self.callbacks:
            raise GankitError(f"unknown callback event {event!r}; choose one of: {', '.join(self.callbacks)}")
        self.callbacks[event].append(fn)

    def _fire(self, event: str) -> None:
        if self.dist.is_main:  # hooks write files and logs: rank 0 only
            for fn in self.callbacks[event]:
                fn(self)

    def stop(self) -> None:
        """Ask :meth:`fit` to finish after the current step (from a callback); the run ends normally."""
        self._stop_requested = True

    # -- the driver -----------------------------------------------------------------------------------
    def fit(self) -> RunResult:
        """Train to ``total_steps``; returns a :class:`RunResult`. Ctrl-C/SIGTERM stop cleanly with a checkpoint."""
        ok = False
        try:
            result = fit(self)
            ok = True
            return result
        except RuntimeError as e:
            if self.dist.enabled:
                raise dist_utils.failure(self.dist, e) from None
            raise
        finally:
            if hasattr(self, "_threads_before"):  # the adaptive tuner may have changed it
                torch.set_num_threads(self._threads_before)
            dist_utils.shutdown(self.dist, barrier=ok)
            self.close()

    def begin(self, clock: budget.TimeBudget) -> None:
        t = self.cfg.train
        if not self.state_finite():
            where = f"; resume from an earlier checkpoint in {self.run_dir / 'checkpoints'}" if self.step else ""
            raise GankitError(f"the weights or optimizer state hold NaN/inf at step {self.step}, before training "
                              f"(a damaged checkpoint or a hook?){where}")
        self._good, self._retries, self._stop_agreed, self._time_agreed = self.snapshot(), 0, False, False
        self._budget, self._fit_step0 = clock, self.step
        self._halt: tuple[int, list, str] | None = None  # retries spent: replay to just before this step, then stop
        self._buf = torch.zeros(t.log_every, 4, device=self.device)
        self._buf_steps: list[tuple[int, int]] = []
        self.history: dict[str, list[float]] = {k: [] for k in ROWS}
        self._t0, self._steps0 = time.perf_counter(), self.step
        # train.adaptive_threads on CPU: adapt the thread count to the machine's load (not reproducible; threads.py)
        tuner = ThreadTuner() if t.adaptive_threads else None  # options.py: CPU, one process, MLP
        self._tuner = tuner if tuner is not None and tuner.enabled else None
        self._threads_before = torch.get_num_threads()
        if self._tuner is not None:
            self._tuner.start()

    def stopping(self) -> bool:
        if self._stop_requested:
            return True
        # Under torchrun every rank must stop at the same step: a signal or a spent time budget only counts once
        # the ranks have agreed on it at a log flush (a rank leaving early would leave the others waiting in an
        # all-reduce).
        if self.dist.enabled:
            return self._stop_agreed or self._time_agreed
        # one clock read per step; at least one step per invocation, so a resumed run always moves on
        return self._stop_signal is not None or (self.step > self._fit_step0 and self._budget.spent())

    def budget_reached(self) -> bool:
        return self._budget.reached or self._time_agreed

    def begin_epoch(self, epoch: int, pos: int) -> None:
        self._perm = epoch_permutation(len(self.data), self.cfg.train.seed, epoch).to(self.device)

    def step_batches(self) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """This step's ``d_steps`` real batches (this rank's shard of each) and their labels, from the epoch's
        permutation (:meth:`begin_epoch`)."""
        B, k = self.cfg.train.batch_size, self.cfg.train.d_steps
        pos = self.step % self.steps_per_epoch
        lo, first = self.dist.rank * self.local_batch, pos * B * k
        idx = [self._perm[first + i * B + lo: first + i * B + lo + self.local_batch] for i in range(k)]
        # index_select: ~8x faster than advanced indexing for a batch of uint8 rows on CPU
        batches = [torch.index_select(self.data.images, 0, j) for j in idx]
        labels = [torch.index_select(self.data.labels, 0, j) for j in idx] if self.cfg.model.cond != "none" else None
        return batches, labels

    def run_step(self) -> None:
        if self._halt is not None and self.step >= self._halt[0] - 1:
            self._fail_nonfinite(self._buf[: len(self._buf_steps)].cpu().tolist(), self._buf_steps)
        self._buf[len(self._buf_steps)] = self.train_step(*self.step_batches())
        self._buf_steps.append((self.step + 1, self.step // self.steps_per_epoch + 1))

    def pending(self) -> int:
        return len(self._buf_steps)

    def flush(self) -> dict[str, float] | None:
        if self._tuner is not None:
            self._tuner.window_done(len(self._buf_steps))
        vals = self._sync_flush(self._buf[: len(self._buf_steps)]).cpu().tolist()  # the only host sync
        steps, self._buf_steps = self._buf_steps, []
        bad = _first_nonfinite(vals, steps)
        if bad is None and not self.state_finite():  # the window's last update broke the weights
            bad = (steps[-1][0], vals[-1], "weights")
        if bad is not None:
            self._rollback(bad)
            return None
        rows = [(s, e, *v) for (s, e), v in zip(steps, vals)]
        if self.steplog is not None:
            self.steplog.append(rows)
        for r in rows:
            for key, v in zip(ROWS, (r[0], *r[2:])):
                self.history[key].append(v)
        self.last_stats = dict(zip(("step", "epoch", "d_loss", "g_loss", "d_real", "d_fake"), rows[-1]))
        self.last_stats["img_per_s"] = ((self.step - self._steps0) * self.cfg.train.batch_size * self.cfg.train.d_steps
                                        / max(time.perf_counter() - self._t0, 1e-9))
        self._good = self.snapshot()
        self._fire("on_log")
        if self._tuner is not None:
            self._tuner.start()
        return self.last_stats

    def _sync_flush(self, vals: torch.Tensor) -> torch.Tensor:
        """Average the buffered per-step values over the ranks and agree on a pending stop signal or budget."""
        if not self.dist.enabled:
            return vals
        flags = torch.tensor([1.0 if self._stop_signal is not None else 0.0, 1.0 if self._budget.spent() else 0.0],
                             device=vals.device)
        packed = torch.cat([vals.flatten(), flags])
        torch.distributed.all_reduce(packed)
        self._stop_agreed, self._time_agreed = bool(packed[-2].item() > 0), bool(packed[-1].item() > 0)
        if self._stop_agreed and self._stop_signal is None:
            self._stop_signal = signal.SIGTERM  # a peer was signalled
        return packed[:-2].view_as(vals) / self.dist.world_size

    def end_epoch(self, epoch: int) -> None:
        t = self.cfg.train
        if t.sample_every and epoch % t.sample_every == 0:
            self.write_grid(f"epoch_{epoch:04d}.png")
        # epoch_N.pt before last.pt: a kill between the two leaves last.pt at the previous epoch, so a resume
        # runs epoch N again and writes the same epoch_N.pt; the other order would skip it for good
        if t.checkpoint_every and epoch % t.checkpoint_every == 0:
            self.save(f"epoch_{epoch:04d}.pt")
        self.save("last.pt")
        self._fire("on_epoch_end")
        if self._tuner is not None and not self._buf_steps:  # time the next window from here, after the I/O
            self._tuner.start()

    def finish(self, interrupted: bool, by_time: bool) -> RunResult:
        if self._buf_steps:  # flush what an interruption left in the buffer, unless it went non-finite
            vals = self._buf[: len(self._buf_steps)].cpu().tolist()
            if _first_nonfinite(vals, self._buf_steps) is None and self.state_finite():
                if self.steplog is not None:
                    self.steplog.append([(s, e, *v) for (s, e), v in zip(self._buf_steps, vals)])
            else:  # never save a non-finite state: back to the last good one; resuming reruns those steps
                self.restore_snapshot(self._good)
                self.log(f"the last {len(self._buf_steps)} steps went non-finite: saving the state of step {self.step}")
        self.save("last.pt")
        if interrupted:
            if self.dist.is_main:
                print(f"gankit: {signal.Signals(self._stop_signal).name} received: stopped at step {self.step}, "
                      f"checkpoint saved; resume with: {resume_in_place(self.run_dir)}", file=sys.stderr, flush=True)
        else:  # a budget stop ends like a finished run (grid, plot), which a resume later overwrites
            self.write_grid("final.png")
            if self.dist.is_main:
                plot_losses(self.run_dir / "log.csv", self.run_dir / "loss.png")
            if by_time:
                self.log(budget.stop_line(self.cfg.train.time_limit, self.step, self.total_steps,  # type: ignore
                                          resume_in_place(self.run_dir), budget.unfinished_schedules(self.cfg)))
        self._fire("on_train_end")
        return RunResult(self.run_dir, self.cfg, self.G, self.D, self.step, self.epoch, self.history, interrupted,
                         by_time)

    # -- the non-finite policy ------------------------------------------------------------------------
    def restore_snapshot(self, snap: dict[str, Any]) -> None:
        super().restore_snapshot(snap)
        if hasattr(self.train_step, "reset"):  # new optimizer state and learning rates: capture again
            self.train_step.reset()

    def _rollback(self, bad: tuple[int, list, str]) -> None:
        """Non-finite loss or weights at step S: restore the last good state and halve the learning rates, a
        bounded number of times. When the retries are spent, replay from the last good state to just before
        step S (at the rates that failed) and stop there: :meth:`_fail_nonfinite`."""
        t = self.cfg.train
        self.restore_snapshot(self._good)
        if self._halt is not None or self._retries >= t.nonfinite_retries:
            if self._halt is not None:  # the replay itself went non-finite earlier (a non-deterministic device)
                self._fail_nonfinite([], [], bad)
            self._halt = bad
            return
        self._retries += 1
        self.lr_scale *= 0.5
        self.apply_lr_scale()
        self.log(f"{_describe(bad)}: rolled back to step {self.step} and halved the learning rates "
                 f"(retry {self._retries} of {t.nonfinite_retries})")

    def _fail_nonfinite(self, vals: list[list[float]], steps: list[tuple[int, int]],
                        bad: tuple[int, list, str] | None = None) -> None:
        """Save the last finite state before the failing step S as ``nonfinite_step_S.pt`` and stop."""
        bad = bad or self._halt
        assert bad is not None
        s = bad[0]
        if self.state_finite():
            if self.steplog is not None and steps:  # the replayed steps before S are finite: log them
                self.steplog.append([(st, e, *v) for (st, e), v in zip(steps, vals)])
        else:
            self.restore_snapshot(self._good)
        path = self.save(f"nonfinite_step_{s}.pt",
                         {"nonfinite": {"step": s, "what": bad[2], "values": [float(x) for x in bad[1]]}})
        raise GankitError(f"{_describe(bad)} after {self._retries} rollbacks with halved learning rates; "
                          f"{path} holds the state step {s} starts from (step {self.step}); try a lower "
                          f"learning rate or another loss")


def _first_nonfinite(vals: list[list[float]], steps: list[tuple[int, int]]) -> tuple[int, list, str] | None:
    for (s, _), v in zip(steps, vals):
        if not all(math.isfinite(x) for x in v):
            return s, v, "loss"
    return None


def _describe(bad: tuple[int, list, str]) -> str:
    s, v, what = bad
    if what == "weights":
        return f"non-finite weights after step {s} (its losses d_loss={v[0]:.4g}, g_loss={v[1]:.4g} were finite)"
    return f"non-finite loss at step {s} (d_loss={v[0]:.4g}, g_loss={v[1]:.4g})"
