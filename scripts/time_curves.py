"""Best samples per CPU-minute (issue #19): each image preset trained on Fashion-MNIST under wall-clock budgets,
each longer budget resuming the shorter run, every point scored with the pinned evaluator.

    python scripts/time_curves.py                      # the whole protocol: hours of CPU, resumable
    python scripts/time_curves.py --max-minutes 90     # a slice: no new training after 90 min; rerun to continue
    python scripts/time_curves.py --cached             # the docs from docs/zoo/time_runs.json alone, no training
    python scripts/time_curves.py --dry-run            # the plan and its estimated minutes
    python scripts/time_curves.py --device cuda --order chain --max-minutes 8   # the GPU row (15s, 60s, 5m)

Each preset trains as ``gankit train --preset P --time B`` would (its own config; only data.name, train.seed,
train.device cpu and --override changed) in ``RUNS/PRESET/seedS``. Seed 0 runs every budget: the 2m point
resumes the 1m run with ``train.time_limit`` 2m - 1m, and so on (gankit stops at a step boundary and a resume
continues exactly, training/budget.py); ``checkpoints/at_2m.pt`` keeps each point. The
other seeds of ``--seeds-at 5m:3`` train straight to their budget. Each point keeps its preset's config
fingerprint: when a preset changes, its points are dropped and trained again (``--retrain P`` forces it).
G (G_ema where kept) then draws --n-samples samples scored by the pinned evaluator: FD, KID, precision/recall
(k 3), classes.

Written beside --doc (docs/ZOO.md): ``zoo/time_runs.json``, every point with its scores, steps, seconds, the
load average around it and the machine; it is the source of truth, so a rerun skips what it holds (a session
can stop anywhere: a half-trained point is retrained from the previous point's checkpoint). ``zoo/time_curves.png``
(FD and recall against minutes), ``zoo/time-PRESET.png`` (the samples at the spread budget, seed 0), and the
region of --doc between ``<!-- time-curves:start -->`` and ``<!-- time-curves:end -->`` (created at the end
under its own heading when absent; the rest of the file is kept byte for byte).

``--device cuda`` is the GPU row: the same presets and scores at 15 s, 60 s and 5 min of training on the GPU
(three seeds at 60 s), in files and a region of their own (``zoo/time_runs_cuda.json``, ``zoo/time_curves_cuda.png``,
``zoo/time_cuda-PRESET.png``, ``<!-- time-curves-cuda:start -->``), so the CPU table is never touched. With
``--order chain`` each preset's seed-0 chain runs whole before the next preset starts, and under --max-minutes a
chain that cannot finish in the time left is not started: a session on a machine lent for minutes, whose run
folders do not outlive it, leaves only finished chains (the JSON carries them to the next session).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import sys
import threading
import time
from pathlib import Path

import torch

import gankit
from gankit.config import DataConfig, RunConfig, all_keys, list_presets, preset_config
from gankit.errors import GankitError
from gankit.io import atomic_write_text, replace_marked
from gankit.training import accel
from gankit.training.budget import format_duration, parse_duration

PRESETS = "seed,seed-plus,dcgan-mnist,wgan-gp-mnist,cgan-mnist,r3gan-mnist,quick-mnist"
METRICS = "fd,kid,pr,classes"  # sized by --n-samples: fd10k, kid10k, pr10k_k3, classes10k
START, END = "<!-- time-curves:start -->", "<!-- time-curves:end -->"
HEADING = "## Best samples per CPU-minute"
# the defaults of --budgets and --seeds-at: the CPU table (issue #19's protocol), and the GPU row
DEFAULTS = {"cpu": ("1m,2m,5m,10m,30m", "5m:3"), "gpu": ("15s,60s,5m", "60s:3")}


def row(device: str) -> dict:
    """What the points of ``device`` are called: the CPU table keeps its names, another device's row gets its own
    JSON, plot, grids, doc region and heading (``kind``: ``cpu``, ``cuda``...)."""
    kind = torch.device(device).type
    if kind == "cpu":
        return {"kind": kind, "suffix": "", "grid": "time-", "start": START, "end": END, "heading": HEADING}
    return {"kind": kind, "suffix": f"_{kind}", "grid": f"time_{kind}-", "start": f"<!-- time-curves-{kind}:start -->",
            "end": f"<!-- time-curves-{kind}:end -->", "heading": f"## Best samples per GPU-minute ({kind})"}
GRID_N = 64
# --dry-run's estimate, measured on the 2-core machine (December): a 10k-sample score takes 35-40 s for the MLP
# and DCGAN presets and ~2 min for r3gan-mnist (sampling G); the real side (test features, floor) ~1 min once.
SCORE_S_PER_10K, REAL_SIDE_S, SETUP_S = 60.0, 60.0, 5.0
SCORE_S_PER_10K_GPU = 15.0  # a guess until a GPU session measures it (sampling and features on the device)
# argv flags that choose what this session does, not what the numbers are: left out of the command in the doc
SESSION_FLAGS = {"--cached": 0, "--dry-run": 0, "--max-minutes": 1, "--retrain": 1, "--order": 1}


def _quiet(*_):
    pass


def _points(n: int) -> str:
    return f"{n} point{'s' if n != 1 else ''}"


def _say(msg: str) -> None:
    print(f"time_curves: {msg}", flush=True)


# ---------------------------------------------------------------------------------------------------------------
# The plan: which (preset, seed, budget) points, and which earlier point each one resumes.

def parse_seeds_at(text: str, budgets: list[float]) -> dict[float, int]:
    """``"5m:3"`` -> {300.0: 3}; each budget must be one of ``budgets``; ``""`` -> {} (one seed everywhere)."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        when, _, n = item.partition(":")
        b = parse_duration(when)
        if b not in budgets:
            raise GankitError(f"--seeds-at {item}: {format_duration(b)} is not one of --budgets; add it there or "
                              f"pass --seeds-at ''")
        if not n.isdigit() or int(n) < 1:
            raise GankitError(f"--seeds-at {item}: expected BUDGET:SEEDS with SEEDS >= 1, e.g. 5m:3")
        out[b] = int(n)
    return out


def chain(seed: int, budgets: list[float], seeds_at: dict[float, int]) -> list[float]:
    """The budgets one (preset, seed) run stops at, in order: all of them for seed 0; for seed s > 0 those where
    --seeds-at asks for more than s seeds (trained straight there)."""
    return [b for b in budgets if seed == 0 or seed < seeds_at.get(b, 1)]


def plan(presets: list[str], budgets: list[float], seeds_at: dict[float, int], order: str = "budget"
         ) -> list[tuple[str, int, float]]:
    """Every point. ``order`` "budget": shortest budget first, so a slice leaves whole budgets done; "chain": preset
    by preset, seed by seed, each run's budgets in a row, so a slice leaves whole runs done."""
    seeds = range(max([1, *seeds_at.values()]))
    if order == "chain":
        return [(p, s, b) for p in presets for s in seeds for b in chain(s, budgets, seeds_at)]
    return [(p, s, b) for b in budgets for p in presets for s in seeds if b in chain(s, budgets, seeds_at)]


def key(preset: str, seed: int, budget: float) -> str:
    return f"{preset}/seed{seed}/{format_duration(budget)}"


def at_name(budget: float) -> str:
    return f"at_{format_duration(budget)}.pt"


# ---------------------------------------------------------------------------------------------------------------
# The machine and its load.

def machine(device: str = "cpu") -> dict:
    """The CPU, its cores, the system and versions; on a CUDA ``device``, the GPU's name too."""
    cpu = accel.cpu_info()[0]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    gpu = torch.cuda.get_device_name(torch.device(device)) if torch.device(device).type == "cuda" else None
    return {"cpu": cpu, "cores": cores, "gpu": gpu, "system": platform.platform(terse=True),
            "torch": torch.__version__, "gankit": gankit.__version__}


class LoadWatch:
    """The 1-minute load average before a timed run, every ``every`` seconds during it, and after it."""

    def __init__(self, every: float = 5.0):
        self.every, self.during = every, []
        self.before = list(os.getloadavg())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            self.during.append(os.getloadavg()[0])

    def done(self) -> dict:
        self._stop.set()
        self._thread.join()
        after = list(os.getloadavg())
        # the load the run itself saw: what was sampled while it trained and the minute that ended with it
        return {"load_before": self.before, "load_after": after, "load_max_1m": max([*self.during, after[0]])}


# ---------------------------------------------------------------------------------------------------------------
# Training one point.

def base_config(args, preset: str, seed: int):
    return preset_config(preset).with_overrides({
        "data.name": args.dataset, "train.seed": seed, "data.seed": seed, "train.device": args.device,
        "train.threads": args.threads, "train.progress": False, "train.sample_every": 0,
        "train.checkpoint_every": 0, **args.overrides})


def config_keys() -> list[str]:
    """Every dotted key of a run's config (``train.seed``, ``preset``...), sorted."""
    return sorted(all_keys())


def _flat(d: dict) -> dict:
    return {f"{s}.{k}" if isinstance(sub, dict) else s: v for s, sub in d.items()
            for k, v in (sub.items() if isinstance(sub, dict) else [(None, sub)])}


def fingerprint(args, preset: str, keys: list[str] | None = None) -> str | None:
    """The first 16 hex digits of the SHA-256 of ``preset``'s config as this script trains it (seed 0, no time
    limit): a point trained under another config (the preset changed since) is stale.

    ``keys``: the config keys the stored fingerprints cover (the JSON's ``config_keys``; default: every key). A key
    added to gankit since then is left out of the hash while it holds its default (a new option is off by default,
    so the runs did not change); set away from it, the config is not one the stored points saw: None."""
    cfg = base_config(args, preset, 0).to_dict()
    if keys is not None:
        kept, defaults = set(keys), _flat(RunConfig().to_dict())
        if any(v != defaults.get(k) for k, v in _flat(cfg).items() if k not in kept):
            return None
        cfg = {s: {k: v for k, v in sub.items() if f"{s}.{k}" in kept} if isinstance(sub, dict) else sub
               for s, sub in cfg.items() if isinstance(sub, dict) or s in kept}
    doc = json.dumps(cfg, sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def drop_stale(args, points: dict, presets: list[str], retrain: set[str], keys: list[str] | None = None
               ) -> tuple[list[str], bool]:
    """Remove from ``points`` every point of a preset in ``retrain`` or trained under another config than the
    preset's now: (the presets whose points went, whether any kept point's fingerprint was restamped). ``keys``:
    the config keys the stored fingerprints cover (None: today's); a point still valid under them gets today's
    fingerprint, so the JSON can then record today's keys. Points from before fingerprints get today's one."""
    gone, restamped = set(), False
    stored = {rec.get("preset") for rec in points.values()} & set(list_presets())
    for preset in sorted(set(presets) | stored):  # every stored preset is restamped; only this run's are dropped
        now = fingerprint(args, preset)
        then = fingerprint(args, preset, keys)  # the same as now while the keys are today's
        for k in [k for k, rec in points.items() if rec.get("preset") == preset]:
            rec = points[k]
            if rec.setdefault("config_sha", then) != then or preset in retrain:
                if preset in presets:
                    del points[k]
                    gone.add(preset)
            elif rec["config_sha"] != now:
                rec["config_sha"], restamped = now, True
    return sorted(gone), restamped


def train_point(args, points: dict, preset: str, seed: int, budget: float, info: dict) -> dict | None:
    """Train (or resume) ``preset``'s seed-``seed`` run to ``budget`` seconds of training in all; the point's
    record (``wall_s``: the seconds of every fit of the chain so far, stops included), or None when the point
    before it is not there yet."""
    from gankit.training.loop import Trainer

    run_dir = args.runs / preset / f"seed{seed}"
    ckpts = run_dir / "checkpoints"
    steps = chain(seed, args.budgets, args.seeds_at)
    prev_b = steps[steps.index(budget) - 1] if steps.index(budget) else None
    prev = points.get(key(preset, seed, prev_b)) if prev_b is not None else None
    if prev_b is not None and prev is None:
        return None  # its shorter budget is not done (a slice ended there): a later session trains both
    base = {"preset": preset, "seed": seed, "budget": format_duration(budget), "budget_s": budget,
            "resumes": format_duration(prev_b) if prev_b else None, "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "checkpoint": f"{preset}/seed{seed}/checkpoints/{at_name(budget)}",
            "config_sha": fingerprint(args, preset)}
    if prev is not None:
        if not (ckpts / at_name(prev_b)).is_file():
            _say(f"warning: {key(preset, seed, budget)} resumes {ckpts / at_name(prev_b)}, which is missing: "
                 f"skipped (restore that run folder, or delete the {preset}/seed{seed} points from the JSON)")
            return None
        if prev["finished"]:  # the preset's schedule ended before the shorter budget: the same G
            shutil.copyfile(ckpts / at_name(prev_b), ckpts / at_name(budget))
            return {**prev, **base, "segment_s": 0.0, "load": None}
        # undo a later segment a killed session left in last.pt: resume exactly from the previous point
        shutil.copyfile(ckpts / at_name(prev_b), ckpts / "last.pt.tmp")
        os.replace(ckpts / "last.pt.tmp", ckpts / "last.pt")
    if prev is None:  # a fresh start (a new preset, or its config changed): this script's own checkpoints go too
        for old in ckpts.glob("at_*.pt") if ckpts.is_dir() else ():
            old.unlink()
    spent = prev["wall_s"] if prev else 0.0
    # gankit's budget clock counts training only (from the first step to the stop): a resume gets the difference
    # of the budgets, so the point trains as long as `gankit train --time BUDGET` would, up to one step per stop.
    # (Subtracting the wall-clock spent would also take each stop's checkpoint, grid and loss plot off it.)
    cfg = base_config(args, preset, seed).with_overrides({"train.time_limit": budget - (prev_b or 0.0)})
    t0 = time.perf_counter()
    tr = Trainer(cfg, run_dir, overwrite=prev is None, resume=prev is not None, log=_quiet)
    threads, setup = torch.get_num_threads(), time.perf_counter() - t0
    watch = LoadWatch()
    t1 = time.perf_counter()
    res = tr.fit()
    segment = time.perf_counter() - t1
    load = watch.done()
    if res.interrupted:
        raise SystemExit(f"time_curves: stopped by a signal in {key(preset, seed, budget)} at step {res.step}; the "
                         f"points before it are kept: rerun the same command to continue")
    shutil.copyfile(ckpts / "last.pt", ckpts / at_name(budget))
    loaded = load["load_max_1m"] > info["cores"] + 0.5
    if loaded:
        _say(f"warning: the 1-minute load average reached {load['load_max_1m']:.2f} during "
             f"{key(preset, seed, budget)} ({info['cores']} cores): not a quiet-machine number")
    return {**base, "steps": res.step, "total_steps": tr.total_steps, "finished": res.step >= tr.total_steps,
            "wall_s": round(spent + segment, 2), "segment_s": round(segment, 2), "setup_s": round(setup, 2),
            "threads": threads, "cores": info["cores"],
            "machine": f"{info['gpu'] + ' on ' if info.get('gpu') else ''}{info['cpu']}, {info['system']}",
            "torch": info["torch"], "gankit": info["gankit"], "load": {**load, "quiet": not loaded}, "scores": None}


# ---------------------------------------------------------------------------------------------------------------
# Scoring and grids.

def make_scorer(args):
    from gankit.metrics import Scorer

    return Scorer(METRICS, n=args.n_samples, data=DataConfig(name=args.dataset), evaluator="pinned",
                  device=args.device, log=lambda m: print(m, file=sys.stderr))


def score_point(scorer, ckpt: Path) -> dict:
    """FD, KID, precision/recall and classes of one checkpoint, as the zoo's Fashion table keeps them."""
    from gankit.metrics.evaluate import parse_metrics

    t0 = time.perf_counter()
    rep = scorer.score(ckpt)
    fd, kid, pr, cl = (rep["metrics"][s.name] for s in parse_metrics(METRICS, scorer.n))
    card = rep.get("evaluator", {})
    return {"fd": fd["fd"], "fd_floor": (fd.get("floor") or {}).get("fd"), "kid": kid["kid"],
            "kid_std": kid["kid_std"], "precision": pr["precision"], "recall": pr["recall"],
            "classes_reached": cl["classes_reached"], "classes_over_2pct": int(sum(h >= 0.02 for h in cl["histogram"])),
            "kl_to_real": cl["kl_to_real"], "n": fd["n_fake"], "evaluator_sha256": card.get("sha256"),
            "score_s": round(time.perf_counter() - t0, 1)}


def write_grid(ckpt: Path, dest: Path) -> None:
    from gankit.images import save_grid

    imgs = gankit.load(ckpt).images(GRID_N, seed=0)  # (N, H, W) or (N, H, W, C) uint8
    chw = imgs[:, None] if imgs.ndim == 3 else imgs.transpose(0, 3, 1, 2)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_grid(chw, dest)


# ---------------------------------------------------------------------------------------------------------------
# The cache.

def load_cache(path: Path, protocol: dict) -> tuple[dict, list[str] | None]:
    """(the points, the config keys their fingerprints cover; None: today's, as in files from before the keys were
    recorded)."""
    if not path.is_file():
        return {}, None
    data = json.loads(path.read_text())
    if data.get("protocol") != protocol:
        raise GankitError(f"{path} holds points of another protocol ({data.get('protocol')}, not {protocol}); "
                          f"use another --doc folder or move that file away")
    return data["points"], data.get("config_keys")


def save_cache(path: Path, protocol: dict, points: dict) -> None:
    """Write the points with today's config keys (drop_stale has restamped every point still valid to them)."""
    def plain(o):
        return o.item() if hasattr(o, "item") else str(o)
    text = json.dumps({"protocol": protocol, "config_keys": config_keys(), "points": dict(sorted(points.items()))},
                      indent=1, default=plain)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text + "\n")


# ---------------------------------------------------------------------------------------------------------------
# The docs.

def scores(rec: dict | None) -> dict | None:
    """A point's scores; None while it is not scored, or when it could not be (``{"error": ...}``)."""
    s = (rec or {}).get("scores")
    return s if s and "error" not in s else None


def spread(args, points: dict, preset: str, budget: float, field: str) -> list[float]:
    """``field`` over the seeds --seeds-at asks for at ``budget`` that are scored."""
    found = (scores(points.get(key(preset, s, budget))) for s in range(args.seeds_at.get(budget, 1)))
    return [s[field] for s in found if s]


def plot(args, points: dict, presets: list[str], dest: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, field, title in zip(axes, ("fd", "recall"), ("FD ↓ (pinned evaluator)", "recall ↑ (k 3)")):
        for preset in presets:
            done = [(b, scores(points.get(key(preset, 0, b)))) for b in args.budgets]
            done = [(b, s) for b, s in done if s]
            if not done:
                continue  # a missing point is simply absent
            xs, ys = [b / 60 for b, _ in done], [s[field] for _, s in done]
            (line,) = ax.plot(xs, ys, marker="o", label=preset)
            for b in args.seeds_at:
                vals = spread(args, points, preset, b, field)
                s0 = scores(points.get(key(preset, 0, b)))
                if len(vals) > 1 and s0:
                    y = s0[field]
                    ax.errorbar([b / 60], [y], yerr=[[y - min(vals)], [max(vals) - y]], color=line.get_color(),
                                capsize=4, linewidth=1.2)
        ax.set_xscale("log")
        ax.set_xticks([b / 60 for b in args.budgets], [format_duration(b) for b in args.budgets])
        ax.minorticks_off()
        ax.set_xlabel("wall-clock training budget (log scale)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    if axes[0].get_lines():
        axes[0].legend(fontsize=8)
    spread_at = ", ".join(f"{format_duration(b)} ({n} seeds)" for b, n in args.seeds_at.items())
    on = "" if args.row["kind"] == "cpu" else f" ({args.device})"
    fig.suptitle(f"{args.dataset}{on}, {args.n_samples:,} samples; lines: seed 0"
                 + (f"; bars: min-max over seeds at {spread_at}" if spread_at else ""), fontsize=10)
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=110, metadata={"Software": None})
    plt.close(fig)


def _cell(args, points: dict, preset: str, budget: float, field: str, fmt: str) -> str:
    r = points[key(preset, 0, budget)]["scores"]
    vals = spread(args, points, preset, budget, field)
    text = format(r[field], fmt)
    if len(vals) > 1:
        text += f" [{format(min(vals), fmt)}–{format(max(vals), fmt)}]"
    return text


def section(args, points: dict, presets: list[str], missing: list[str], grids: dict[str, str]) -> str:
    """The body between the markers: the command, the machine, the table, the plot, the grids."""
    mine = [r for r in points.values() if r["preset"] in presets and r["budget_s"] in args.budgets]
    where = ("CPU cores" if args.row["kind"] == "cpu" else
             f"CPU cores of the host; training and scoring on {args.device}")
    machines = sorted({r["machine"] for r in mine if r.get("machine")})
    torches = sorted({r["torch"] for r in mine if r.get("torch")})
    threads = sorted({r["threads"] for r in mine if r.get("threads")})
    dates = sorted(r["date"] for r in mine)
    cores = sorted({r["cores"] for r in mine if r.get("cores")})
    cards = sorted({r["scores"]["evaluator_sha256"] or "?" for r in mine if r.get("scores")})
    spread_at = "; ".join(f"at {format_duration(b)}, seeds 0–{n - 1}" for b, n in args.seeds_at.items())
    lines = [f"Every number here comes from `{args.command}` (`--cached` rebuilds this part from "
             f"{args.json.name} alone, `--max-minutes M` runs a slice of it). Do not edit by hand.", "",
             (f"Machine: {' / '.join(str(c) for c in cores) or '?'} {where} ({'; '.join(machines) or '?'}), "
              f"torch {', '.join(torches) or '?'}, torch threads {'/'.join(map(str, threads)) or '?'}"
              f"; points from {dates[0]} to {dates[-1]}." if dates else "Machine: no point has run yet."), "",
             f"Each preset trains on {args.dataset} with its own config (its schedule, batch and learning rates; "
             f"changed: data.name, train.seed"
             + (f", train.device={args.device}" if args.row["kind"] != "cpu" else "")
             + "".join(f", {k}={v}" for k, v in args.overrides.items()) +
             ") under a wall-clock budget (`train.time_limit`: training time from the first step, data loading "
             "excluded), so a point is what `gankit train --preset P --time B` gives on this machine. Seed 0 runs "
             "every budget, each longer one resuming the shorter run (gankit stops at a step boundary and resumes "
             f"exactly); {spread_at or 'one seed'} trained straight to it. G (G_ema where the preset keeps one) "
             f"then draws {args.n_samples:,} samples, scored in the pinned {args.dataset} evaluator's features "
             f"(sha256 {', '.join(c[:12] for c in cards) or '?'}; docs/PROTOCOLS.md §4): FD and KID (MMD², cubic "
             "kernel) against the test set, precision/recall (k 3), classes reached (≥ 1 sample / "
             "≥ 2 %). A cell shows seed 0, and [min–max] over the seeds where there are several. \"done\": the "
             "preset's schedule ended before the budget. † the 1-minute load average exceeded the cores + 0.5 "
             "during the run: not a quiet-machine number.", "",
             "| preset | budget | steps | FD ↓ | KID ↓ | precision | recall | classes |",
             "|---|---|---|---|---|---|---|---|"]
    for preset in presets:
        for b in args.budgets:
            r = points.get(key(preset, 0, b))
            if not r or not r.get("scores"):
                continue
            s = r["scores"]
            runs = [points.get(key(preset, seed, b)) for seed in range(args.seeds_at.get(b, 1))]
            loaded = any(not (x.get("load") or {}).get("quiet", True) for x in runs if x)
            head = (f"| {preset} | {r['budget']}{' †' if loaded else ''} | "
                    f"{r['steps']:,}{' done' if r['finished'] else ''}")
            if "error" in s:
                lines.append(f"{head} | not scored: {s['error']} | | | | |")
                continue
            cells = [_cell(args, points, preset, b, f, fmt) for f, fmt in
                     (("fd", ".2f"), ("kid", ".3g"), ("precision", ".3f"), ("recall", ".3f"))]
            lines.append(f"{head} | {' | '.join(cells)} | {s['classes_reached']} / {s['classes_over_2pct']} |")
    if any(scores(r) for r in mine):  # no plot of nothing: a row not run yet is its table head and the to-do list
        lines += ["", f"![FD and recall against the training budget]({args.rel(args.plot)})"]
    lines += [""]
    if grids:
        lines += [f"Samples at {format_duration(args.grid_at)} (seed 0; {GRID_N} latents of seed 0, "
                  f"`gankit.load(RUN/checkpoints/{at_name(args.grid_at)}).images({GRID_N})`), left to right: "
                  + ", ".join(grids) + ":", "", " ".join(f"![{p}]({g})" for p, g in grids.items()), ""]
    if missing:
        lines += [f"Not run yet ({len(missing)}): {', '.join(missing)}; the command above continues.", ""]
    return "\n".join(lines)


def replace_region(old: str, body: str, names: dict | None = None) -> str:
    """``old`` with the text between the markers (``names``: a :func:`row`; default the CPU table's) replaced by
    ``body``; the markers under the row's heading at the end when absent. Nothing outside the markers changes."""
    n = names or row("cpu")
    return replace_marked(old, n["start"], n["end"], body, n["heading"])


# ---------------------------------------------------------------------------------------------------------------

def estimate(args, todo: list[tuple], points: dict) -> tuple[float, float]:
    """(training, scoring) seconds of ``todo`` on this machine (--dry-run)."""
    train = score = 0.0
    for preset, seed, b in todo:
        steps = chain(seed, args.budgets, args.seeds_at)
        prev_b = steps[steps.index(b) - 1] if steps.index(b) else None
        if key(preset, seed, b) not in points:
            train += b - (prev_b or 0.0) + SETUP_S
        score += SCORE_S_PER_10K * args.n_samples / 10_000
    return train, score + (REAL_SIDE_S if todo else 0.0)


def chain_seconds(args, seed: int) -> float:
    """The wall-clock a whole (preset, seed) run of the plan takes here: its longest budget, each stop's setup and
    each point's score (--order chain's test before it starts a run under --max-minutes)."""
    stops = chain(seed, args.budgets, args.seeds_at)
    per_10k = SCORE_S_PER_10K if args.row["kind"] == "cpu" else SCORE_S_PER_10K_GPU
    return stops[-1] + len(stops) * (SETUP_S + per_10k * args.n_samples / 10_000)


def session_argv(argv: list[str]) -> list[str]:
    """``argv`` without the flags that only choose what a session does (--cached, --dry-run, --max-minutes)."""
    out, skip = [], 0
    for a in argv:
        if skip:
            skip -= 1
            continue
        name = a.split("=", 1)[0]
        if name in SESSION_FLAGS:
            skip = SESSION_FLAGS[name] if "=" not in a else 0
            continue
        out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    # no abbreviations: the doc's command leaves out the session flags by their full names
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--presets", default=PRESETS, help="comma-separated; unknown ones are skipped with a warning")
    p.add_argument("--device", default="cpu", help="where every point trains and is scored: cpu (the CPU table), or "
                                                   "cuda (the GPU row: its own JSON, plot and doc region)")
    p.add_argument("--budgets", default=None, help="training wall-clock per point (90s, 10m, 1.5h); default "
                                                   f"{DEFAULTS['cpu'][0]} on the CPU, {DEFAULTS['gpu'][0]} on a GPU")
    p.add_argument("--seeds-at", default=None, help="BUDGET:SEEDS[,...]: seeds 0..SEEDS-1 at that budget (the spread "
                                                    f"in the table and the plot's error bars); default "
                                                    f"{DEFAULTS['cpu'][1]} on the CPU, {DEFAULTS['gpu'][1]} on a GPU")
    p.add_argument("--order", choices=("budget", "chain"), default="budget",
                   help="budget: every preset's shortest budget first; chain: each run's budgets in a row, and "
                        "under --max-minutes no chain is started that cannot finish")
    p.add_argument("--n-samples", type=int, default=10_000, help="samples scored per point")
    p.add_argument("--dataset", default="fashion-mnist", help="data.name of every run and of the evaluator")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for every preset (repeatable), e.g. model.g_hidden=16")
    p.add_argument("--threads", type=int, default=0, help="train.threads (0: torch's default, the cores)")
    p.add_argument("--runs", type=Path, default=None,
                   help="the run folders (default runs/time_curves, runs/time_curves_cuda for the GPU row)")
    p.add_argument("--doc", type=Path, default=Path("docs/ZOO.md"),
                   help="the doc whose time-curves region is rewritten; the JSON and PNGs go in its zoo/ folder")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="start no new training once this much wall-clock is spent (rerun to continue)")
    p.add_argument("--retrain", default="", help="comma-separated presets whose points are dropped and trained again "
                                                 "(a preset whose config changed is retrained anyway)")
    p.add_argument("--cached", action="store_true", help="write the docs from the JSON alone; train and score nothing")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its estimated minutes; change nothing")
    args = p.parse_args(argv)
    t_start = time.monotonic()
    argv = sys.argv[1:] if argv is None else list(argv)
    args.command = shlex.join(["python", "scripts/time_curves.py", *session_argv(argv)])
    try:
        try:
            args.row = row(args.device)
        except RuntimeError as e:  # torch's own message for a device string it cannot parse
            raise GankitError(f"--device {args.device!r}: {str(e).splitlines()[0]}") from None
        budgets, seeds_at = DEFAULTS["cpu" if args.row["kind"] == "cpu" else "gpu"]
        args.budgets = budgets if args.budgets is None else args.budgets
        args.seeds_at = seeds_at if args.seeds_at is None else args.seeds_at
        args.budgets = sorted({parse_duration(b) for b in args.budgets.split(",") if b.strip()})
        if not args.budgets:
            raise GankitError("--budgets: give at least one, e.g. 1m,2m,5m")
        args.seeds_at = parse_seeds_at(args.seeds_at, args.budgets)
        args.overrides = {}
        for item in args.override:
            k, eq, v = item.partition("=")
            if not eq:
                raise GankitError(f"--override {item!r}: expected KEY=VALUE, e.g. model.g_hidden=16")
            args.overrides[k.strip()] = v.strip()
        known = set(list_presets())
        presets = []
        for name in filter(None, (s.strip() for s in args.presets.split(","))):
            if name not in known:
                _say(f"warning: unknown preset {name!r} skipped (this gankit has {', '.join(sorted(known))})")
                continue
            presets.append(name)
            base_config(args, name, 0)  # an override a preset refuses fails here, before anything trains
        if args.n_samples < 2:
            raise GankitError(f"--n-samples {args.n_samples}: needs at least 2")
    except GankitError as e:
        p.error(str(e))
    args.runs = args.runs if args.runs is not None else Path(f"runs/time_curves{args.row['suffix']}")
    zoo = args.doc.parent / "zoo"
    args.json, args.plot = zoo / f"time_runs{args.row['suffix']}.json", zoo / f"time_curves{args.row['suffix']}.png"
    args.grid_at = next(iter(args.seeds_at), args.budgets[len(args.budgets) // 2])
    args.rel = lambda path: os.path.relpath(path, args.doc.parent)
    protocol = {"dataset": args.dataset, "n_samples": args.n_samples, "metrics": METRICS, "evaluator": "pinned",
                "device": args.row["kind"], "overrides": args.overrides}
    try:
        points, keys = load_cache(args.json, protocol)
    except GankitError as e:
        p.error(str(e))
    retrain = {s.strip() for s in args.retrain.split(",") if s.strip()}
    stale, restamped = drop_stale(args, points, presets, retrain, keys)
    for preset in stale:
        _say(f"{preset}: its points were trained under another config (or --retrain): retraining them")
        (zoo / f"{args.row['grid']}{preset}.png").unlink(missing_ok=True)
    if (stale or restamped or keys != config_keys()) and not args.dry_run:
        save_cache(args.json, protocol, points)
    todo = [pt for pt in plan(presets, args.budgets, args.seeds_at, args.order)
            if not points.get(key(*pt), {}).get("scores")]

    if args.dry_run:
        info = machine()  # this machine's cores: no device is touched by a dry run
        train_s, score_s = estimate(args, todo, points)
        for preset, seed, b in todo:
            steps = chain(seed, args.budgets, args.seeds_at)
            prev_b = steps[steps.index(b) - 1] if steps.index(b) else None
            how = (f"resume {format_duration(prev_b)} to {format_duration(b)}" if prev_b else
                   f"train {format_duration(b)} from scratch")
            state = "score only" if key(preset, seed, b) in points else how + ", score"
            print(f"  {key(preset, seed, b)}: {state}")
        print(f"{args.command}\n{_points(len(todo))} to do of {len(plan(presets, args.budgets, args.seeds_at))}; "
              f"estimated {(train_s + score_s) / 60:.0f} min of wall-clock on this machine ({info['cores']} cores): "
              f"training {train_s / 60:.0f} min, scoring {score_s / 60:.0f} min (10k-sample scores ~1 min each)")
        return 0

    info = None  # the machine (and its GPU) is read when the first point trains
    scorer = None
    left = []
    for preset, seed, b in todo:
        k = key(preset, seed, b)
        if args.cached:
            left.append(k)
            continue
        if k not in points:
            if args.max_minutes is not None and time.monotonic() - t_start >= 60 * args.max_minutes:
                left.append(k)
                continue
            if args.max_minutes is not None and args.order == "chain" and b == chain(seed, args.budgets,
                                                                                     args.seeds_at)[0]:
                need = chain_seconds(args, seed)
                if time.monotonic() - t_start + need > 60 * args.max_minutes:
                    left.append(k)  # its later points then find no previous point and wait too
                    continue
            info = info or machine(args.device)
            rec = train_point(args, points, preset, seed, b, info)
            if rec is None:
                left.append(k)
                continue
            points[k] = rec
            save_cache(args.json, protocol, points)
            _say(f"{k}: {rec['steps']:,} steps in {rec['wall_s']:.1f} s"
                 + (f" (resumed {rec['resumes']})" if rec["resumes"] else ""))
        rec = points[k]
        if rec["scores"] is None:
            ckpt = args.runs / rec["checkpoint"]
            if not ckpt.is_file():
                _say(f"warning: {k} is trained but {ckpt} is gone: cannot score it")
                left.append(k)
                continue
            scorer = scorer or make_scorer(args)
            try:
                rec["scores"] = score_point(scorer, ckpt)
            except GankitError as e:  # e.g. G went non-finite: kept as the point's result, not retried
                rec["scores"] = {"error": str(e)}
            save_cache(args.json, protocol, points)
            s = rec["scores"]
            _say(f"{k}: " + (f"FD {s['fd']:.2f}, recall {s['recall']:.3f}" if "fd" in s else s["error"]))
    grids = {}
    for preset in presets:
        rec = points.get(key(preset, 0, args.grid_at))
        dest = zoo / f"{args.row['grid']}{preset}.png"
        if rec and not dest.is_file() and not args.cached and (args.runs / rec["checkpoint"]).is_file():
            write_grid(args.runs / rec["checkpoint"], dest)
        if scores(rec) and dest.is_file():
            grids[preset] = args.rel(dest)
    missing = [key(*pt) for pt in plan(presets, args.budgets, args.seeds_at)
               if not points.get(key(*pt), {}).get("scores")]
    plotted = any(scores(r) for r in points.values() if r["preset"] in presets and r["budget_s"] in args.budgets)
    if plotted:
        plot(args, points, presets, args.plot)
    old = args.doc.read_text() if args.doc.is_file() else ""
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.doc, replace_region(old, section(args, points, presets, missing, grids), args.row))
    loaded = sorted(k for k, r in points.items() if not (r.get("load") or {}).get("quiet", True))
    if loaded:
        _say(f"warning: {_points(len(loaded))} ran on a loaded machine (†): {', '.join(loaded)}")
    _say(f"wrote {args.doc}, {f'{args.plot}, ' if plotted else ''}{args.json}"
         + (f"; {_points(len(missing))} left: rerun `{args.command}` to continue" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
