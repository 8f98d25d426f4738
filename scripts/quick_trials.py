"""The trials behind the quick-mnist and seed-plus recipes (issue #19): variants on Fashion-MNIST at a fixed number
of steps.

    python scripts/quick_trials.py                 # every quick-mnist trial not yet in docs/zoo/quick_trials.json
    python scripts/quick_trials.py --family seed   # the seed-plus trials (docs/zoo/seed_trials.json)
    python scripts/quick_trials.py --jobs 2        # two trials at a time (one thread each)
    python scripts/quick_trials.py --cached        # rewrite the doc's table from the JSON alone

A quick trial is dcgan-mnist's config with bf16 autocast (quick-mnist before the trials) and a few changes; a seed
trial is the seed's config (its layer sizes always kept) with one or two changes. Each trains for a fixed number of
steps on one thread (a step count, not a clock: a busy machine changes how long a trial takes,
not its result), then G (G_ema where kept) draws 5,000 samples scored in the pinned Fashion-MNIST evaluator: FD,
KID, precision/recall (k 3), classes. Trials compare at equal steps, or at equal time where the widths differ: a
step at widths 32 costs half of one at 64 (docs/BENCHMARKS.md "quick-mnist step speed"), so 6,000 steps at 32
stand against 3,000 at 64.

The ``N clusters`` trials are self-conditioning (``data.clusters``, gankit/data/clusters.py): the training
images get the labels of N k-means clusters of their pixels, a class-conditional DCGAN (cgan-mnist's nets) trains
on them with fake labels drawn by the clusters' sizes, and sampling draws each cluster in proportion to its size;
no human label is read.

Written: ``docs/zoo/quick_trials.json`` (``seed_trials.json`` for the seed family: every trial's config, steps,
seconds and scores; the source of truth, so a rerun skips what it holds) and the region of docs/ZOO.md between
``<!-- quick-trials:start -->`` and ``<!-- quick-trials:end -->`` (``seed-trials`` for the seed family). Run folders
go to ``--runs`` (default runs/quick_trials; runs/quick_trials/seed for the seed family).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

import torch

METRICS, N_SAMPLES = "fd,kid,pr,classes", 5_000
HALF = {"model.g_channels": 32, "model.d_channels": 32}
LR = {1e-3: {"optim.g_lr": 1e-3, "optim.d_lr": 1e-3}, 5e-4: {"optim.g_lr": 5e-4, "optim.d_lr": 5e-4}}
QUICK = {**HALF, **LR[1e-3], "optim.ema_beta": 0.995}  # quick-mnist's recipe before self-conditioning


def clusters(k: int, cond: str = "concat") -> dict:
    """Self-conditioning (data.clusters): the labels of k k-means clusters of the pixels for a conditional model
    (``cond``: concat, cgan-mnist's one-hot input planes in D; projection, Miyato & Koyama's)."""
    return {"data.clusters": k, "model.cond": cond, "model.num_classes": k}


# name: (steps, overrides of the family's base, what it tests)
TRIALS: dict[str, tuple[int, dict, str]] = {
    "base": (3000, {}, "dcgan-mnist in bf16 (lr 2e-4, widths 64)"),
    "lr 5e-4": (3000, LR[5e-4], "a higher learning rate"),
    "lr 1e-3": (3000, LR[1e-3], "higher still"),
    "lr 2e-3": (3000, {"optim.g_lr": 2e-3, "optim.d_lr": 2e-3}, "higher still"),
    "linear decay": (3000, {"optim.lr_schedule": "linear"}, "lr 2e-4 decaying to 0 at the last step"),
    "G_ema 0.999": (3000, {"optim.ema_beta": 0.999}, "an EMA of G"),
    "widths 32": (6000, HALF, "half the widths, the time of 3,000 steps at 64"),
    "widths 32, lr 5e-4": (6000, {**HALF, **LR[5e-4]}, "both"),
    "widths 32, lr 1e-3": (12000, {**HALF, **LR[1e-3]}, "longer"),
    "widths 32, lr 1e-3, G_ema 0.995": (12000, {**HALF, **LR[1e-3], "optim.ema_beta": 0.995},
                                        "quick-mnist before the longer trials"),
    "quick-mnist, 18,000 steps": (18000, QUICK, "quick-mnist before self-conditioning, for the steps of 5 minutes on "
                                                "2 cores"),
    "quick-mnist, G_ema 0.999, 18,000 steps": (18000, {**HALF, **LR[1e-3], "optim.ema_beta": 0.999},
                                               "a longer EMA at that length"),
    "quick-mnist, lr 2e-3, 18,000 steps": (18000, {**HALF, "optim.g_lr": 2e-3, "optim.d_lr": 2e-3,
                                                   "optim.ema_beta": 0.995}, "a higher lr at that length"),
    "quick-mnist, 5 clusters, 18,000 steps": (18000, {**QUICK, **clusters(5)}, "self-conditioning on 5 clusters"),
    "quick-mnist, 10 clusters, 18,000 steps": (18000, {**QUICK, **clusters(10)},
                                               "on 10 clusters: quick-mnist before the projection trials"),
    "quick-mnist, 20 clusters, 18,000 steps": (18000, {**QUICK, **clusters(20)}, "on 20 clusters"),
    "quick-mnist, 10 clusters, projection D, 18,000 steps": (
        18000, {**QUICK, **clusters(10, "projection")},
        "D reads the cluster by projection, not as 10 input planes"),
    "quick-mnist, 10 clusters, lr 2e-3, 18,000 steps": (18000, {**QUICK, **clusters(10), "optim.g_lr": 2e-3,
                                                                "optim.d_lr": 2e-3}, "a higher lr with the clusters"),
    "quick-mnist, 15 clusters, projection D, 18,000 steps": (
        18000, {**QUICK, **clusters(15, "projection")}, "15 clusters, read by projection"),
    "quick-mnist, 20 clusters, projection D, 18,000 steps": (
        18000, {**QUICK, **clusters(20, "projection")}, "20 clusters, read by projection"),
    "quick-mnist, 10 clusters, projection D, G_ema 0.999, 18,000 steps": (
        18000, {**QUICK, **clusters(10, "projection"), "optim.ema_beta": 0.999},
        "a longer EMA with the clusters"),
    "quick-mnist, 10 clusters, projection D, D lr 2e-3, 18,000 steps": (
        18000, {**QUICK, **clusters(10, "projection"), "optim.d_lr": 2e-3},
        "D learning twice as fast as G"),
    "quick-mnist, 30 clusters, projection D, 18,000 steps": (
        18000, {**QUICK, **clusters(30, "projection")},
        "30 clusters, read by projection: quick-mnist as shipped"),
    "quick-mnist, 50 clusters, projection D, 18,000 steps": (
        18000, {**QUICK, **clusters(50, "projection")}, "50 clusters, read by projection"),
    "widths 32, lr 1e-3, batch 32": (20000, {**HALF, **LR[1e-3], "train.batch_size": 32},
                                     "batch 32: 1.7x the steps of batch 64 in the same time"),
}


# The seed-plus trials: the seed's networks exactly (784-128-784 G, 784-128-1 D), one change at a time, for the seed's
# own 18,000 steps (30 epochs of batch 100); "longer" rows show whether time alone would end the collapse.
SP = {"loss.r1_gamma": 30.0, "optim.ema_beta": 0.999}  # seed-plus's first two fixes, R1 and G_ema
RT1 = {"loss.real_target": 1.0}  # the target-free losses (hinge, relativistic, Wasserstein) take no label smoothing
SEED_TRIALS: dict[str, tuple[int, dict, str]] = {
    "seed": (18000, {}, "the tutorial's GAN"),
    "dropout 0.3": (18000, {"model.d_dropout": 0.3}, "seed-plus before these trials"),
    "dropout 0.3, 90,000 steps": (90000, {"model.d_dropout": 0.3}, "five times longer"),
    "R1 1": (18000, {"loss.r1_gamma": 1.0}, "a gradient penalty on real data (Mescheder et al. 2018)"),
    "R1 10": (18000, {"loss.r1_gamma": 10.0}, "a stronger one"),
    "relativistic, R1 R2 1": (18000, {**RT1, "loss.name": "relativistic", "loss.r1_gamma": 1.0,
                                      "loss.r2_gamma": 1.0}, "R3GAN's loss and penalties"),
    "R1 30": (18000, {"loss.r1_gamma": 30.0}, "stronger still"),
    "R1 100": (18000, {"loss.r1_gamma": 100.0}, "stronger still"),
    "R1 10, dropout 0.3": (18000, {"loss.r1_gamma": 10.0, "model.d_dropout": 0.3}, "both fixes"),
    "R1 10, 90,000 steps": (90000, {"loss.r1_gamma": 10.0}, "five times longer"),
    "R1 30, 90,000 steps": (90000, {"loss.r1_gamma": 30.0}, "five times longer"),
    "R1 30, G_ema 0.999": (18000, {"loss.r1_gamma": 30.0, "optim.ema_beta": 0.999}, "R1 and an EMA of G"),
    "R1 30, pack 2": (18000, {"loss.r1_gamma": 30.0, "model.pack": 2}, "R1 and PacGAN's packing of 2"),
    "R1 30, no label smoothing": (18000, {"loss.r1_gamma": 30.0, "loss.real_target": 1.0},
                                  "R1 with real target 1"),
    "R1 10, translation": (18000, {"loss.r1_gamma": 10.0, "loss.augment": "translation"}, "R1 and augmentation"),
    "minibatch std 4": (18000, {"model.d_mbstd": 4},
                        "D sees the samples' spread in groups of 4 (Karras et al. 2018; one more input to its head)"),
    "R1 30, minibatch std 4": (18000, {"loss.r1_gamma": 30.0, "model.d_mbstd": 4}, "R1 and the spread"),
    "spectral norm": (18000, {"model.d_spectral_norm": True}, "spectral normalisation of D's weights"),
    "hinge": (18000, {**RT1, "loss.name": "hinge"}, "the hinge loss"),
    "TTUR": (18000, {"optim.g_lr": 2.5e-4, "optim.d_lr": 1e-3}, "G's lr a quarter of D's (Heusel et al. 2017)"),
    "instance noise 0.3": (18000, {"loss.instance_noise": 0.3}, "noise on D's inputs, decaying to 0"),
    "translation": (18000, {"loss.augment": "translation"}, "DiffAugment's translation on D's inputs"),
    "WGAN-GP": (18000, {**RT1, "loss.name": "wasserstein", "loss.gp_weight": 10.0, "train.d_steps": 5,
                        "optim.g_lr": 1e-4, "optim.d_lr": 1e-4, "optim.beta1": 0.0, "optim.beta2": 0.9},
                "the Wasserstein loss with a gradient penalty, 5 D steps (Gulrajani et al. 2017)"),
    "R1 30, G_ema 0.999, 90,000 steps": (90000, SP,
                                         "R1 30 and G_ema 0.999 for 90,000 steps (about 5 minutes on 2 cores): "
                                         "seed-plus before the Adam and D-step trials"),
    "10 clusters": (18000, clusters(10, "projection"),
                    "self-conditioning on 10 k-means clusters of the pixels, D reading them by projection"),
    "R1 30, G_ema 0.999, 10 clusters": (18000, {**SP, **clusters(10, "projection")}, "R1, the EMA and the clusters"),
    "seed-plus, 10 clusters": (90000, {**SP, **clusters(10, "projection")},
                               "seed-plus self-conditioned on 10 clusters, 90,000 steps"),
    "R1 30, G_ema 0.999, beta1 0.5": (18000, {**SP, "optim.beta1": 0.5}, "Adam's beta1 at DCGAN's 0.5"),
    "R1 30, G_ema 0.999, lr 2e-4": (18000, {**SP, "optim.g_lr": 2e-4, "optim.d_lr": 2e-4}, "a fifth of the lr"),
    "R1 30, G_ema 0.999, lr 2e-4, beta1 0.5": (18000, {**SP, "optim.g_lr": 2e-4, "optim.d_lr": 2e-4,
                                                      "optim.beta1": 0.5}, "DCGAN's Adam settings"),
    "R1 30, G_ema 0.999, 2 D steps": (18000, {**SP, "train.d_steps": 2}, "two D updates per G update"),
    "R1 30, G_ema 0.999, batch 25": (18000, {**SP, "train.batch_size": 25}, "a quarter of the batch"),
    "R1 30, G_ema 0.999, 3 D steps": (18000, {**SP, "train.d_steps": 3}, "three D updates per G update"),
    "R1 30, G_ema 0.999, beta1 0.5, 2 D steps": (18000, {**SP, "optim.beta1": 0.5, "train.d_steps": 2},
                                                "beta1 0.5 and two D updates"),
    "R1 30, G_ema 0.999, beta1 0.5, lr 2e-3": (18000, {**SP, "optim.beta1": 0.5, "optim.g_lr": 2e-3,
                                                      "optim.d_lr": 2e-3}, "beta1 0.5 and twice the lr"),
    "seed-plus": (54000, {**SP, "optim.beta1": 0.5, "train.d_steps": 2},
                  "both, for 54,000 steps, about the time of 90,000 single steps: seed-plus as shipped"),
}


class Family(NamedTuple):
    """One table of trials: the preset they change, what they all add, where the record and the table go."""
    base: str
    common: dict
    trials: dict
    cache: str
    marker: str
    heading: str
    about: str


FAMILIES = {
    "quick": Family("dcgan-mnist", {"train.precision": "bf16"}, TRIALS, "quick_trials.json", "quick-trials",
                    "## How quick-mnist was chosen", "dcgan-mnist in bf16 with one change at a time"),
    "seed": Family("seed", {}, SEED_TRIALS, "seed_trials.json", "seed-trials", "## Ending seed-plus's collapse",
                   "the seed with one change at a time"),
}


def markers(family: Family) -> tuple[str, str]:
    return f"<!-- {family.marker}:start -->", f"<!-- {family.marker}:end -->"


START, END = markers(FAMILIES["quick"])


def run_trial(family: str, name: str, runs: str) -> dict:
    """Train and score one trial of a family in this process (one thread); its record."""
    import gankit
    from gankit.config import DataConfig, preset_config
    from gankit.data import load_dataset
    from gankit.metrics import Scorer
    from gankit.metrics.evaluate import parse_metrics
    from gankit.metrics.scoring import num_classes

    torch.set_num_threads(1)
    fam = FAMILIES[family]
    steps, over, _ = fam.trials[name]
    fashion = DataConfig(name="fashion-mnist")
    data = load_dataset(fashion, log=lambda *_: None)
    cfg = preset_config(fam.base).with_overrides({
        "data.name": "fashion-mnist", **fam.common, "train.steps": steps, "train.epochs": None,
        "train.device": "cpu", "train.threads": 1, "train.progress": False, "train.sample_every": 0,
        "train.checkpoint_every": 0, **over})
    t0 = time.perf_counter()
    run_dir = Path(runs) / ("" if family == "quick" else family) / name.replace(" ", "_").replace(",", "")
    res = gankit.train(cfg, run_dir, dataset=data, overwrite=True, log=lambda *_: None)
    train_s = time.perf_counter() - t0
    g = gankit.load(res.run_dir)
    scorer = Scorer(METRICS, n=N_SAMPLES, data=fashion, evaluator="pinned", log=lambda *_: None)
    rep = scorer.score_generator(g.G, g.z_dim, fashion, num_classes=num_classes(g.config.model),
                                 label_shares=g.label_shares)
    fd, kid, pr, cl = (rep["metrics"][s.name] for s in parse_metrics(METRICS, N_SAMPLES))
    return {"steps": steps, "overrides": over, "train_s": round(train_s, 1),
            "date": time.strftime("%Y-%m-%d", time.gmtime()), "torch": torch.__version__,
            "fd": fd["fd"], "kid": kid["kid"], "precision": pr["precision"], "recall": pr["recall"],
            "classes_over_2pct": int(sum(h >= 0.02 for h in cl["histogram"])),
            "evaluator_sha256": rep.get("evaluator", {}).get("sha256")}


def table(results: dict, family: str = "quick") -> str:
    fam = FAMILIES[family]
    cmd = "python scripts/quick_trials.py" + ("" if family == "quick" else f" --family {family}")
    lines = [f"Every number here comes from `{cmd}` (docs/zoo/{fam.cache}; "
             "`--cached` rebuilds this table from it). Do not edit by hand.", "",
             f"Fashion-MNIST, {fam.about}, one thread, a fixed number of steps, {N_SAMPLES:,} samples in the pinned "
             "evaluator "
             "(FD is higher at 5,000 samples than at 10,000: compare within this table).", "",
             "| trial | steps | FD ↓ | KID ↓ | precision | recall | classes ≥ 2 % | what it tests |",
             "|---|---|---|---|---|---|---|---|"]
    for name, (_, _, what) in fam.trials.items():
        r = results.get(name)
        if r is None:
            lines.append(f"| {name} | not run yet | | | | | | {what} |")
            continue
        lines.append(f"| {name} | {r['steps']:,} | {r['fd']:.1f} | {r['kid']:.2f} | {r['precision']:.3f} | "
                     f"{r['recall']:.3f} | {r['classes_over_2pct']} | {what} |")
    return "\n".join(lines)


def write_doc(doc: Path, body: str, family: str = "quick") -> None:
    from gankit.io import atomic_write_text, replace_marked

    old = doc.read_text() if doc.is_file() else ""
    atomic_write_text(doc, replace_marked(old, *markers(FAMILIES[family]), body, FAMILIES[family].heading))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=sorted(FAMILIES), default="quick",
                   help="quick: the quick-mnist trials (default); seed: the seed-plus trials")
    p.add_argument("--jobs", type=int, default=1, help="trials at a time, one thread each")
    p.add_argument("--only", default="", help="semicolon-separated trial names (default: all)")
    p.add_argument("--runs", default="runs/quick_trials", help="the run folders")
    p.add_argument("--doc", type=Path, default=Path("docs/ZOO.md"))
    p.add_argument("--cached", action="store_true", help="rewrite the table from the JSON; train nothing")
    args = p.parse_args(argv)
    fam = FAMILIES[args.family]
    cache = args.doc.parent / "zoo" / fam.cache
    results = json.loads(cache.read_text()) if cache.is_file() else {}
    wanted = [s.strip() for s in args.only.split(";") if s.strip()] or list(fam.trials)
    unknown = [w for w in wanted if w not in fam.trials]
    if unknown:
        p.error(f"unknown trials {unknown}; the trials: {'; '.join(fam.trials)}")
    todo = [] if args.cached else [w for w in wanted if w not in results]
    if todo:
        from gankit.io import atomic_write_text

        with ProcessPoolExecutor(max(1, args.jobs), mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_trial, args.family, name, args.runs): name for name in todo}
            for fut in as_completed(futures):
                name = futures[fut]
                results[name] = fut.result()
                atomic_write_text(cache, json.dumps(dict(sorted(results.items())), indent=1) + "\n")
                r = results[name]
                print(f"{name}: FD {r['fd']:.1f}, precision {r['precision']:.3f}, recall {r['recall']:.3f} "
                      f"({r['train_s']:.0f} s)", flush=True)
    write_doc(args.doc, table(results, args.family), args.family)
    return 0


if __name__ == "__main__":
    sys.exit(main())
