"""GPU paths in one short script: images/s of `seed`, `dcgan-mnist` and `r3gan-cifar10` with and without bf16/fp16
autocast, channels-last, torch.compile and CUDA graphs, and an FD check that the GPU's samples score like the CPU's.

    python bench/gpu_speed.py [--device cuda] [--seconds 20] [--fd-steps 3000] [--append docs/BENCHMARKS.md]

Each variant trains from scratch on Fashion-MNIST for about ``--seconds`` (the first ``--warmup`` steps, 200, which
include compilation and cuDNN autotuning, are not timed). The FD check trains `seed` for ``--fd-steps`` steps with the
same seed on this device and on the CPU and scores both with the Fashion-MNIST evaluator (fd5k). With
``--device cpu --seconds 2 --fd-steps 100 --warmup 4`` it is a smoke test of the script itself.

`r3gan-cifar10` trains on CIFAR-10 where gankit finds it (data.root, GANKIT_DATA); a machine without it times the
same step on 10,000 random 32x32x3 images (a step's speed does not depend on what the pixels hold), and the table
says which it was.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

import gankit
from gankit import metrics
from gankit.data import Dataset, load_dataset
from gankit.training.loop import Trainer

GRAPHS = {"train.cuda_graphs": True}
VARIANTS = {
    "seed": [{}, {"train.fused_step": False}, {"train.precision": "bf16"}, {"train.compile": True}, GRAPHS,
             {**GRAPHS, "train.fused_step": False}, {**GRAPHS, "train.precision": "bf16"}],
    "dcgan-mnist": [{}, {"train.precision": "bf16"}, {"train.precision": "fp16"}, {"train.channels_last": True},
                    {"train.precision": "bf16", "train.channels_last": True, "train.compile": True}, GRAPHS,
                    {**GRAPHS, "train.precision": "bf16", "train.channels_last": True}],
    "r3gan-cifar10": [{}, {"train.precision": "bf16"}, {"train.channels_last": True},
                      {"train.precision": "bf16", "train.channels_last": True}, GRAPHS,
                      {**GRAPHS, "train.precision": "bf16"}],
}


def cifar10_or_noise():
    """(CIFAR-10's training set, "CIFAR-10"), or where it is not on this machine (random uint8 images of its shape,
    "random 32x32x3 images, CIFAR-10 not found: <why>"). A speed bench downloads nothing."""
    try:
        data = replace(gankit.preset("r3gan-cifar10").data, download=False)
        return load_dataset(data, log=lambda *_: None), "CIFAR-10"
    except gankit.GankitError as e:
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (10_000, 3, 32, 32), generator=g, dtype=torch.uint8)
        labels = torch.randint(0, 10, (10_000,), generator=g)
        why = str(e).splitlines()[0]
        return Dataset("cifar10", images, labels, "random", 10), f"random 32x32x3 images, CIFAR-10 not found: {why}"


def images_per_s(preset: str, over: dict, device: str, seconds: float, data, warmup: int = 200) -> float:
    """Images/s of the median logged window after ``warmup`` untimed steps, over about ``seconds``."""
    every = 50 if warmup >= 50 else max(1, warmup)
    cfg = gankit.preset(preset).with_overrides({"data.name": data.name, "train.device": device,
                                                "train.steps": 10**7, "train.progress": False, "train.log_every": every,
                                                "train.sample_every": 0, "train.checkpoint_every": 0, **over})
    marks: list[tuple[int, float]] = []

    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, Path(tmp) / "r", dataset=data, log=lambda *_: None)

        def on_log(t):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            marks.append((t.step, time.perf_counter()))
            if t.step >= warmup and marks[-1][1] - next(m for s, m in marks if s >= warmup) > seconds:
                t.stop()
        tr.add_callback("on_log", on_log)
        tr.fit()
    timed = [(s, m) for s, m in marks if s >= warmup]
    rates = [(s1 - s0) / (m1 - m0) for (s0, m0), (s1, m1) in zip(timed, timed[1:])]
    return statistics.median(rates) * cfg.train.batch_size if rates else float("nan")


def fd_after(device: str, steps: int, data, over: dict | None = None) -> float:
    cfg = gankit.preset("seed").with_overrides({"data.name": "fashion-mnist", "train.device": device,
                                                "train.steps": steps, "train.progress": False, "train.sample_every": 0,
                                                **(over or {})})
    with tempfile.TemporaryDirectory() as tmp:
        run = gankit.train(cfg, Path(tmp) / "r", dataset=data, log=lambda *_: None)
        G = run.G.to("cpu").eval()
    ev = metrics.load_evaluator(cfg.data)
    _, test = metrics.real_splits(cfg.data, log=lambda *_: None)
    rep = metrics.evaluate(metrics.generator_sampler(G, cfg.model.z_dim), "fd5k", evaluator=ev, real_test=test,
                           floor=False)
    return rep["metrics"]["fd5k"]["fd"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fd-steps", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=200, help="untimed steps first (compilation, cuDNN autotuning)")
    ap.add_argument("--append", help="append the results to this Markdown file")
    ap.add_argument("--presets", default=",".join(VARIANTS), help="which presets to time (default: all)")
    ap.add_argument("--no-fd", action="store_true", help="skip the GPU-vs-CPU FD check")
    args = ap.parse_args()
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    fashion = load_dataset(gankit.preset("seed").data.__class__(name="fashion-mnist"), log=lambda *_: None)
    lines = [f"Device: {name}, torch {torch.__version__}.", "",
             "| preset | variant | images/s | vs first row |", "|---|---|---|---|"]
    rates: dict[tuple[str, str], float] = {}
    notes = []
    for preset, variants in VARIANTS.items():
        if preset not in args.presets.split(","):
            continue
        data = fashion
        if preset == "r3gan-cifar10":
            data, what = cifar10_or_noise()
            notes.append(f"`r3gan-cifar10` trained on {what} (batch {gankit.preset(preset).train.batch_size}).")
        base = None
        for over in variants:
            label = ", ".join(f"{k.split('.')[1]}={v}" for k, v in over.items()) or "fp32"
            try:
                r = images_per_s(preset, over, args.device, args.seconds, data, args.warmup)
                base = r if base is None else base
                rates[(preset, label)] = r
                rate, ratio = f"{r:,.0f}", f"{r / base:.2f}x"
            except gankit.GankitError as e:  # e.g. fp16 on a CPU
                rate, ratio = f"not run: {e}", ""
            except Exception as e:  # a broken variant is a result too; the others still run
                rate, ratio = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}", ""
            lines.append(f"| {preset} | {label} | {rate} | {ratio} |")
            print(lines[-1], flush=True)
    lines += ["", *notes] if notes else []
    for label in ("fp32", "cuda_graphs=True"):
        if ("seed", label) in rates:
            epoch_s = 600 / (rates[("seed", label)] / 100)
            lines += ["", f"One MNIST-sized epoch of `seed` (600 steps of 100), {label}: {epoch_s:.2f} s."]
    dev_over = GRAPHS if args.device.startswith("cuda") else {}
    if args.no_fd:
        return _write(lines, name, args)
    try:
        fd_dev = fd_after(args.device, args.fd_steps, fashion, dev_over)
    except Exception as e:
        print(f"fd with {dev_over} failed ({type(e).__name__}: {e}); without it", flush=True)
        dev_over = {}
        fd_dev = fd_after(args.device, args.fd_steps, fashion, dev_over)
    fd_cpu = fd_after("cpu", args.fd_steps, fashion)
    fd_cpu2 = fd_after("cpu", args.fd_steps, fashion, {"train.seed": 1})
    lines += ["", f"`seed` after {args.fd_steps} steps (fd5k, Fashion-MNIST evaluator): {fd_dev:.1f} on "
              f"{args.device}{' with CUDA graphs' if dev_over else ''} (seed 0), {fd_cpu:.1f} on the CPU (seed 0) and "
              f"{fd_cpu2:.1f} on the CPU (seed 1). Float rounding differs between devices, so the two seed-0 runs "
              f"part ways; the seed-1 CPU run shows how far two seeds differ."]
    return _write(lines, name, args)


def _write(lines: list[str], name: str, args) -> None:
    text = "\n".join(lines)
    print(text)
    if args.append:
        with open(args.append, "a") as f:
            cmd = " ".join(["python bench/gpu_speed.py", *sys.argv[1:]])
            f.write(f"\n## GPU ({name})\n\nGenerated by `{cmd}`.\n\n" + text + "\n")


if __name__ == "__main__":
    main()
