"""The sample grids the README shows a new user, each from a real run made by this script.

    python scripts/readme_grids.py [--out docs/img] [--runs runs/readme]

1. `seed` on 8x8 `digits` with the main job's settings (what `gankit train` gives offline without MNIST);
2. `seed` on Fashion-MNIST after 1 epoch (600 steps);
3. `dcgan-mnist` on Fashion-MNIST for `--dcgan-steps` steps: the preset that gives recognisable samples in
   minutes on a laptop CPU.
Each grid is the run's own `samples/final.png`, copied; the wall-clock time of each run is printed and written
to `OUT/readme_grids.json`.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import gankit


def run(name: str, cfg, runs: Path, out: Path) -> dict:
    t0 = time.perf_counter()
    res = gankit.train(cfg, runs / name, overwrite=True, log=lambda *_: None)
    seconds = time.perf_counter() - t0
    shutil.copyfile(res.run_dir / "samples" / "final.png", out / f"{name}.png")
    print(f"{name}: {res.step} steps in {seconds:.0f} s -> {out / (name + '.png')}")
    return {"steps": res.step, "seconds": round(seconds, 1), "preset": cfg.preset, "data": cfg.data.name,
            "threads": cfg.train.threads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--runs", default="runs/readme")
    ap.add_argument("--dcgan-steps", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=0, help="train.threads for every run (0: the machine's)")
    args = ap.parse_args()
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    common = {"train.progress": False, "train.threads": args.threads, "train.sample_every": 0,
              "train.grid_size": 64}
    results = {
        "seed-digits": run("seed-digits", gankit.preset("seed").with_overrides({**common, "data.name": "digits"}),
                           runs, out),
        "seed-fashion-1epoch": run("seed-fashion-1epoch", gankit.preset("seed").with_overrides(
            {**common, "data.name": "fashion-mnist", "train.epochs": 1}), runs, out),
        "dcgan-fashion": run("dcgan-fashion", gankit.preset("dcgan-mnist").with_overrides(
            {**common, "data.name": "fashion-mnist", "train.steps": args.dcgan_steps}), runs, out),
    }
    (out / "readme_grids.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
