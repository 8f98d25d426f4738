"""Seconds to evaluate 10,000 generated 28x28 samples: generation + features + FD/KID/PR, on this machine.

    python bench/eval_speed.py [--n 10000] [--metrics fd,kid,pr_k3]

Uses a seed-sized generator (its weights do not change the cost) and the Fashion-MNIST evaluator (trained
and cached on first use, outside the timing). The real-vs-real floor and the real features' statistics are
part of a first evaluation but cached per evaluator, so they are timed separately.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import gankit
from gankit import metrics
from gankit.models import build_generator


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--metrics", default="fd,kid,pr_k3")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--append", help="append the result to this Markdown file")
    args = ap.parse_args()
    cfg = gankit.preset("seed").with_overrides({"data.name": "fashion-mnist"})
    ev = metrics.load_evaluator(cfg.data)
    train, test = metrics.real_splits(cfg.data, log=lambda *_: None)
    torch.manual_seed(0)
    G = build_generator(cfg.model, (1, 28, 28)).eval()
    names = ",".join(f"{m.split('_')[0]}{args.n // 1000}k" + (f"_{m.split('_')[1]}" if "_" in m else "")
                     for m in args.metrics.split(","))
    t0 = time.perf_counter()
    ref = metrics.Reference(metrics.parse_metrics(names, args.n), ev, test, train, floor=True)
    first = time.perf_counter() - t0
    times = []
    for r in range(args.reps):
        t0 = time.perf_counter()
        metrics.evaluate(metrics.generator_sampler(G, cfg.model.z_dim, seed=r + 1), names, evaluator=ev,
                         reference=ref)
        times.append(time.perf_counter() - t0)
    line = (f"Evaluating `{names}` on {args.n} generated 28x28 samples (generation + features + metrics): "
            f"{statistics.median(times):.2f} s, median of {args.reps}; once per evaluator, the real side (features "
            f"and the real-vs-real floor): {first:.2f} s; {torch.get_num_threads()} threads.")
    print(line)
    if args.append:
        with open(args.append, "a") as f:
            f.write("\n## Evaluation speed (CPU)\n\n" + line + "\n")


if __name__ == "__main__":
    main()
