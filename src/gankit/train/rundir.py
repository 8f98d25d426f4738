"""The run folder: resolved config and manifest before step 0, per-step log, samples, checkpoints, plots."""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..errors import GankitError
from ..io import atomic_write_text

LOG_COLUMNS = ("step", "epoch", "d_loss", "g_loss", "d_real", "d_fake")
# What a run (and its hooks: --eval-every, --tensorboard, gankit report) writes into its folder.
RUN_FILES = ("log.csv", "loss.png", "manifest.json", "config.json", "metrics.jsonl", "report.html")
RUN_FOLDERS = ("samples", "checkpoints", "tensorboard")


def git_revision() -> str | None:
    """The git commit of the gankit source tree, when it runs from a checkout."""
    src = Path(__file__).resolve().parents[3]
    try:
        out = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    rev = out.stdout.strip()
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    return rev + ("-dirty" if dirty else "")


def versions() -> dict[str, str]:
    import numpy

    return {"gankit": __version__, "torch": str(torch.__version__), "numpy": numpy.__version__,
            "python": platform.python_version()}


def prepare_run_dir(out: Path, overwrite: bool, resume: bool) -> Path:
    """Create ``out``; an existing non-empty folder is refused unless overwriting or resuming."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise GankitError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (overwrite or resume):
        raise GankitError(f"--out {out} already holds files; choose a new folder, pass --overwrite to replace "
                          f"them, or --resume {out} to continue that run")
    if overwrite and out.is_dir():  # remove what a run writes (and only that): nothing stale mixes in
        import shutil

        for sub in RUN_FOLDERS:
            if (out / sub).is_dir():
                shutil.rmtree(out / sub)
        for name in RUN_FILES:
            if (out / name).exists():
                (out / name).unlink()
    if resume:  # temporary files a killed writer left behind (the files they were replacing are intact)
        for stale in list(out.glob(".*.tmp")) + list(out.glob("*/.*.tmp")):
            stale.unlink()
    try:
        for sub in ("", "samples", "checkpoints"):
            (out / sub).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GankitError(f"cannot create run folder {out}: {e.strerror}") from None
    return out


def write_manifest(out: Path, cfg_json: str, extra: dict[str, Any]) -> None:
    manifest = {
        "argv": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_revision": git_revision(),
        "versions": versions(),
        "platform": platform.platform(),
        **extra,
    }
    atomic_write_text(out / "config.json", cfg_json + "\n")
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")


class StepLog:
    """Appends rows of per-step values to ``log.csv``; the header is written once."""

    def __init__(self, path: Path, start_step: int = 0):
        self.path = path
        if start_step == 0 or not path.exists():
            atomic_write_text(path, ",".join(LOG_COLUMNS) + "\n")
        else:
            self._truncate_after(start_step)

    def _truncate_after(self, step: int) -> None:
        """On resume, drop rows logged after the checkpoint's step (they will be logged again)."""
        lines = self.path.read_text().splitlines()
        keep = [lines[0]] if lines else [",".join(LOG_COLUMNS)]
        for ln in lines[1:]:
            parts = ln.split(",")
            try:  # a kill mid-append can leave a torn last line: drop it (its step is re-run)
                complete = len(parts) == len(LOG_COLUMNS) and all(p != "" for p in parts)
                if complete and [float(p) for p in parts] and int(parts[0]) <= step:
                    keep.append(ln)
            except ValueError:
                continue
        atomic_write_text(self.path, "\n".join(keep) + "\n")

    def append(self, rows: list[tuple]) -> None:
        try:
            with open(self.path, "a") as f:
                for r in rows:
                    f.write(f"{r[0]},{r[1]}," + ",".join(f"{v:.6g}" for v in r[2:]) + "\n")
        except OSError as e:
            import errno

            what = "the disk is full" if e.errno == errno.ENOSPC else e.strerror
            raise GankitError(f"cannot append to {self.path}: {what}; the last checkpoint is unchanged") from None


def read_log(path: Path) -> dict[str, list[float]]:
    """The step log as columns."""
    lines = Path(path).read_text().splitlines()
    header = lines[0].split(",")
    cols: dict[str, list[float]] = {h: [] for h in header}
    for ln in lines[1:]:
        if not ln:
            continue
        for h, v in zip(header, ln.split(",")):
            cols[h].append(float(v))
    return cols


def plot_losses(log_path: Path, out_png: Path) -> Path | None:
    """Loss and D-output curves from ``log.csv``; None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    cols = read_log(log_path)
    if not cols["step"]:
        return None
    import numpy as np

    def smooth(v: list[float]) -> np.ndarray:
        a = np.asarray(v)
        k = max(1, len(a) // 100)
        return np.convolve(a, np.ones(k) / k, mode="valid") if k > 1 else a

    steps = np.asarray(cols["step"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, label in (("d_loss", "D loss"), ("g_loss", "G loss")):
        s = smooth(cols[key])
        ax1.plot(steps[len(steps) - len(s):], s, label=label)
    ax1.set_xlabel("step")
    ax1.set_title("losses")
    ax1.legend()
    for key, label in (("d_real", "mean D(x)"), ("d_fake", "mean D(G(z))")):
        s = smooth(cols[key])
        ax2.plot(steps[len(steps) - len(s):], s, label=label)
    ax2.axhline(0.5, color="gray", lw=0.8, ls="--")
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("step")
    ax2.set_title("discriminator outputs")
    ax2.legend()
    fig.tight_layout()
    import io as _io

    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    from ..io import atomic_write_bytes

    return atomic_write_bytes(out_png, buf.getvalue())


class Progress:
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
