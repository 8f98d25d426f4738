"""Adaptive CPU thread count for the matmul-only models (the seed MLP, the toy nets).

A tiny model's matmuls split over all cores run fast on a quiet machine, but next to one busy process every
parallel region waits for the thread that shares its core: measured on 2 cores, the seed fell from ~320 to
~56 steps/s at 2 threads, while 1 thread holds most of its speed. So with ``train.threads 0`` gankit times the
steps between log flushes, tries the other thread count for one window now and then, and keeps the faster.

Only for models made of Linear layers: PyTorch's CPU matmuls split rows and columns, not the summed dimension,
so their results do not depend on the thread count (a test checks this for the seed); convolutions do depend
on it, so conv models keep one fixed thread count and stay bit-reproducible.
"""
from __future__ import annotations

import collections
import statistics
import time

import torch
from torch import nn


def matmul_only(*modules: nn.Module) -> bool:
    """True when every layer with weights is Linear (or a norm), so results are thread-count invariant."""
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
