"""Training K seeds at once (``gankit train --seeds``, training/ensemble.py) against K single runs, in one process.

    python bench/ensemble_speed.py [--device cuda] [--members 10] [--seconds 10] [--together]
                                   [--append docs/BENCHMARKS.md]

For each toy preset: steps/s of one single run (the Trainer's loop; with CUDA graphs on a GPU) and of an
ensemble of ``--members`` runs (the ensemble's step loop; graphs on a GPU), and the ratio of run-steps per
second, K × ensemble steps/s over single steps/s: how many times faster the K runs finish than one after the
other. ``--together``: the presets' ensembles also step together in one loop (on a GPU, one CUDA graph that runs
each ensemble's step on its own stream), against the same ensembles one after the other. The first 50 steps
(warm-up and graph capture) are not timed. ``--device cpu --seconds 1`` is a smoke test.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import gankit
from gankit.training.ensemble import Ensemble, Lockstep, seed_configs
from gankit.training.loop import Trainer

WARM = 50


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def single_steps_per_s(cfg, seconds: float) -> float:
    marks: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, Path(tmp) / "r", log=lambda *_: None)

        def on_log(t):
            _sync(cfg.train.device)
            marks.append((t.step, time.perf_counter()))
            if t.step >= WARM and marks[-1][1] - next(m for s, m in marks if s >= WARM) > seconds:
                t.stop()
        tr.add_callback("on_log", on_log)
        tr.fit()
    timed = [(s, m) for s, m in marks if s >= WARM]
    return statistics.median((s1 - s0) / (m1 - m0) for (s0, m0), (s1, m1) in zip(timed, timed[1:]))


def ensemble_steps_per_s(cfgs, k: int, seconds: float) -> float:
    """Steps per second of one ensemble of ``k`` seeds per config, all of them stepping together (one config: a
    plain ensemble; several: ``fit_together``'s lockstep, one step of each per turn)."""
    with tempfile.TemporaryDirectory() as tmp:
        group = [Ensemble(seed_configs(c, range(k)), [Path(tmp) / f"{j}m{i}" for i in range(k)], log=lambda *_: None)
                 for j, c in enumerate(cfgs)]
        step = Lockstep(group).run_step
        spe = min(e.spe for e in group)
        for e in group:
            e.begin_epoch(0, 0)
        for _ in range(WARM):
            step()
        rates, done = [], WARM
        while sum(n / dt for n, dt in rates) == 0 or sum(dt for _, dt in rates) < seconds:
            if done + 50 > spe:  # next epoch: new permutations and latents, as fit() does
                for e in group:
                    e.begin_epoch(1, 0)
                done = 0
            _sync(cfgs[0].train.device)
            t0 = time.perf_counter()
            for _ in range(50):
                step()
            for e in group:
                e.stats.sum().item()  # fit() reads the statistics back every log_every steps
            rates.append((50, time.perf_counter() - t0))
            done += 50
    return statistics.median(n / dt for n, dt in rates)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--presets", default="gan-ring8,pacgan-ring8")
    p.add_argument("--together", action="store_true",
                   help="also time the presets' ensembles trained together (fit_together), against one after the other")
    p.add_argument("--append", type=Path, help="append the table to this markdown file")
    args = p.parse_args(argv)
    graphs = args.device.startswith("cuda")
    where = (torch.cuda.get_device_name(0) if graphs
             else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    lines = [f"## Training {args.members} seeds at once (`--seeds`), {where}, torch {torch.__version__}", "",
             f"`python bench/ensemble_speed.py --device {args.device} --members {args.members} "
             f"--seconds {args.seconds:g}`; CUDA graphs {'on' if graphs else 'off'} for both columns.", "",
             "| preset | batch | single run steps/s | ensemble steps/s | run-steps/s vs single |",
             "|---|---|---|---|---|"]
    cfgs, alone = [], []
    for name in args.presets.split(","):
        cfg = gankit.preset(name).with_overrides({
            "train.device": args.device, "train.cuda_graphs": graphs, "train.steps": 10**7, "train.progress": False,
            "train.log_every": 50, "train.sample_every": 0, "train.checkpoint_every": 0})
        one = single_steps_per_s(cfg, args.seconds)
        many = ensemble_steps_per_s([cfg], args.members, args.seconds)
        cfgs.append(cfg)
        alone.append(many)
        lines.append(f"| {name} | {cfg.train.batch_size} | {one:,.0f} | {many:,.0f} | "
                     f"{args.members * many / one:.1f}× |")
        print(lines[-1], flush=True)
    if args.together and len(cfgs) > 1:
        both = ensemble_steps_per_s(cfgs, args.members, args.seconds)
        after = 1 / sum(1 / r for r in alone)  # the ensembles one after the other
        lines += ["", f"The {len(cfgs)} ensembles ({args.members} seeds each) trained together (`fit_together`: one "
                      f"loop) against one after the other:", "",
                  "| ensembles | one after the other, steps/s | together, steps/s | speed-up |", "|---|---|---|---|",
                  f"| {' + '.join(args.presets.split(','))} | {after:,.0f} | {both:,.0f} | {both / after:.2f}× |"]
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with open(args.append, "a") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
