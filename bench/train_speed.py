"""Training speed of gankit against two baseline loops in the same run; writes docs/BENCHMARKS.md's section.

    python bench/train_speed.py [--reps 5] [--window-steps 300] [--quick] [--write]

Contestants run interleaved (gankit, gankit with its autograd step instead of the fused MLP step, careful eager,
tutorial; repeated), each timed over windows of 50 steps;
the figure is the median window. Also measured here: the FLOPs of one step and the time the same matmul shapes
take alone (the fraction of pure-matmul speed gankit reaches), peak RSS of a seed run on MNIST-sized data, and
speed next to one busy process.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines  # noqa: E402

import gankit  # noqa: E402
from gankit.data import load_dataset  # noqa: E402
from gankit.training.loop import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def fashion():
    cfg = gankit.preset("seed").data.__class__(name="fashion-mnist", download=False)
    return load_dataset(cfg, log=lambda *_: None)


def gankit_windows(cfg, data, steps, windows, threads=None):
    cfg = cfg.with_overrides({"train.steps": steps + 50, "train.log_every": 50, "train.sample_every": 0,
                              "train.checkpoint_every": 0, "train.progress": False})
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, Path(tmp) / "r", dataset=data, log=lambda *_: None)
        marks = []
        tr.add_callback("on_log", lambda t: marks.append(time.perf_counter()))
        tr.fit()
    # marks[0] ends the warm-up window; epoch ends add marks too: keep 50-step windows only
    steps_at = list(range(50, steps + 51, 50))
    windows += [b - a for a, b in zip(marks[: len(steps_at)], marks[1: len(steps_at)])]


def median_rate(windows, B):
    w = statistics.median(windows)
    return 50 / w, 50 * B / w


def compare(cfg, data, reps, steps, with_tutorial=True):
    res = {"gankit": [], "autograd": [], "careful": [], "tutorial": []}
    for _ in range(reps):
        gankit_windows(cfg, data, steps, res["gankit"])
        if with_tutorial:  # the MLP runs: gankit's own autograd step too, to show what the fused step buys
            gankit_windows(cfg.with_overrides({"train.fused_step": False}), data, steps, res["autograd"])
        baselines.careful_eager(cfg, data.images, steps, res["careful"])
        if with_tutorial:
            baselines.tutorial(cfg, data.images, steps, res["tutorial"])
    B = cfg.train.batch_size
    return {k: median_rate(v, B) for k, v in res.items() if v}


def step_flops_and_matmul_fraction(cfg, data, steps_per_s):
    """FLOPs of one training step (torch's FLOP counter) and the time its matmul shapes take alone."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    cfg = cfg.with_overrides({"train.steps": 1, "train.progress": False})
    shapes = []

    class Shapes(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.__name__.split(".")[0]
            if name in ("mm", "addmm"):
                a, b = (args[1], args[2]) if name == "addmm" else (args[0], args[1])
                shapes.append((tuple(a.shape), tuple(b.shape)))
            return func(*args, **(kwargs or {}))

    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, Path(tmp) / "r", dataset=data, log=lambda *_: None)
        batch = [data.images[: cfg.train.batch_size]]
        tr.train_step(batch)
        with FlopCounterMode(display=False) as fc:
            tr.train_step(batch)
        with Shapes():
            tr.train_step(batch)
    flops = fc.get_total_flops()
    mats = [(torch.randn(*a), torch.randn(*b)) for a, b in shapes]
    for a, b in mats:
        a @ b
    reps = 200
    t0 = time.perf_counter()
    for _ in range(reps):
        for a, b in mats:
            a @ b
    mm_time = (time.perf_counter() - t0) / reps
    step_time = 1 / steps_per_s
    return {"flops_per_step": flops, "matmuls_per_step": len(shapes), "matmul_only_s": mm_time,
            "step_s": step_time, "matmul_fraction": mm_time / step_time,
            "achieved_gflops": flops * steps_per_s / 1e9, "matmul_only_gflops": flops / mm_time / 1e9}


def _busy():
    x = 0
    while True:
        x += 1


def neighbour_case(cfg, data, steps):
    """Speed quiet and next to one busy process, for three thread settings: the default (the machine's count,
    fixed for the run: reproducible), one thread (reproducible, the shared-machine choice), and
    train.adaptive_threads (retuned to the load: not reproducible)."""
    variants = {"default": {}, "threads 1": {"train.threads": 1}, "adaptive": {"train.adaptive_threads": True}}
    out = {}
    threads_before = torch.get_num_threads()
    for name, over in variants.items():
        quiet, busy = [], []
        c = cfg.with_overrides(over)
        gankit_windows(c, data, steps, quiet)
        torch.set_num_threads(threads_before)
        p = mp.Process(target=_busy, daemon=True)
        p.start()
        try:
            time.sleep(0.5)
            gankit_windows(c, data, steps, busy)
        finally:
            p.terminate()
            p.join()
            torch.set_num_threads(threads_before)
        B = cfg.train.batch_size
        q, b = median_rate(quiet, B)[0], median_rate(busy, B)[0]
        out[name] = {"quiet_steps_s": q, "busy_steps_s": b, "kept": b / q}
    return out


def peak_rss_mb(steps=600):
    """Peak RSS of `gankit train` (seed, Fashion-MNIST: MNIST-sized) in a fresh process."""
    code = ("import resource,sys,gankit;"
            f"cfg=gankit.preset('seed').with_overrides({{'data.name':'fashion-mnist','train.steps':{steps},"
            "'train.progress':False,'train.sample_every':0});"
            "import tempfile;d=tempfile.mkdtemp();gankit.train(cfg,d+'/r',log=lambda *_: None);"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--window-steps", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="2 reps of 100 steps, for a smoke test")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--out", help="write the Markdown report here (e.g. docs/BENCHMARKS.md)")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.window_steps = 2, 100
    # First, before this process grows: a child's peak-RSS counter starts at its parent's RSS at fork time.
    rss = peak_rss_mb()
    data = fashion()
    results = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "threads": torch.get_num_threads(), "torch": str(torch.__version__), "runs": {}}
    seed = gankit.preset("seed").with_overrides({"data.name": "fashion-mnist"})
    for B in (100, 64):
        cfg = seed.with_overrides({"train.batch_size": B})
        results["runs"][f"seed_b{B}"] = compare(cfg, data, args.reps, args.window_steps)
    if "dcgan-mnist" in gankit.config.PRESETS:
        cfg = gankit.preset("dcgan-mnist").with_overrides({"data.name": "fashion-mnist"})
        results["runs"]["dcgan-mnist_b" + str(cfg.train.batch_size)] = compare(
            cfg, data, max(1, args.reps // 2), max(50, args.window_steps // 6), with_tutorial=False)
    g_rate = results["runs"]["seed_b100"]["gankit"][0]
    results["flops"] = step_flops_and_matmul_fraction(seed, data, g_rate)
    results["neighbour"] = neighbour_case(seed, data, args.window_steps)
    results["peak_rss_mb"] = rss
    text = render(results)
    print(text)
    if args.out:
        # keep the other scripts' sections (evaluation speed; GPU sections measured on another machine)
        old = Path(args.out).read_text() if Path(args.out).is_file() else ""
        gpu = "".join("\n## " + sec for sec in old.split("\n## ")[1:] if not sec.startswith("Training speed (CPU)"))
        Path(args.out).write_text(
            "# Benchmarks\n\nGenerated by `python bench/train_speed.py --out docs/BENCHMARKS.md` and "
            "`python bench/eval_speed.py --append docs/BENCHMARKS.md`. Ratios are measured in the same run "
            "(contestants interleaved, median of 50-step windows). On a machine with a GPU, "
            "`python bench/gpu_speed.py --append docs/BENCHMARKS.md` adds the GPU section (images/s with and "
            "without AMP, channels-last, compile and CUDA graphs; FD of GPU vs CPU samples), which reruns here keep; "
            "`python bench/ensemble_speed.py --append docs/BENCHMARKS.md` adds the `--seeds` section (K seeds as one "
            "batched network against one run)."
            "\n\n## Training speed (CPU)\n\n" + text + "\n" + gpu)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def render(r):
    lines = [f"Machine: {r['machine']}, {r['cpus']} CPUs, torch {r['torch']}, {r['threads']} threads.", "",
             "| run | gankit steps/s (img/s) | gankit, autograd step | careful eager | tutorial loop "
             "| gankit vs careful "
             "| gankit vs tutorial |",
             "|---|---|---|---|---|---|---|"]
    for name, v in r["runs"].items():
        g = v["gankit"]
        c = v.get("careful")
        t = v.get("tutorial")
        a = v.get("autograd")
        lines.append(f"| {name} | {g[0]:.0f} ({g[1]:.0f}) | {f'{a[0]:.0f}' if a else '–'} | {c[0]:.0f} | "
                     + (f"{t[0]:.0f} | {g[0] / c[0]:.1f}x | {g[0] / t[0]:.1f}x |" if t else
                        f"– | {g[0] / c[0]:.1f}x | – |"))
    f = r["flops"]
    lines += ["", f"One seed step (batch 100): {f['flops_per_step'] / 1e6:.0f} MFLOP in {f['matmuls_per_step']} "
              f"matmuls; gankit reaches {f['achieved_gflops']:.0f} GFLOP/s; the same matmuls alone take "
              f"{f['matmul_only_s'] * 1e3:.2f} ms ({f['matmul_only_gflops']:.0f} GFLOP/s), "
              f"{100 * f['matmul_fraction']:.0f} % of gankit's step time.",
              "Next to one busy process (seed, batch 100; only `adaptive` makes results depend on the load): "
              + "; ".join(f"{name} {v['busy_steps_s']:.0f} steps/s vs {v['quiet_steps_s']:.0f} quiet "
                          f"({100 * v['kept']:.0f} % kept)" for name, v in r["neighbour"].items()) + ".",
              f"Peak RSS of a seed run on Fashion-MNIST (MNIST-sized): {r['peak_rss_mb']:.0f} MB."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
