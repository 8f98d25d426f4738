"""GPU paths in one short script: images/s of `seed` and `dcgan-mnist` with and without bf16/fp16 autocast,
channels-last and torch.compile, and an FD check that the GPU's samples score like the CPU's.

    python bench/gpu_speed.py [--device cuda] [--seconds 20] [--fd-steps 3000] [--append docs/BENCHMARKS.md]

Each variant trains from scratch on Fashion-MNIST for about ``--seconds`` (the first 200 steps, which include
compilation and cuDNN autotuning, are not timed). The FD check trains `seed` for ``--fd-steps`` steps with the
same seed on this device and on the CPU and scores both with the Fashion-MNIST evaluator (fd5k). With
``--device cpu --seconds 2 --fd-steps 100`` it is a smoke test of the script itself.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

import gankit
from gankit import metrics
from gankit.data import load_dataset
from gankit.train.loop import Trainer

VARIANTS = {
    "seed": [{}, {"train.precision": "bf16"}, {"train.compile": True}],
    "dcgan-mnist": [{}, {"train.precision": "bf16"}, {"train.precision": "fp16"}, {"train.channels_last": True},
                    {"train.precision": "bf16", "train.channels_last": True, "train.compile": True}],
}


def images_per_s(preset: str, over: dict, device: str, seconds: float, data) -> float:
    cfg = gankit.preset(preset).with_overrides({"data.name": "fashion-mnist", "train.device": device,
                                                "train.steps": 10**7, "train.progress": False, "train.log_every": 50,
                                                "train.sample_every": 0, "train.checkpoint_every": 0, **over})
    marks: list[tuple[int, float]] = []

    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, Path(tmp) / "r", dataset=data, log=lambda *_: None)

        def on_log(t):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            marks.append((t.step, time.perf_counter()))
            if t.step >= 200 and marks[-1][1] - next(m for s, m in marks if s >= 200) > seconds:
                t.stop()
        tr.add_callback("on_log", on_log)
        tr.fit()
    timed = [(s, m) for s, m in marks if s >= 200]
    rates = [(s1 - s0) / (m1 - m0) for (s0, m0), (s1, m1) in zip(timed, timed[1:])]
    return statistics.median(rates) * cfg.train.batch_size if rates else float("nan")


def fd_after(device: str, steps: int, data) -> float:
    cfg = gankit.preset("seed").with_overrides({"data.name": "fashion-mnist", "train.device": device,
                                                "train.steps": steps, "train.progress": False, "train.sample_every": 0})
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
    ap.add_argument("--append", help="append the results to this Markdown file")
    args = ap.parse_args()
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    data = load_dataset(gankit.preset("seed").data.__class__(name="fashion-mnist"), log=lambda *_: None)
    lines = [f"Device: {name}, torch {torch.__version__}.", "",
             "| preset | variant | images/s |", "|---|---|---|"]
    for preset, variants in VARIANTS.items():
        for over in variants:
            label = ", ".join(f"{k.split('.')[1]}={v}" for k, v in over.items()) or "fp32"
            try:
                rate = f"{images_per_s(preset, over, args.device, args.seconds, data):,.0f}"
            except gankit.GankitError as e:  # e.g. fp16 on a CPU
                rate = f"not run: {e}"
            lines.append(f"| {preset} | {label} | {rate} |")
            print(lines[-1], flush=True)
    epoch_s = 60000 / 100 / (float(lines[4].split("|")[3].replace(",", "")) / 100)
    lines += ["", f"One MNIST-sized epoch of `seed` (600 steps of 100) at the fp32 rate: {epoch_s:.2f} s."]
    fd_dev, fd_cpu = fd_after(args.device, args.fd_steps, data), fd_after("cpu", args.fd_steps, data)
    lines += [f"`seed` after {args.fd_steps} steps, same seed: fd5k {fd_dev:.1f} on {args.device}, {fd_cpu:.1f} on "
              f"the CPU (runs differ in float rounding, so compare them as two seeds, not bit for bit)."]
    text = "\n".join(lines)
    print(text)
    if args.append:
        with open(args.append, "a") as f:
            f.write(f"\n## GPU ({name})\n\nGenerated by `python bench/gpu_speed.py --append docs/BENCHMARKS.md`.\n\n"
                    + text + "\n")


if __name__ == "__main__":
    main()
