"""Run folders the studio serves: discovery under a root, lazy loading, reload on a new checkpoint, cards.

Requests name a run by its *id* (its folder relative to the root, e.g. ``fm`` or ``sweep/lr1e-3``), which is
only ever looked up in the table built at start-up: no string from a request is joined to a path. Links are
not followed out of the served folder: a run folder, checkpoint or evaluation file whose real path is outside
it is skipped at start-up and refused if a link appears later.
"""
from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import GankitError
from .evals import read_evaluations

MAX_DEPTH = 3  # how deep below RUNS_ROOT run folders are looked for
MAX_RUNS = 500


@dataclass
class Run:
    """One servable checkpoint. ``run_dir`` is None for a bare checkpoint file outside a run folder; ``root``
    (resolved) is the served folder, which the checkpoint and the files read from ``run_dir`` must stay in
    (None: a checkpoint file named on the command line, served as given)."""

    id: str
    checkpoint: Path
    run_dir: Path | None
    root: Path | None = None
    _gen: Any = None
    _version: tuple[int, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def version(self) -> tuple[int, int]:
        """(mtime_ns, size) of the checkpoint: a new file (the run trained on) means a new version."""
        if self.root is not None and not _inside(self.checkpoint, self.root):
            raise GankitError(f"run {self.id!r}: its checkpoint links outside the served folder; not served")
        try:
            st = self.checkpoint.stat()
        except OSError:
            raise GankitError(f"run {self.id!r}: its checkpoint is gone") from None
        return st.st_mtime_ns, st.st_size

    def generator(self):
        """The :class:`~gankit.generator.LoadedGenerator`, loaded on first use and again when the file changes."""
        from ..generator import load

        version = self.version()
        with self._lock:
            if self._gen is None or self._version != version:
                self._gen = load(self.checkpoint)
                self._version = version
            return self._gen


def _is_run_dir(p: Path) -> bool:
    return (p / "checkpoints" / "last.pt").is_file()


def _inside(path: Path, root: Path) -> bool:
    """Whether the real path of ``path`` (links followed) is ``root`` or below it."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False


def discover(path: str | os.PathLike, log: Callable[[str], None] | None = None) -> dict[str, Run]:
    """Runs to serve from a checkpoint file, a run folder, or a folder holding run folders (up to
    ``MAX_DEPTH`` levels down). Ids are folder paths relative to the root, sorted. Folders and checkpoints
    that link outside the root are skipped, each with a line to ``log``."""
    root = Path(path).expanduser()
    if root.is_file():
        parent = root.parent.parent if root.parent.name == "checkpoints" else None
        run_dir = parent if parent is not None and (parent / "config.json").is_file() else None
        name = run_dir.name if run_dir is not None else root.stem
        return {name: Run(name, root, run_dir)}
    if not root.is_dir():
        raise GankitError(f"{root}: no such file or folder; give a run folder, a checkpoint or a folder of runs")
    real_root = root.resolve()
    say = log or (lambda _msg: None)
    if _is_run_dir(root):
        if not _inside(root / "checkpoints" / "last.pt", real_root):
            raise GankitError(f"{root}: checkpoints/last.pt links outside the run folder; serve the folder it "
                              f"links to, or copy the checkpoint in")
        name = real_root.name or "run"
        return {name: Run(name, root / "checkpoints" / "last.pt", root, real_root)}
    found: dict[str, Run] = {}
    skipped = 0
    frontier = [root]
    for _ in range(MAX_DEPTH):
        nxt = []
        for folder in frontier:
            try:
                children = sorted(c for c in folder.iterdir() if c.is_dir() and not c.name.startswith("."))
            except OSError:
                continue
            for c in children:
                rid = c.relative_to(root).as_posix()
                if not _inside(c, real_root):
                    skipped += 1
                    say(f"skipping {rid}: a link to a folder outside {root}")
                elif _is_run_dir(c):
                    if _inside(c / "checkpoints" / "last.pt", real_root):
                        found[rid] = Run(rid, c / "checkpoints" / "last.pt", c, real_root)
                    else:
                        skipped += 1
                        say(f"skipping {rid}: its checkpoints/last.pt links outside {root}")
                else:
                    nxt.append(c)
        frontier = nxt
        if len(found) > MAX_RUNS:
            raise GankitError(f"{root} holds more than {MAX_RUNS} runs; serve a smaller folder")
    if not found:
        links = f" ({skipped} linking outside it skipped)" if skipped else ""
        raise GankitError(f"{root}: no run folders (with checkpoints/last.pt) in it or {MAX_DEPTH} levels "
                          f"below{links}")
    return dict(sorted(found.items()))


def num_classes(gen) -> int:
    """Classes a conditional generator takes (``model.num_classes``; 0 for an unconditional one)."""
    model = gen.config.model
    if getattr(model, "cond", "none") == "none":
        return 0
    return int(getattr(model, "num_classes", 0) or 0)


def _read_json(run: Run, name: str) -> dict[str, Any]:
    """A JSON object from the run folder ({} when missing, damaged, not an object or linking outside)."""
    if run.run_dir is None:
        return {}
    path = run.run_dir / name
    if run.root is not None and not _inside(path, run.root):
        return {}
    try:
        out = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def _finite(v: Any) -> Any:
    """JSON has no NaN/Infinity: such numbers become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v


def evaluations(run: Run, lang: str = "en") -> list[dict[str, Any]]:
    """Every score of every evaluation of the run (rows of :func:`gankit.serve.evals.read_evaluations`),
    labelled in ``lang``."""
    return read_evaluations(run.run_dir, run.root, lang)


def card(run: Run, lang: str = "en") -> dict[str, Any]:
    """The model card: what was trained on what, for how long, and how it scored (JSON-ready; the scores'
    labels in ``lang``)."""
    gen = run.generator()
    manifest = _read_json(run, "manifest.json")
    cfg = gen.config
    dataset = manifest.get("dataset", {}) if isinstance(manifest.get("dataset"), dict) else {}
    k = num_classes(gen)
    return _finite({
        "run": run.id,
        "preset": cfg.preset,
        "dataset": dataset.get("name", cfg.data.name),
        "dataset_size": dataset.get("size"),
        "arch": cfg.model.arch,
        "z_dim": cfg.model.z_dim,
        "img_shape": list(gen.img_shape),
        "step": gen.step,
        "total_steps": manifest.get("total_steps"),
        "parameters": manifest.get("parameters"),
        "conditional": k > 0,
        "num_classes": k,
        "started": manifest.get("started"),
        "git_revision": manifest.get("git_revision"),
        "evaluations": evaluations(run, lang),
        "config": cfg.to_dict(),
    })
