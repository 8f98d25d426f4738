"""The trials behind the quick-mnist recipe (issue #19): DCGAN variants on Fashion-MNIST at a fixed number of steps.

    python scripts/quick_trials.py                 # every trial not yet in docs/zoo/quick_trials.json
    python scripts/quick_trials.py --jobs 2        # two trials at a time (one thread each)
    python scripts/quick_trials.py --cached        # rewrite the doc's table from the JSON alone

A trial is dcgan-mnist's config with bf16 autocast (quick-mnist before the trials) and a few changes, trained for
a fixed number of steps on one thread (a step count, not a clock: a busy machine changes how long a trial takes,
not its result), then G (G_ema where kept) draws 5,000 samples scored in the pinned Fashion-MNIST evaluator: FD,
KID, precision/recall (k 3), classes. Trials compare at equal steps, or at equal time where the widths differ: a
step at widths 32 costs half of one at 64 (docs/BENCHMARKS.md "quick-mnist step speed"), so 6,000 steps at 32
stand against 3,000 at 64.

``kmeans K`` trials are unconditional self-conditioning (after Liu et al. 2020, with clusters of pixels instead of
D's features): the training images get the labels of a K-means clustering of their pixels (k-means++, 20 Lloyd
iterations, seed 0), a class-conditional DCGAN (cgan-mnist's nets) trains on them, and sampling draws each cluster
in proportion to its size; no human label is read.

Written: ``docs/zoo/quick_trials.json`` (every trial's config, steps, seconds and scores; the source of truth, so a
rerun skips what it holds) and the region of docs/ZOO.md between ``<!-- quick-trials:start -->`` and
``<!-- quick-trials:end -->``. Run folders go to ``--runs`` (default runs/quick_trials).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

START, END = "<!-- quick-trials:start -->", "<!-- quick-trials:end -->"
METRICS, N_SAMPLES = "fd,kid,pr,classes", 5_000
HALF = {"model.g_channels": 32, "model.d_channels": 32}
LR = {1e-3: {"optim.g_lr": 1e-3, "optim.d_lr": 1e-3}, 5e-4: {"optim.g_lr": 5e-4, "optim.d_lr": 5e-4}}
# name: (steps, overrides of dcgan-mnist + bf16, k-means clusters as labels (0: none), what it tests)
TRIALS: dict[str, tuple[int, dict, int, str]] = {
    "base": (3000, {}, 0, "dcgan-mnist in bf16 (lr 2e-4, widths 64)"),
    "lr 5e-4": (3000, LR[5e-4], 0, "a higher learning rate"),
    "lr 1e-3": (3000, LR[1e-3], 0, "higher still"),
    "lr 2e-3": (3000, {"optim.g_lr": 2e-3, "optim.d_lr": 2e-3}, 0, "higher still"),
    "linear decay": (3000, {"optim.lr_schedule": "linear"}, 0, "lr 2e-4 decaying to 0 at the last step"),
    "G_ema 0.999": (3000, {"optim.ema_beta": 0.999}, 0, "an EMA of G"),
    "kmeans 10": (3000, {}, 10, "self-conditioning on 10 pixel clusters"),
    "kmeans 20": (3000, {}, 20, "self-conditioning on 20 pixel clusters"),
    "widths 32": (6000, HALF, 0, "half the widths, the time of 3,000 steps at 64"),
    "widths 32, lr 5e-4": (6000, {**HALF, **LR[5e-4]}, 0, "both"),
    "widths 32, lr 1e-3": (12000, {**HALF, **LR[1e-3]}, 0, "longer"),
    "widths 32, lr 1e-3, G_ema 0.995": (12000, {**HALF, **LR[1e-3], "optim.ema_beta": 0.995}, 0,
                                        "quick-mnist as shipped"),
    "widths 32, lr 1e-3, batch 32": (20000, {**HALF, **LR[1e-3], "train.batch_size": 32}, 0,
                                     "batch 32: 1.7x the steps of batch 64 in the same time"),
}


def kmeans(x: torch.Tensor, k: int, iters: int = 20, seed: int = 0) -> torch.Tensor:
    """Cluster labels (N,) of the rows of ``x`` (N, D): k-means++ seeding, then ``iters`` Lloyd iterations."""
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(len(x), (1,), generator=g)]
    d2 = ((x - centres) ** 2).sum(1)
    for _ in range(k - 1):
        i = torch.multinomial(d2, 1, generator=g)
        centres = torch.cat([centres, x[i]])
        d2 = torch.minimum(d2, ((x - x[i]) ** 2).sum(1))
    sq = (x * x).sum(1, keepdim=True)
    for _ in range(iters):
        labels = (sq - 2 * x @ centres.T + (centres * centres).sum(1)).argmin(1)
        for j in range(k):
            members = labels == j
            if members.any():
                centres[j] = x[members].mean(0)
    return (sq - 2 * x @ centres.T + (centres * centres).sum(1)).argmin(1)


class ByClusterSize(torch.nn.Module):
    """An unconditional view of a self-conditioned G: sample i gets the cluster at the golden-ratio point
    frac(i·0.618...) of the clusters' cumulative shares, so any run of samples follows the shares closely."""

    def __init__(self, G: torch.nn.Module, shares: np.ndarray):
        super().__init__()
        self.G, self.cum, self.i = G, torch.as_tensor(np.cumsum(shares), dtype=torch.float64), 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = (torch.arange(self.i, self.i + len(z), dtype=torch.float64) * 0.6180339887498949) % 1.0
        self.i += len(z)
        y = torch.searchsorted(self.cum, u).clamp(max=len(self.cum) - 1)
        return self.G(z, y.to(z.device))


def run_trial(name: str, runs: str) -> dict:
    """Train and score one trial in this process (one thread); its record."""
    import gankit
    from gankit.config import DataConfig, preset_config
    from gankit.data import load_dataset
    from gankit.metrics import Scorer
    from gankit.metrics.evaluate import parse_metrics

    torch.set_num_threads(1)
    steps, over, k, _ = TRIALS[name]
    fashion = DataConfig(name="fashion-mnist")
    data = load_dataset(fashion, log=lambda *_: None)
    shares = None
    if k:
        flat = data.images.reshape(len(data.images), -1).float() / 255
        labels = kmeans(flat, k)
        shares = np.bincount(labels.numpy(), minlength=k) / len(labels)
        data = type(data)(f"fashion-mnist kmeans{k}", data.images, labels, data.source, k)
        over = {**over, "model.cond": "concat", "model.num_classes": k}
    cfg = preset_config("dcgan-mnist").with_overrides({
        "data.name": "fashion-mnist", "train.precision": "bf16", "train.steps": steps, "train.epochs": None,
        "train.device": "cpu", "train.threads": 1, "train.progress": False, "train.sample_every": 0,
        "train.checkpoint_every": 0, **over})
    t0 = time.perf_counter()
    res = gankit.train(cfg, Path(runs) / name.replace(" ", "_").replace(",", ""), dataset=data, overwrite=True,
                       log=lambda *_: None)
    train_s = time.perf_counter() - t0
    g = gankit.load(res.run_dir)
    G = ByClusterSize(g.G, shares) if k else g.G
    scorer = Scorer(METRICS, n=N_SAMPLES, data=fashion, evaluator="pinned", log=lambda *_: None)
    rep = scorer.score_generator(G, g.z_dim, fashion)
    fd, kid, pr, cl = (rep["metrics"][s.name] for s in parse_metrics(METRICS, N_SAMPLES))
    return {"steps": steps, "overrides": over, "kmeans": k, "train_s": round(train_s, 1),
            "date": time.strftime("%Y-%m-%d", time.gmtime()), "torch": torch.__version__,
            "fd": fd["fd"], "kid": kid["kid"], "precision": pr["precision"], "recall": pr["recall"],
            "classes_over_2pct": int(sum(h >= 0.02 for h in cl["histogram"])),
            "evaluator_sha256": rep.get("evaluator", {}).get("sha256")}


def table(results: dict) -> str:
    lines = ["Every number here comes from `python scripts/quick_trials.py` (docs/zoo/quick_trials.json; "
             "`--cached` rebuilds this table from it). Do not edit by hand.", "",
             f"Fashion-MNIST, one thread, a fixed number of steps, {N_SAMPLES:,} samples in the pinned evaluator "
             "(FD is higher at 5,000 samples than at 10,000: compare within this table).", "",
             "| trial | steps | FD ↓ | KID ↓ | precision | recall | classes ≥ 2 % | what it tests |",
             "|---|---|---|---|---|---|---|---|"]
    for name, (_, _, _, what) in TRIALS.items():
        r = results.get(name)
        if r is None:
            lines.append(f"| {name} | not run yet | | | | | | {what} |")
            continue
        lines.append(f"| {name} | {r['steps']:,} | {r['fd']:.1f} | {r['kid']:.2f} | {r['precision']:.3f} | "
                     f"{r['recall']:.3f} | {r['classes_over_2pct']} | {what} |")
    return "\n".join(lines)


def write_doc(doc: Path, body: str) -> None:
    from gankit.io import atomic_write_text, replace_marked

    old = doc.read_text() if doc.is_file() else ""
    atomic_write_text(doc, replace_marked(old, START, END, body, "## How quick-mnist was chosen"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=1, help="trials at a time, one thread each")
    p.add_argument("--only", default="", help="comma-separated trial names (default: all)")
    p.add_argument("--runs", default="runs/quick_trials", help="the run folders")
    p.add_argument("--doc", type=Path, default=Path("docs/ZOO.md"))
    p.add_argument("--cached", action="store_true", help="rewrite the table from the JSON; train nothing")
    args = p.parse_args(argv)
    cache = args.doc.parent / "zoo" / "quick_trials.json"
    results = json.loads(cache.read_text()) if cache.is_file() else {}
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or list(TRIALS)
    unknown = [w for w in wanted if w not in TRIALS]
    if unknown:
        p.error(f"unknown trials {unknown}; the trials: {', '.join(TRIALS)}")
    todo = [] if args.cached else [w for w in wanted if w not in results]
    if todo:
        from gankit.io import atomic_write_text

        with ProcessPoolExecutor(max(1, args.jobs), mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_trial, name, args.runs): name for name in todo}
            for fut in futures:
                name = futures[fut]
                results[name] = fut.result()
                atomic_write_text(cache, json.dumps(dict(sorted(results.items())), indent=1) + "\n")
                r = results[name]
                print(f"{name}: FD {r['fd']:.1f}, precision {r['precision']:.3f}, recall {r['recall']:.3f} "
                      f"({r['train_s']:.0f} s)", flush=True)
    write_doc(args.doc, table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
