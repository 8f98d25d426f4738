"""A wall-clock budget for one training invocation (``train.time_limit``, ``gankit train --time 10m``).

The budget counts from the start of ``fit`` in this process; a resumed run gets a fresh one (its own
``--time``, or none). It only decides *where* the run stops, at a step boundary, never what a step computes:
stopping at step S and resuming to T gives the same weights as training to T at once. Schedules stay defined
by the step budget (``train.steps``/``train.epochs``): a linear lr decay stopped early has not reached 0, and
the stop line says so.
"""
from __future__ import annotations

import math
import re
import time

from ..config import MAX_TIME_LIMIT
from ..errors import GankitError

# The clock the loops read; tests replace it to force a stop at a chosen step without waiting.
clock = time.monotonic

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """``"90s"`` -> 90.0, ``"10m"`` -> 600.0, ``"1.5h"`` -> 5400.0, ``"120"`` -> 120.0 (seconds). Raises a
    one-line :class:`GankitError` for anything else, or a duration outside (0, MAX_TIME_LIMIT]."""
    m = _DURATION.match(str(text))
    if m is None:
        raise GankitError(f"--time {text!r}: expected a duration like 90s, 10m, 1.5h or plain seconds")
    seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not 0 < seconds <= MAX_TIME_LIMIT:
        raise GankitError(f"--time {text!r}: must be more than 0 and at most {MAX_TIME_LIMIT / 86400:.0f} days")
    return seconds


def format_duration(seconds: float) -> str:
    """The short form of a budget: 90 -> ``90s``, 600 -> ``10m``, 5400 -> ``1.5h``."""
    hours = seconds / 3600
    if hours >= 1 and math.isclose(round(hours * 10), hours * 10):
        return f"{hours:g}h"
    if seconds >= 60 and math.isclose(round(seconds / 60), seconds / 60):
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


class TimeBudget:
    """``spent()`` turns True once ``seconds`` have passed since construction (and stays True); ``seconds`` None
    is no budget. One clock read per call: cheap enough for every step."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.start = clock() if seconds is not None else 0.0
        self.reached = False

    def spent(self) -> bool:
        if self.seconds is not None and not self.reached:
            self.reached = clock() - self.start >= self.seconds
        return self.reached


def stop_line(seconds: float, step: int, total: int, resume: str, schedules: list[str]) -> str:
    """The one line a run stopped by its budget prints: where it stopped, how to continue, and which schedules
    (defined over the ``total`` steps) it left unfinished."""
    line = (f"gankit: time budget {format_duration(seconds)} reached at step {step} of {total}; "
            f"continue with: {resume}")
    if schedules and step < total:
        line += f" ({' and '.join(schedules)} {'is' if len(schedules) == 1 else 'are'} defined over {total} steps; " \
                f"resume to finish {'it' if len(schedules) == 1 else 'them'})"
    return line


def unfinished_schedules(cfg) -> list[str]:
    """The parts of ``cfg`` (a RunConfig) that change with the fraction of ``total_steps`` done."""
    out = []
    if cfg.optim.lr_schedule != "constant":
        out.append(f"lr schedule {cfg.optim.lr_schedule}")
    if cfg.loss.instance_noise > 0:
        out.append("the instance-noise decay")
    return out
