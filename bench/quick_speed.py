"""Speed of the quick-mnist step on CPU: what each switch buys, against a careful plain-PyTorch step of the same nets.

    python bench/quick_speed.py [--reps 3] [--window-steps 150] [--quick] [--write docs/BENCHMARKS.md]
    python bench/quick_speed.py --by-cpu [--reps 3] [--window-steps 150] [--write docs/BENCHMARKS.md] [--cached]

Contestants run interleaved, each over ``--window-steps`` steps of ``gankit`` training timed in 50-step windows, and
the figure is the median window (ratios come from the same run, so a busy machine slows them alike):

- ``careful``: bench/baselines.careful_conv, eager fp32, D frozen in the G step, one D pass on cat(real, fake) where
  D has no batch norm (quick-mnist's D has it, as dcgan-mnist's: two passes there, in gankit's step too);
- gankit's step on the same config in fp32, with channels-last, with bf16 autocast, with both, with torch.compile,
  and the preset as shipped;
- trade-offs of the preset: batch size (images/s) and widths (steps/s).

torch.compile's cost (the first steps, compiled, against the same steps eager) is timed apart from its steady speed.

``--by-cpu`` times only what precision buys on this CPU (careful fp32, gankit fp32, gankit bf16, and the preset as
shipped, whose ``train.precision auto`` takes bf16 only where the CPU has it in hardware) and keeps one row per CPU
(model, flags, threads) in docs/bench/precision_by_cpu.json: the table "bf16 by CPU" in BENCHMARKS.md grows by one
row for each kind of machine the bench has run on (``--cached``: the table from the JSON alone, nothing timed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines  # noqa: E402
from train_speed import fashion, gankit_windows  # noqa: E402

import gankit  # noqa: E402
from gankit.io import atomic_write_text, replace_marked  # noqa: E402
from gankit.training import accel  # noqa: E402
from gankit.training.loop import Trainer  # noqa: E402

PRESET = "quick-mnist"
START, END = "<!-- quick-speed:start -->", "<!-- quick-speed:end -->"
# Every switch of the preset off: the step the switches are measured against.
PLAIN = {"train.precision": "fp32", "train.channels_last": False, "train.compile": False}
VARIANTS = {
    "gankit fp32": PLAIN,
    "+ channels-last": {**PLAIN, "train.channels_last": True},
    "+ bf16": {**PLAIN, "train.precision": "bf16"},
    "+ bf16 + channels-last": {**PLAIN, "train.precision": "bf16", "train.channels_last": True},
    "+ compile": {**PLAIN, "train.compile": True},
    "preset as shipped": {},
}
BY_CPU = ("gankit fp32", "+ bf16", "preset as shipped")  # --by-cpu: the contestants next to careful
CPU_START, CPU_END = "<!-- precision-by-cpu:start -->", "<!-- precision-by-cpu:end -->"
CPU_JSON = Path(__file__).resolve().parents[1] / "docs" / "bench" / "precision_by_cpu.json"
ISA = ("avx2", "avx512bw", "avx512_bf16", "amx_bf16")  # the flags bf16's speed turns on


def cpu_identity() -> dict:
    """This CPU's model name and the instruction sets that decide bf16's speed."""
    name, flags = accel.cpu_info()
    return {"cpu": name, "isa": [f for f in ISA if f in flags]}


def rate(windows: list[float], batch: int) -> tuple[float, float]:
    """(steps/s, images/s) of the median 50-step window."""
    w = statistics.median(windows)
    return 50 / w, 50 * batch / w


def compile_cost(cfg, data, steps: int = 5) -> dict[str, float]:
    """Seconds of the first ``steps`` steps with and without torch.compile (the difference is the compile cost)."""
    out = {}
    for name, flag in (("eager", False), ("compiled", True)):
        c = cfg.with_overrides({**PLAIN, "train.compile": flag, "train.steps": 100, "train.progress": False,
                                "train.sample_every": 0, "train.checkpoint_every": 0})
        with tempfile.TemporaryDirectory() as tmp:
            torch._dynamo.reset()
            tr = Trainer(c, Path(tmp) / "r", dataset=data, log=lambda *_: None)
            batch = [data.images[: c.train.batch_size]]
            labels = [tr.data.labels[: c.train.batch_size]] if c.model.cond != "none" else None  # its clusters
            t0 = time.perf_counter()
            for _ in range(steps):
                tr.train_step(batch, labels)
            out[name] = time.perf_counter() - t0
    return out


def careful_labels(cfg, data):
    """(labels, shares) for the careful step: where the preset self-conditions, the same k-means clusters and
    fake-label draws as gankit's run; else (None, None)."""
    if not cfg.data.clusters:
        return None, None
    from gankit.data.clusters import relabel

    clustered, shares, _ = relabel(data, cfg.data.clusters, cfg.data.seed, log=lambda *_: None)
    return clustered.labels, shares


def measure(cfg, data, reps: int, steps: int) -> dict:
    B = cfg.train.batch_size
    cost = compile_cost(cfg, data)  # first, while inductor's caches are cold in this process
    res: dict[str, list[float]] = {"careful": [], **{k: [] for k in VARIANTS}}
    labels, shares = careful_labels(cfg, data)
    for _ in range(reps):
        baselines.careful_conv(cfg.with_overrides(PLAIN), data.images, steps, res["careful"], labels, shares)
        for name, over in VARIANTS.items():
            gankit_windows(cfg.with_overrides(over), data, steps, res[name])
    speed = {k: rate(v, B) for k, v in res.items()}
    batch, width = {}, {}
    for b in (32, 64, 128):  # images/s is what a fixed time budget buys
        w: list[float] = []
        gankit_windows(cfg.with_overrides({"train.batch_size": b}), data, steps, w)
        batch[b] = rate(w, b)
    for ch in (16, 32, 64):
        w = []
        gankit_windows(cfg.with_overrides({"model.g_channels": ch, "model.d_channels": ch}), data, steps, w)
        width[ch] = rate(w, B)
    return {"speed": speed, "batch": batch, "width": width, "compile": cost}


def measure_by_cpu(cfg, data, reps: int, steps: int) -> dict:
    """careful fp32 and the BY_CPU contestants, interleaved; steps/s of the median 50-step window."""
    res: dict[str, list[float]] = {"careful": [], **{k: [] for k in BY_CPU}}
    labels, shares = careful_labels(cfg, data)
    for _ in range(reps):
        baselines.careful_conv(cfg.with_overrides(PLAIN), data.images, steps, res["careful"], labels, shares)
        for name in BY_CPU:
            gankit_windows(cfg.with_overrides(VARIANTS[name]), data, steps, res[name])
    return {k: rate(v, cfg.train.batch_size)[0] for k, v in res.items()}


def by_cpu_row(speed: dict, reps: int, steps: int) -> dict:
    return {**cpu_identity(), "threads": torch.get_num_threads(), "torch": str(torch.__version__),
            "auto": accel.auto_precision("cpu"), "reps": reps, "steps": steps,
            "steps_per_s": {k: round(v, 2) for k, v in speed.items()}}


def merge_rows(rows: list[dict], row: dict) -> list[dict]:
    """``rows`` with ``row`` in place of the earlier row of the same CPU (model name and bf16-relevant flags: a
    virtual machine may name two generations alike) and thread count; else appended."""
    def key(r):
        return r["cpu"], tuple(r["isa"]), r["threads"]
    return [r for r in rows if key(r) != key(row)] + [row]


def render_by_cpu(rows: list[dict]) -> str:
    lines = ["Generated by `python bench/quick_speed.py --by-cpu --write docs/BENCHMARKS.md` (one row per CPU "
             "model, flags and thread count, kept in docs/bench/precision_by_cpu.json; each row's contestants ran "
             "interleaved in one run, steps/s of the median 50-step window of quick-mnist's step on Fashion-MNIST). "
             "`auto`: what quick-mnist's `train.precision auto` takes on that CPU; `as shipped`: the preset with it.",
             "",
             "| CPU | bf16-relevant flags | threads | torch | reps × steps | careful fp32 | gankit fp32 | gankit bf16 "
             "| bf16 vs fp32 | auto | as shipped | as shipped vs careful |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["steps_per_s"]
        lines.append(f"| {r['cpu']} | {' '.join(r['isa']) or '-'} | {r['threads']} | {r['torch']} | "
                     f"{r['reps']} × {r['steps']} | {s['careful']:.1f} | {s['gankit fp32']:.1f} | {s['+ bf16']:.1f} | "
                     f"{s['+ bf16'] / s['gankit fp32']:.2f}x | {r['auto']} | {s['preset as shipped']:.1f} | "
                     f"{s['preset as shipped'] / s['careful']:.2f}x |")
    return "\n".join(lines)


def render(r: dict, cfg) -> str:
    s = r["speed"]
    c = s["careful"][0]
    plain = s["gankit fp32"][0]
    lines = [f"Generated by `python bench/quick_speed.py --write docs/BENCHMARKS.md` ({r['machine']}, {r['cpus']} "
             f"CPUs, {r['threads']} threads, torch {r['torch']}; {r['reps']} interleaved reps of {r['steps']} steps, "
             "median 50-step window). The preset's nets: dcgan G "
             f"{cfg.model.g_channels} (norm {cfg.model.g_norm}) / D {cfg.model.d_channels} (norm {cfg.model.d_norm}), "
             f"batch {cfg.train.batch_size}, R1 γ {cfg.loss.r1_gamma}, G_ema {cfg.optim.ema_beta}, labels "
             f"{cfg.model.cond} ({cfg.model.num_classes} k-means clusters, data.clusters).", "",
             "| contestant | steps/s | images/s | vs careful | vs gankit fp32 |", "|---|---|---|---|---|"]
    for name, (st, im) in s.items():
        lines.append(f"| {name} | {st:.1f} | {im:.0f} | {st / c:.2f}x | {st / plain:.2f}x |")
    lines += ["", "| batch (preset) | steps/s | images/s |", "|---|---|---|"]
    lines += [f"| {b} | {st:.1f} | {im:.0f} |" for b, (st, im) in r["batch"].items()]
    lines += ["", "| widths g_channels = d_channels (preset) | steps/s |", "|---|---|"]
    lines += [f"| {w} | {st:.1f} |" for w, (st, _) in r["width"].items()]
    cc = r["compile"]
    lines += ["", f"torch.compile: the first 5 steps take {cc['compiled']:.1f} s compiled against "
              f"{cc['eager']:.1f} s eager (compile cost ≈ {cc['compiled'] - cc['eager']:.0f} s of a 300 s budget)."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--window-steps", type=int, default=150)
    ap.add_argument("--quick", action="store_true", help="1 rep of 100 steps, for a smoke test")
    ap.add_argument("--by-cpu", action="store_true", help="only fp32 against bf16 and the preset as shipped; adds "
                                                           "this CPU's row to docs/bench/precision_by_cpu.json")
    ap.add_argument("--cached", action="store_true", help="with --by-cpu: render the table from the JSON alone")
    ap.add_argument("--write", help="replace the generated part of this file's section (between "
                                     f"{START} and {END}; appended under its heading when absent)")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.window_steps = 1, 100
    if args.by_cpu:
        rows = json.loads(CPU_JSON.read_text()) if CPU_JSON.is_file() else []
        if not args.cached:
            cfg = gankit.preset(PRESET).with_overrides({"data.name": "fashion-mnist"})
            speed = measure_by_cpu(cfg, fashion(), args.reps, args.window_steps)
            rows = merge_rows(rows, by_cpu_row(speed, args.reps, args.window_steps))
        text = render_by_cpu(rows)
        print(text)
        if args.write:
            CPU_JSON.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(CPU_JSON, json.dumps(rows, indent=1) + "\n")
            doc = Path(args.write)
            doc.write_text(replace_marked(doc.read_text(), CPU_START, CPU_END, text,
                                          "## bf16 by CPU (quick-mnist step)"))
        return
    data = fashion()
    cfg = gankit.preset(PRESET).with_overrides({"data.name": "fashion-mnist"})
    r = measure(cfg, data, args.reps, args.window_steps)
    r.update(machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
             threads=torch.get_num_threads(), torch=str(torch.__version__), reps=args.reps, steps=args.window_steps)
    text = render(r, cfg)
    print(text)
    if args.write:
        write_section(Path(args.write), text, r["threads"])


def write_section(doc: Path, text: str, threads: int) -> None:
    """Replace the text between the markers in ``doc`` (the hand-written notes after them stay); append the
    section with its heading when the markers are absent."""
    old = doc.read_text() if doc.is_file() else ""
    doc.write_text(replace_marked(old, START, END, text, f"## quick-mnist step speed (CPU, {threads} threads)"))


if __name__ == "__main__":
    main()
