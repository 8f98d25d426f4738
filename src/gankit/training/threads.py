"""CPU thread count: fixed for a run by default, adaptive only when asked.

Results on CPU depend on the thread count: MKL/oneDNN pick different blockings of the summed dimension for
different counts, so `(100x784) @ (784x128)` differs by ~6e-5 between 1 and 2 threads on some CPUs, and a GAN
amplifies that into a different run. So the count is part of the run: ``train.threads 0`` takes the process's
default once, the manifest and every checkpoint record it, and ``--resume`` restores it (:func:`resolve`).

``train.adaptive_threads`` (off by default, documented as not reproducible) is for speed next to busy
processes: a tiny model's matmuls split over all cores run fast on a quiet machine, but next to one busy process
every parallel region waits for the thread that shares its core (measured on 2 cores: the seed fell from ~320 to
~56 steps/s at 2 threads, while 1 thread holds most of its speed). :class:`ThreadTuner` times the steps between
log flushes, tries the other count for one window now and then, and keeps the faster. Only matmul-only models
are tuned; the run's results then depend on the machine's load.
"""
from __future__ import annotations

import collections
import statistics
import time

import torch
from torch import nn


def resolve(requested: int, saved: int | None, log) -> int:
    """The thread count a run uses: ``requested`` (train.threads) when set, else the count the run was started
    with (``saved``, from its checkpoint on resume), else the process's current default. Changing the count of
    a resumed run is allowed but said in one line: the continuation is then not bit-identical."""
    if requested > 0:
        if saved is not None and saved != requested:
            log(f"note: train.threads {requested} differs from the {saved} thread(s) this run was trained with; "
                f"CPU results depend on the thread count, so the resumed run will not be bit-identical to an "
                f"uninterrupted one")
        return requested
    return saved if saved is not None and saved > 0 else torch.get_num_threads()


def matmul_only(*modules: nn.Module) -> bool:
    """True when every layer with weights is Linear (or a norm): the small models whose steps the tuner can
    time well (a window of steps is short and steady)."""
    weighted = (m for mod in modules for m in mod.modules() if any(True for _ in m.parameters(recurse=False)))
    allowed = (nn.Linear, nn.LayerNorm, nn.BatchNorm1d, nn.Embedding)
    return all(isinstance(m, allowed) for m in weighted)


class ThreadTuner:
    """Call :meth:`window_done` after each timed window of ``steps`` steps; it may change torch's threads."""

    def __init__(self, every: int = 20, margin: float = 0.1):
        self.high = torch.get_num_threads()
        self.current = self.high
        self.every = every  # windows between probes of the other setting
        self.margin = margin  # switch only when the other setting is this much faster
        self.recent: dict[int, collections.deque] = {}  # thread count -> recent per-step times
        self.windows = 0
        self.probing = False
        self.home = self.high
        self.t0: float | None = None

    @property
    def enabled(self) -> bool:
        return self.high > 1

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def window_done(self, steps: int) -> None:
        if self.t0 is None or steps <= 0:
            return
        per_step = (time.perf_counter() - self.t0) / steps
        self.windows += 1
        if self.probing:  # the probe window just ended: stay only if clearly faster than home's recent median
            self.probing = False
            home = self.recent.get(self.home)
            if home and per_step < statistics.median(home) * (1 - self.margin):
                self.recent[self.current] = collections.deque([per_step], maxlen=5)
            else:
                self._set(self.home)
            return
        self.recent.setdefault(self.current, collections.deque(maxlen=5)).append(per_step)
        if self.windows == 3 or self.windows % self.every == 0:  # windows 1-2 hold warm-up: probe after them
            self.home = self.current
            self.probing = True
            self._set(1 if self.current == self.high else self.high)

    def _set(self, n: int) -> None:
        if n != self.current:
            torch.set_num_threads(n)
            self.current = n
