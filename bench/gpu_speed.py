"""GPU paths in one short script: images/s of `seed` and `dcgan-mnist` with and without bf16/fp16 autocast,
channels-last, torch.compile and CUDA graphs, and an FD check that the GPU's samples score like the CPU's.

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
import sys
import tempfile
import time
from pathlib import Path

import torch

import gankit
from gankit import metrics
from gankit.data import load_dataset
from gankit.training.loop import Trainer

GRAPHS = {"train.cuda_graphs": True}
VARIANTS = {
    "seed": [{}, {"train.fused_step": False}, {"train.precision": "bf16"}, {"train.compile": True}, GRAPHS,
             {**GRAPHS, "train.fused_step": False}, {**GRAPHS, "train.precision": "bf16"}],
    "dcgan-mnist": [{}, {"train.precision": "bf16"}, {"train.precision": "fp16"}, {"train.channels_last": True},
                    {"train.precision": "bf16", "train.channels_last": True, "train.compile": True}, GRAPHS,
                    {**GRAPHS, "train.precision": "bf16", "train.channels_last": True}],
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
    ap.add_argument("--append", help="append the results to this Markdown file")
    ap.add_argument("--presets", default=",".join(VARIANTS), help="which presets to time (default: all)")
    ap.add_argument("--no-fd", action="store_true", help="skip the GPU-vs-CPU FD check")
    args = ap.parse_args()
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    data = load_dataset(gankit.preset("seed").data.__class__(name="fashion-mnist"), log=lambda *_: None)
    lines = [f"Device: {name}, torch {torch.__version__}.", "",
             "| preset | variant | images/s | vs first row |", "|---|---|---|---|"]
    rates: dict[tuple[str, str], float] = {}
    for preset, variants in VARIANTS.items():
        if preset not in args.presets.split(","):
            continue
        base = None
        for over in variants:
            label = ", ".join(f"{k.split('.')[1]}={v}" for k, v in over.items()) or "fp32"
            try:
                r = images_per_s(preset, over, args.device, args.seconds, data)
                base = r if base is None else base
                rates[(preset, label)] = r
                rate, ratio = f"{r:,.0f}", f"{r / base:.2f}x"
            except gankit.GankitError as e:  # e.g. fp16 on a CPU
                rate, ratio = f"not run: {e}", ""
            except Exception as e:  # a broken variant is a result too; the others still run
                rate, ratio = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}", ""
            lines.append(f"| {preset} | {label} | {rate} | {ratio} |")
            print(lines[-1], flush=True)
    for label in ("fp32", "cuda_graphs=True"):
        if ("seed", label) in rates:
            epoch_s = 600 / (rates[("seed", label)] / 100)
            lines += ["", f"One MNIST-sized epoch of `seed` (600 steps of 100), {label}: {epoch_s:.2f} s."]
    dev_over = GRAPHS if args.device.startswith("cuda") else {}
    if args.no_fd:
        return _write(lines, name, args)
    try:
        fd_dev = fd_after(args.device, args.fd_steps, data, dev_over)
    except Exception as e:
        print(f"fd with {dev_over} failed ({type(e).__name__}: {e}); without it", flush=True)
        dev_over = {}
        fd_dev = fd_after(args.device, args.fd_steps, data, dev_over)
    fd_cpu = fd_after("cpu", args.fd_steps, data)
    fd_cpu2 = fd_after("cpu", args.fd_steps, data, {"train.seed": 1})
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
