"""Training speed of this tree against another revision, in one run: a refactor must not cost speed.

    python bench/compare_trees.py --ref REV [--rounds 5] [--scale 1.0] [--write]

The other revision is checked out with ``git worktree`` into a temporary folder; each round trains, in a fresh
process per contestant and in alternating order, the seed preset on Fashion-MNIST (fused MLP step), the same with
the autograd step (``train.fused_step false``), and ``--seeds`` with 4 toy ``gan-ring8`` members. The figure is the
median over rounds of this tree's steps/s divided by the other's. ``--write`` replaces docs/BENCHMARKS.md's
"Before and after" section.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Before and after a refactor"

# trains for `steps` steps after 100 warm-up steps and prints steps/s; runs in the tree on PYTHONPATH
CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
import gankit
case, steps = sys.argv[1], int(sys.argv[2])
common = {"train.progress": False, "train.sample_every": 0, "train.checkpoint_every": 0, "train.log_every": 50,
          "train.threads": 2, "train.steps": steps + 100, "train.epochs": None}
marks = []
def on_log(t):
    marks.append((t.step, time.perf_counter()))
with tempfile.TemporaryDirectory() as tmp:
    if case == "seeds":
        try:
            from gankit.training.ensemble import Ensemble, seed_configs
        except ImportError:
            from gankit.train.ensemble import Ensemble, seed_configs
        cfg = gankit.preset("gan-ring8").with_overrides({**common, "data.size": 20000})
        ens = Ensemble(seed_configs(cfg, range(4)), [Path(tmp) / f"m{k}" for k in range(4)], log=lambda *_: None)
        real = ens.flush if hasattr(ens, "flush") else ens._flush
        def flush(*a, **k):
            out = real(*a, **k)
            marks.append((ens.step, time.perf_counter()))
            return out
        setattr(ens, "flush" if hasattr(ens, "flush") else "_flush", flush)
        ens.fit()
    else:
        cfg = gankit.preset("seed").with_overrides({**common, "data.name": "fashion-mnist",
                                                    "train.fused_step": case == "seed"})
        try:
            from gankit.training.loop import Trainer
        except ImportError:
            from gankit.train.loop import Trainer
        tr = Trainer(cfg, Path(tmp) / "r", log=lambda *_: None)
        tr.add_callback("on_log", on_log)
        tr.fit()
timed = [(s, m) for s, m in marks if s >= 100]
print(json.dumps((timed[-1][0] - timed[0][0]) / (timed[-1][1] - timed[0][1])))
"""
CASES = {"seed": "seed, fused MLP step", "autograd": "seed, autograd step", "seeds": "--seeds, 4 gan-ring8 members"}
STEPS = {"seed": 4000, "autograd": 3000, "seeds": 300}  # timed steps: several seconds each on 2 cores


def rate(src: Path, case: str, steps: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", CHILD, case, str(steps)], env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", required=True, help="the revision to compare with (e.g. HEAD~3)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--scale", type=float, default=1.0, help="times the timed steps of each case")
    p.add_argument("--write", action="store_true")
    args = p.parse_args(argv)
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.ref], capture_output=True, text=True,
                         check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        ref = Path(tmp) / "ref"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(ref), rev], check=True,
                       capture_output=True)
        try:
            rows = {c: {"new": [], "old": []} for c in CASES}
            for r in range(args.rounds):
                for case in CASES:
                    order = [("new", ROOT / "src"), ("old", ref / "src")]
                    for who, src in (order if r % 2 == 0 else order[::-1]):
                        rows[case][who].append(rate(src, case, int(STEPS[case] * args.scale)))
                print(json.dumps({c: {w: round(v[-1], 1) for w, v in d.items()} for c, d in rows.items()}),
                      flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(ref)], capture_output=True)
    lines = [SECTION, "", f"`python bench/compare_trees.py --ref {rev} --rounds {args.rounds} --scale {args.scale:g}`: "
             f"this tree against revision `{rev}`, each contestant in a fresh process, alternating, 2 threads; "
             "median steps/s over the rounds and the median of the per-round ratios.", "",
             "| run | before (steps/s) | after (steps/s) | after / before |", "|---|---|---|---|"]
    for case, label in CASES.items():
        new, old = rows[case]["new"], rows[case]["old"]
        ratio = statistics.median(n / o for n, o in zip(new, old))
        lines.append(f"| {label} | {statistics.median(old):,.0f} | {statistics.median(new):,.0f} | {ratio:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        doc = ROOT / "docs" / "BENCHMARKS.md"
        old_text = doc.read_text()
        if SECTION in old_text:
            head, _, rest = old_text.partition(SECTION)
            tail = rest[rest.find("\n## "):] if "\n## " in rest else ""
            old_text = head.rstrip() + "\n\n" + text + tail
        else:
            old_text = old_text.rstrip() + "\n\n" + text
        doc.write_text(old_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
