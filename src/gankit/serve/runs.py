"""Run folders the studio serves: discovery under a root, lazy loading, reload on a new checkpoint, cards.

Requests name a run by its *id* (its folder relative to the root, e.g. ``fm`` or ``sweep/lr1e-3``), which is
only ever looked up in the table built at start-up: no string from a request is joined to a path.
"""
from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GankitError

MAX_DEPTH = 3  # how deep below RUNS_ROOT run folders are looked for
MAX_RUNS = 500


@dataclass
class Run:
    """One servable checkpoint. ``run_dir`` is None for a bare checkpoint file outside a run folder."""

    id: str
    checkpoint: Path
    run_dir: Path | None
    _gen: Any = None
    _version: tuple[int, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def version(self) -> tuple[int, int]:
        """(mtime_ns, size) of the checkpoint: a new file (the run trained on) means a new version."""
        try:
            st = self.checkpoint.stat()
        except OSError:
            raise GankitError(f"run {self.id!r}: its checkpoint is gone") from None
        return st.st_mtime_ns, st.st_size

    def generator(self):
        """The :class:`~gankit.api.LoadedGenerator`, loaded on first use and again when the file changes."""
        from ..api import load

        version = self.version()
        with self._lock:
            if self._gen is None or self._version != version:
                self._gen = load(self.checkpoint)
                self._version = version
            return self._gen


def _is_run_dir(p: Path) -> bool:
    return (p / "checkpoints" / "last.pt").is_file()


def discover(path: str | os.PathLike) -> dict[str, Run]:
    """Runs to serve from a checkpoint file, a run folder, or a folder holding run folders (up to
    ``MAX_DEPTH`` levels down). Ids are folder paths relative to the root, sorted."""
    root = Path(path).expanduser()
    if root.is_file():
        parent = root.parent.parent if root.parent.name == "checkpoints" else None
        run_dir = parent if parent is not None and (parent / "config.json").is_file() else None
        name = run_dir.name if run_dir is not None else root.stem
        return {name: Run(name, root, run_dir)}
    if not root.is_dir():
        raise GankitError(f"{root}: no such file or folder; give a run folder, a checkpoint or a folder of runs")
    if _is_run_dir(root):
        name = root.resolve().name or "run"
        return {name: Run(name, root / "checkpoints" / "last.pt", root)}
    found: dict[str, Run] = {}
    frontier = [root]
    for _ in range(MAX_DEPTH):
        nxt = []
        for folder in frontier:
            try:
                children = sorted(c for c in folder.iterdir() if c.is_dir() and not c.name.startswith("."))
            except OSError:
                continue
            for c in children:
                if _is_run_dir(c):
                    rid = c.relative_to(root).as_posix()
                    found[rid] = Run(rid, c / "checkpoints" / "last.pt", c)
                else:
                    nxt.append(c)
        frontier = nxt
        if len(found) > MAX_RUNS:
            raise GankitError(f"{root} holds more than {MAX_RUNS} runs; serve a smaller folder")
    if not found:
        raise GankitError(f"{root}: no run folders (with checkpoints/last.pt) in it or {MAX_DEPTH} levels below")
    return dict(sorted(found.items()))


def num_classes(gen) -> int:
    """Classes a conditional generator takes (``model.num_classes``; 0 for an unconditional one)."""
    model = gen.config.model
    if getattr(model, "cond", "none") == "none":
        return 0
    return int(getattr(model, "num_classes", 0) or 0)


def read_metrics(run_dir: Path | None) -> list[dict[str, Any]]:
    """Rows of ``metrics.jsonl`` (one JSON object per evaluation, with ``step``); bad lines are skipped."""
    if run_dir is None:
        return []
    path = run_dir / "metrics.jsonl"
    rows = []
    try:
        text = path.read_text()
    except OSError:
        return []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), (int, float)):
            rows.append(row)
    return sorted(rows, key=lambda r: r["step"])


def _read_json(path: Path) -> dict[str, Any]:
    try:
        out = json.loads(path.read_text())
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


def card(run: Run) -> dict[str, Any]:
    """The model card: what was trained on what, for how long, and how it scored (JSON-ready)."""
    gen = run.generator()
    manifest = _read_json(run.run_dir / "manifest.json") if run.run_dir else {}
    cfg = gen.config
    dataset = manifest.get("dataset", {}) if isinstance(manifest.get("dataset"), dict) else {}
    metrics = read_metrics(run.run_dir)
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
        "metrics": metrics[-1] if metrics else None,
        "metrics_history": metrics,
        "config": cfg.to_dict(),
    })
