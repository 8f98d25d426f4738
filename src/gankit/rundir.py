"""The run folder: resolved config and manifest before step 0, per-step log, samples, checkpoints, plots.

The folder is gankit's: a lock (:class:`RunLock`) keeps a second process out while one trains into it,
``--overwrite`` removes only the files gankit writes (and refuses while others are there), and the config and
manifest describe the run as it is now, with each invocation's command line (:func:`write_manifest`).
"""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .config import RunConfig
from .errors import GankitError, option
from .io import atomic_write_text, read_json_object
from .lock import LOCK_FILE, RunLock

LOG_COLUMNS = ("step", "epoch", "d_loss", "g_loss", "d_real", "d_fake")
# What a run (and its hooks: --eval-every, --tensorboard, gankit report; --seeds) writes into its folder, by
# name; anything else there is someone else's.
RUN_FILES = ("log.csv", "loss.png", "manifest.json", "config.json", "metrics.jsonl", "report.html", "ensemble.json")
RUN_FOLDERS = ("samples", "checkpoints", "tensorboard")
_OWN = {
    "": re.compile("|".join(re.escape(n) for n in RUN_FILES)),
    "samples": re.compile(r"(epoch_\d{4,}|final)\.png"),
    "checkpoints": re.compile(r"(last|epoch_\d{4,}|nonfinite_step_\d+)\.pt"),
    "tensorboard": re.compile(r"events\.out\.tfevents\..+"),  # torch.utils.tensorboard's event files
}
_TEMP = re.compile(r"\.(?P<name>.+)\.[^.]+\.tmp")  # io.atomic_write's temporary files: .NAME.XXXXXXXX.tmp
_MEMBER = re.compile(r"seed\d+")  # the member run folders of a --seeds run (OUT/seedS, beside ensemble.json)


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


# -- what is gankit's -----------------------------------------------------------------------------
def _own_name(name: str, pattern: re.Pattern) -> bool:
    m = _TEMP.fullmatch(name)
    return bool(pattern.fullmatch(m["name"] if m else name))


def _eval_report(p: Path) -> bool:
    """A ``gankit eval --json`` report of this run (the README writes ``RUN/eval.json``): a top-level JSON file
    with a ``metrics`` object and the run's integer ``run.step``."""
    if p.suffix != ".json" or p.stat().st_size > 16 * 2**20:
        return False
    try:
        obj = json.loads(p.read_text())
    except (OSError, ValueError):
        return False
    run = obj.get("run") if isinstance(obj, dict) else None
    return (isinstance(obj.get("metrics"), dict) and isinstance(run, dict) and isinstance(run.get("step"), int)
            and not isinstance(run.get("step"), bool))


def run_files(folder: Path, members: bool = True) -> tuple[list[Path], list[Path], list[Path]]:
    """(gankit's files and folders, contents first; everything else; --seeds member folders) in ``folder``.

    Gankit's: the files it writes, by name (:data:`RUN_FILES`; ``samples/epoch_NNNN.png``, ``final.png``;
    ``checkpoints/last.pt``, ``epoch_NNNN.pt``, ``nonfinite_step_N.pt``; ``tensorboard/events.out.tfevents.*``;
    top-level ``gankit eval --json`` reports), their temporary files, the lock, and member folders ``seedN/``
    holding nothing else."""
    own: list[Path] = []
    foreign: list[Path] = []
    member_dirs: list[Path] = []
    for p in sorted(folder.iterdir()):
        if p.name == LOCK_FILE:
            continue
        if p.is_symlink() or not p.is_dir():
            is_own = not p.is_symlink() and p.is_file() and (_own_name(p.name, _OWN[""]) or _eval_report(p))
            (own if is_own else foreign).append(p)
        elif p.name in RUN_FOLDERS:
            for q in sorted(p.iterdir()):
                is_own = not q.is_symlink() and q.is_file() and _own_name(q.name, _OWN[p.name])
                (own if is_own else foreign).append(q)
            own.append(p)
        elif members and _MEMBER.fullmatch(p.name):
            o, f, _ = run_files(p, members=False)
            own += o + [p]
            foreign += f
            member_dirs.append(p)
        else:
            foreign.append(p)
    return own, foreign, member_dirs


def _refuse_foreign(out: Path, foreign: list[Path]) -> None:
    if foreign:
        names = [str(p.relative_to(out)) + ("/" if p.is_dir() else "") for p in foreign[:3]]
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise GankitError(f"{option('--overwrite', 'overwrite=True')}: {out} holds files gankit did not write "
                          f"({', '.join(names)}{more}); move them out of the folder or choose another "
                          f"{option('--out', 'out folder')}")


def _clear(out: Path) -> None:
    """--overwrite: refuse while ``out`` holds anything gankit did not write, else remove what it wrote."""
    own, foreign, members = run_files(out)
    _refuse_foreign(out, foreign)
    locks = [RunLock(m) for m in members]  # a member folder being trained into is not ours to delete
    try:
        for p in own:
            if p.is_dir() and not p.is_symlink():
                lock = p / LOCK_FILE
                if p in members and lock.exists():
                    lock.unlink()
                p.rmdir()
            else:
                p.unlink()
    except OSError as e:
        raise GankitError(f"{option('--overwrite', 'overwrite=True')}: cannot remove the old run's files in {out}: "
                          f"{e.strerror}") from None
    finally:
        for lk in locks:
            lk.release()


def check_out_free(out: Path, overwrite: bool, resume: bool) -> None:
    """Refuse ``out`` as :func:`prepare_run_dir` would, writing nothing: not a folder, already holding files
    (unless overwriting or resuming), holding others' files (overwriting), in use by another process. The
    Trainer runs this before it loads (or downloads) the data; :func:`prepare_run_dir` runs it again."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise GankitError(f"{option(f'--out {out}', f'out={str(out)!r}')} exists and is not a folder")
    if overwrite and resume:
        flag = option("--overwrite", "overwrite=True")
        raise GankitError(f"{flag} would delete the run that {option('--resume', 'resume')} continues ({out}); "
                          f"drop {flag}")
    if not out.is_dir():
        return
    if any(p.name != LOCK_FILE for p in out.iterdir()) and not (overwrite or resume):
        raise GankitError(f"{option(f'--out {out}', f'out={str(out)!r}')} already holds files; choose a new "
                          f"folder, pass {option('--overwrite', 'overwrite=True')} to replace them, or "
                          f"{option(f'--resume {out}', 'resume=True')} to continue that run")
    if resume:
        check_step_log(out / "log.csv")  # StepLog continues it once the folder is locked: refuse it before
    if overwrite:
        _refuse_foreign(out, run_files(out)[1])
    if (out / LOCK_FILE).exists():  # another process may be training into it: take the lock and give it back
        RunLock(out).release()


def prepare_run_dir(out: Path, overwrite: bool, resume: bool) -> RunLock:
    """Create and lock ``out``; an existing non-empty folder is refused unless overwriting or resuming.

    Returns the lock, held until released (:meth:`RunLock.release`) or the process ends."""
    out = Path(out).expanduser()
    check_out_free(out, overwrite, resume)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GankitError(f"cannot create run folder {out}: {e.strerror}") from None
    lock = RunLock(out)  # before anything in the folder is touched
    try:
        if overwrite:
            _clear(out)
        if resume:  # temporary files a killed writer left behind (the files they were replacing are intact)
            for stale in list(out.glob(".*.tmp")) + list(out.glob("*/.*.tmp")):
                if stale.parent == out or stale.parent.name in RUN_FOLDERS:
                    if _own_name(stale.name, _OWN["" if stale.parent == out else stale.parent.name]):
                        stale.unlink()
        try:
            for sub in ("samples", "checkpoints"):
                (out / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise GankitError(f"cannot create run folder {out}: {e.strerror}") from None
    except BaseException:
        lock.release()
        raise
    return lock


# -- the folder's description ---------------------------------------------------------------------
def checkpoint_home(source: Path, ckpt: Path) -> Path | None:
    """The run folder that ``ckpt`` (resolved from ``source``) belongs to: ``source`` when it is a folder,
    ``RUN`` for ``RUN/checkpoints/NAME.pt`` beside ``RUN/config.json``; None for a checkpoint anywhere else."""
    if Path(source).is_dir():
        return Path(source)
    if ckpt.parent.name == "checkpoints" and (ckpt.parent.parent / "config.json").is_file():
        return ckpt.parent.parent
    return None


def resume_in_place(run: Path) -> str:
    """How to continue the run in ``run``, as the user's interface (CLI or Python API) spells it."""
    return option(f"gankit train --resume {run}", f"gankit.train(out={str(run)!r}, resume=True)")


def resume_elsewhere(ckpt: Path) -> str:
    """How to continue from the checkpoint ``ckpt`` in a new run folder, as the user's interface spells it."""
    return option(f"gankit train --resume {ckpt} --out NEW", f"gankit.train(out=NEW, resume={str(ckpt)!r})")


def check_checkpoint_of_run(ckpt: Path, saved: RunConfig, run: Path) -> None:
    """Refuse a checkpoint whose preset, model, data, loss or optimizer settings differ from the run folder's
    ``config.json`` (another run's checkpoint copied in). An unreadable config.json is not checked."""
    try:
        cfg = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    except (OSError, ValueError, TypeError, GankitError):
        return
    for section in ("preset", "model", "data", "loss", "optim"):
        if getattr(cfg, section) != getattr(saved, section):
            what = f"preset ({saved.preset}) differs" if section == "preset" else f"{section} settings differ"
            raise GankitError(f"{ckpt} is not this run's checkpoint: its {what} from "
                              f"{run / 'config.json'}; put the run's own checkpoint back, or continue from this one "
                              f"in a new folder: {resume_elsewhere(ckpt)}")


def write_manifest(out: Path, cfg_json: str, extra: dict[str, Any], *, resumed_at: int | None = None,
                   resumed_from: str | os.PathLike | None = None) -> None:
    """``config.json`` (the config as it is now) and ``manifest.json``: versions, git revision, platform and
    ``extra`` as of this invocation (``argv`` the latest command line, ``started`` the run's first start), and
    ``invocations``: each start and resume with its command line, time, step and budget.

    ``resumed_at``: the step a resume starts from; ``resumed_from``: the checkpoint a new folder continues."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    rev = git_revision()
    this: dict[str, Any] = {"argv": sys.argv, "started": now, "step": resumed_at or 0,
                            "total_steps": extra.get("total_steps"), "git_revision": rev}
    if resumed_from is not None:
        this["resumed_from"] = str(resumed_from)
    old = read_json_object(out / "manifest.json") if resumed_at is not None and resumed_from is None else {}
    old.pop("ensemble", None)  # an ensemble adds its own, as it is now
    history = old.get("invocations")
    if not isinstance(history, list):  # a manifest from before invocations were kept: its first start
        history = [{k: old[k] for k in ("argv", "started", "total_steps", "git_revision") if k in old} | {"step": 0}
                   ] if old else []
    manifest = {
        **old,
        "argv": sys.argv,
        "started": old.get("started", now),
        "git_revision": rev,
        "versions": versions(),
        "platform": platform.platform(),
        **({"resumed_from": str(resumed_from)} if resumed_from is not None else {}),
        **extra,
        "invocations": history + [this],
    }
    atomic_write_text(out / "config.json", cfg_json + "\n")
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")


def check_step_log(path: Path) -> None:
    """Refuse a ``log.csv`` that :class:`StepLog` cannot continue on resume (a folder, binary data), in one line
    and before anything in the run folder changes."""
    fix = "move it away to resume (a new log then starts at the checkpoint's step)"
    if path.is_dir():
        raise GankitError(f"{path} is a folder, not the run's step log; {fix}")
    try:
        path.read_text()
    except FileNotFoundError:
        return
    except UnicodeDecodeError:
        raise GankitError(f"{path}: not a text file (damaged?); {fix}") from None
    except OSError as e:
        raise GankitError(f"{path}: cannot read it ({e.strerror or e}); {fix}") from None


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
    from .io import atomic_write_bytes

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
