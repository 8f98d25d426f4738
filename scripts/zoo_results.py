"""Train the zoo's comparison runs and write docs/ZOO.md (every number in it comes from this script).

Sections (each run's scores are cached as result.json in its run folder, so a rerun only retrains what is
missing; pass --force to retrain):

- ``toy``: ring8 and grid25, docs/PROTOCOLS.md §1. ``pacgan-*`` (PacGAN4) and ``gan-*`` (the same networks without
  packing: PacGAN's own "GAN" baseline), ``--seeds`` seeds each (``--jobs N`` trains N runs at once), each preset's
  seeds in a ``gankit train --seeds`` folder (``RUNS/toy/pacgan-ring8-400ep/seedS`` and its ensemble.json); 2,500
  samples per run scored by gankit.metrics (modes captured, % high quality, KL), mean ± standard error, next to
  the published table. On a GPU: ``--device cuda --cuda-graphs --ensemble`` (each method's 10 runs train as one
  batched network).
- ``stacked``: docs/PROTOCOLS.md §2's mode count (1,000 modes, 26,000 samples) for ``dcgan-stacked-mnist`` and
  ``pacgan-stacked-mnist`` at an equal wall-clock budget (``--stacked-seconds``; ``--jobs 2`` trains both at once,
  so they share one window of the machine), from ``--stacked-base``: MNIST where the machine has it,
  Fashion-MNIST by default (offline), next to the floor of 26,000 real stacks read by the same classifier.

The Fashion-MNIST comparisons at a wall-clock budget and the seed's cheap fixes moved to scripts/time_curves.py
(docs/ZOO.md "Best samples per CPU-minute") and scripts/quick_trials.py --family seed ("Ending seed-plus's collapse").

Usage: python scripts/zoo_results.py [--sections toy,stacked] [--toy-epochs E[,E2...]]
       [--seeds 5] [--stacked-seconds S] [--stacked-base NAME
       --stacked-dir DIR] [--runs runs/zoo] [--out docs/ZOO.md] [--cached]
       [--toy-presets pacgan-ring8,...] [--ensemble [--together]] [--device cuda --cuda-graphs] [--tf32]
The protocol's full length is 400 epochs for the toys (--toy-epochs 400); the defaults are smaller so the
whole script runs in about an hour on a few CPU cores, and the document states the budget it used. Only the
sections asked for are rewritten in --out; the others stay as they are. A toy ensemble stopped part-way (a time
limit, Ctrl-C) keeps its checkpoints, and the same command resumes it. --cached writes the toy tables from the
runs already scored (e.g. trained on a GPU machine and copied back) and lists the rest as not run;
--toy-presets trains only the runs of the presets named (a GPU session too short for all 20 runs can take a
part: on an H200 with --ensemble --tf32, 10 runs of 400,000 steps took ~10-13 minutes). --together trains both
methods' ensembles in lockstep, on a GPU as one CUDA graph with a stream each, so they share the device.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

import gankit
from gankit.checkpoint import seed_run_dirs, write_seed_members
from gankit.config import DataConfig, preset_config
from gankit.training.loop import Trainer

FASHION = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist package
# docs/PROTOCOLS.md §1, quoted from the papers (modes, % high quality; ± where the paper gives it).
PUBLISHED = [
    ("GAN (VEEGAN Tab. 1)", "1 / 99.3", "3.3 / 0.5"),
    ("Unrolled GAN (VEEGAN Tab. 1)", "7.6 / 35.6", "23.6 / 16"),
    ("VEEGAN (VEEGAN Tab. 1)", "8 / 52.9", "24.6 / 40"),
    ("WGAN-GP (GDPP Tab. 1)", "6.8 / 59.6", "24.2 / 28.7"),
    ("GDPP (GDPP Tab. 1)", "8.0 / 71.7", "24.8 / 68.5"),
    ("GAN (PacGAN Tab. 1)", "6.3±0.5 / 98.2±0.2", "17.3±0.8 / 94.8±0.7"),
    ("PacGAN4 (PacGAN Tab. 1)", "7.8±0.1 / 95.9±1.4", "24.8±0.2 / 93.6±0.6"),
]

def _quiet(*_):
    pass


def _train(cfg, run_dir: Path, force: bool, seconds: float | None = None) -> tuple[Path, dict]:
    result_file = run_dir / "result.json"
    if result_file.is_file() and not force:
        return run_dir, json.loads(result_file.read_text())
    if seconds is not None:  # the library's budget: stops at a step boundary, checkpoint and final grid written
        cfg = cfg.with_overrides({"train.time_limit": seconds})
    t = Trainer(cfg, run_dir, overwrite=True, log=_quiet)
    t0 = time.perf_counter()
    r = t.fit()
    return run_dir, _save(run_dir, {"steps": r.step, "seconds": round(time.perf_counter() - t0, 1)})


def _save(run_dir: Path, info: dict) -> dict:
    plain = json.dumps(info, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    (run_dir / "result.json").write_text(plain + "\n")
    return info


def _mean_se(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, float("nan")
    var = sum((x - m) ** 2 for x in xs) / (len(xs) - 1)
    return m, math.sqrt(var / len(xs))


# ----------------------------------------------------------------------------------------------
def _toy_cfg(name: str, seed: int, epochs: int, device: str, threads: int, graphs: bool, tf32: bool = False):
    return preset_config(name).with_overrides({"train.tf32": tf32,
        "train.cuda_graphs": graphs, "train.seed": seed, "data.seed": seed, "train.epochs": epochs,
        "train.steps": None,
        "train.progress": False, "train.sample_every": 0, "train.device": device, "train.log_every": 100,
        "train.threads": threads})


def _where(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"CPU, torch {torch.__version__}"


def _score_toy(name: str, mix: str, seed: int, run_dir: Path, info: dict) -> dict:
    from gankit.metrics import score_run
    from gankit.metrics.mixtures import PROTOCOL_N

    if "modes" not in info:
        # the protocol's 2,500 latents drawn in one batch, as the results kept in docs/zoo/toy_runs.json were
        m = score_run(run_dir, "modes2d", data=DataConfig(name=mix), seed=seed, floor=False, batch_size=PROTOCOL_N,
                      log=_quiet)["metrics"]["modes2d"]
        info.update({k: m[k] for k in ("modes", "num_modes", "high_quality", "kl")}, n=m["n_fake"])
        _save(run_dir, info)
    print(f"toy {name} seed {seed}: {info['modes']} modes, {100 * info['high_quality']:.1f} % hq", flush=True)
    return info


def _toy_run(job: tuple) -> dict:
    """Train and score one toy run (a worker of --jobs: one torch thread each)."""
    name, mix, seed, epochs, device, run_dir, force, threads, graphs = job
    if threads:
        torch.set_num_threads(threads)
    cfg = _toy_cfg(name, seed, epochs, device, threads, graphs)
    run_dir, info = _train(cfg, Path(run_dir), force)
    if "trained_on" not in info:
        info["trained_on"] = f"{_where(device)}, one run per process"
    return _score_toy(name, mix, seed, run_dir, info)


def _toy_ensembles(jobs: list[tuple], tf32: bool, together: bool = False) -> list[dict]:
    """--ensemble: the pacgan-* runs train as one batched network, the gan-* runs as another (training/ensemble.py);
    runs with a result.json are kept. --together: both ensembles step in lockstep (on a GPU, one CUDA graph with a
    stream each, so their small kernels run side by side); else one after the other."""
    from gankit.training.ensemble import Ensemble, fit_together

    pending = []
    for kind in ("pacgan", "gan"):
        group = [j for j in jobs if j[0].startswith(kind + "-")]
        todo = [j for j in group if j[6] or not (Path(j[5]) / "result.json").is_file()]
        if not todo:
            continue
        cfgs = [_toy_cfg(j[0], j[2], j[3], j[4], j[7], j[8], tf32) for j in todo]
        # an ensemble stopped earlier (Ctrl-C, a time limit) left checkpoints and no result.json: continue it
        resume = not any(j[6] for j in todo) and all((Path(j[5]) / "checkpoints" / "last.pt").is_file()
                                                     for j in todo)
        ens = Ensemble(cfgs, [Path(j[5]) for j in todo], overwrite=not resume, resume=resume, log=_quiet)
        if resume:
            print(f"toy {kind}-*: resuming {len(todo)} runs at step {ens.step}", flush=True)
        pending.append((kind, todo, ens))
        _seed_folders(group)
    lockstep = together and len(pending) > 1 and len({(e.spe, e.total_steps, e.step) for _, _, e in pending}) == 1
    batches = [pending] if lockstep else [[p] for p in pending]
    for batch in batches:
        t0 = time.perf_counter()
        results = fit_together([e for _, _, e in batch])
        seconds = round(time.perf_counter() - t0, 1)
        for (kind, todo, ens), res in zip(batch, results):
            if res[0].interrupted:  # checkpoints are saved and no result.json written: a rerun resumes
                raise SystemExit(f"toy {kind}-* ensemble stopped at step {res[0].step}; rerun the same command to "
                                 f"resume it")
            device, graphs = todo[0][4], todo[0][8]
            with_ = (f", in lockstep with the {', '.join(k for k, _, _ in batch if k != kind)}-* ensemble"
                     f"{' (one CUDA graph, a stream each)' if graphs else ''}" if len(batch) > 1 else "")
            for j, r in zip(todo, res):
                _save(Path(j[5]), {"steps": r.step, "seconds": seconds,
                                   "trained_on": f"{_where(device)}, {len(todo)} runs as one ensemble"
                                                 f"{' with CUDA graphs' if graphs else ''}"
                                                 f"{', TF32 matmuls' if tf32 else ', float32'}{with_}"})
    infos: dict[str, dict] = {}
    for kind in ("pacgan", "gan"):
        for j in [j for j in jobs if j[0].startswith(kind + "-")]:
            info = json.loads((Path(j[5]) / "result.json").read_text())
            infos[j[5]] = _score_toy(j[0], j[1], j[2], Path(j[5]), info)
    return [infos[j[5]] for j in jobs]


def _toy_jobs(args, epochs: int) -> list[tuple]:
    """One job per run; a preset's seeds at one budget lie in a ``gankit train --seeds`` folder's layout,
    RUNS/toy/PRESET-Eep/seedS (see :func:`_seed_folders`)."""
    jobs = []
    for mix in ("ring8", "grid25"):
        for name in (f"pacgan-{mix}", f"gan-{mix}"):
            seeds = range(args.seeds)
            for seed, run_dir in zip(seeds, seed_run_dirs(args.runs / "toy" / f"{name}-{epochs}ep", seeds)):
                jobs.append((name, mix, seed, epochs, args.device, str(run_dir), args.force, args.threads,
                             args.cuda_graphs))
    return jobs


def _seed_folders(jobs: list[tuple]) -> None:
    """Write the ensemble.json of each preset's folder whose runs all exist, as ``gankit.train_seeds`` does, so
    ``gankit eval RUNS/toy/pacgan-ring8-400ep`` scores a table cell's seeds (mean ± standard error) and ``gankit
    report``/``serve`` list them."""
    groups: dict[Path, list[int]] = {}
    for j in jobs:
        groups.setdefault(Path(j[5]).parent, []).append(j[2])
    for root, seeds in groups.items():
        if all(d.is_dir() for d in seed_run_dirs(root, seeds)):
            write_seed_members(root, seeds)


def _run_key(job: tuple) -> str:
    """A run's name in docs/zoo/toy_runs.json: PRESET-Eep-seedS (the run folders' names before they became
    --seeds folders; the file keeps them)."""
    return f"{job[0]}-{job[3]}ep-seed{job[2]}"


SCORES: dict[str, dict] = {}  # run name (_run_key) -> scored result, kept in docs/zoo/toy_runs.json


def _scores_file(args) -> Path:
    return args.out.parent / "zoo" / "toy_runs.json"


def _cached(job: tuple) -> dict | None:
    """A run's scores: its result.json, else the copy kept beside the document (run folders are not kept in git:
    docs/zoo/toy_runs.json lets --cached rebuild the tables on another machine)."""
    f = Path(job[5]) / "result.json"
    info = json.loads(f.read_text()) if f.is_file() else SCORES.get(_run_key(job))
    return info if info is not None and "modes" in info else None


def run_toy(args) -> list[str]:
    budgets = [int(e) for e in str(args.toy_epochs).split(",")]
    lines = ["## 2-D mixtures (docs/PROTOCOLS.md §1)", "", _generated(args, "toy"), "",
             f"{args.seeds} seeds per method and mixture (train.seed = data.seed = 0..{args.seeds - 1}); 2,500 samples "
             f"per run scored by gankit.metrics.mixtures; mean ± standard error over the seeds. The protocol trains "
             f"400 epochs; as in the authors' code an epoch is 1,000 steps of 100 packs for every method (their "
             f"training set holds 100,000 packs), so 400,000 steps: PacGAN4 sees 400 points per step, the GAN 100. "
             f"Each run's folder records where it trained (result.json). One cell by hand: `gankit train --preset "
             f"pacgan-ring8 --seeds 0-4 --device cuda --train.cuda_graphs true --out runs/ring8` then `gankit eval "
             f"runs/ring8` (each seed, then mean ± standard error).", ""]
    f = _scores_file(args)
    if f.is_file():
        SCORES.update(json.loads(f.read_text()))
    for epochs in budgets:
        lines += _toy_table(args, epochs)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(dict(sorted(SCORES.items())), indent=1) + "\n")
    lines += ["Published (modes / % high quality), docs/PROTOCOLS.md §1:", "", "| method | ring8 | grid25 |",
              "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in PUBLISHED]
    return lines + [""]


def _toy_table(args, epochs: int) -> list[str]:
    jobs = _toy_jobs(args, epochs)
    # --cached: the document from the runs already trained; --toy-presets: train only those presets' runs. The
    # others are read from their result.json, or listed as not run.
    chosen = set(args.toy_presets.split(",")) if args.toy_presets else None
    train = [] if args.cached else [j for j in jobs if chosen is None or j[0] in chosen]
    if args.ensemble and train:
        trained = list(_toy_ensembles(train, args.tf32, args.together))
    elif args.jobs > 1 and train:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(args.jobs) as pool:
            trained = pool.map(_toy_run, train, chunksize=1)
    else:
        trained = [_toy_run(j) for j in train]
    _seed_folders(train)
    by_dir = {j[5]: info for j, info in zip(train, trained)}
    infos: list[dict | None] = [by_dir[j[5]] if j[5] in by_dir else _cached(j) for j in jobs]
    for j, info in zip(jobs, infos):
        if info is not None:
            SCORES[_run_key(j)] = {k: v for k, v in info.items() if k != "grid"}
    rows: dict[tuple[str, str], list[dict | None]] = {}
    for job, info in zip(jobs, infos):
        rows.setdefault((job[1], job[0]), []).append(info)
    where = sorted({str(i.get("trained_on", "not recorded")) for i in infos if i is not None})
    lines = [f"### {epochs} epochs ({epochs / 4:g} % of the protocol's training)", "",
             f"Trained on: {'; '.join(where) if where else 'nothing yet'}."]
    if epochs < 400:
        lines.append("Early training, not the protocol's end point: compare these rows with each other, and with the "
                     "published ones only at 400 epochs.")
    lines += ["",
              "| method | ring8 modes (of 8) | ring8 % high quality | grid25 modes (of 25) | grid25 % high quality |",
              "|---|---|---|---|---|"]
    missing = []
    for kind, title in (("pacgan", "gankit pacgan-* (PacGAN4)"), ("gan", "gankit gan-* (GAN: same nets, no packing)")):
        cells = []
        for mix in ("ring8", "grid25"):
            s = [x for x in rows[(mix, f"{kind}-{mix}")] if x is not None]
            if len(s) < args.seeds:
                missing.append(f"`{kind}-{mix}` ({args.seeds - len(s)} of {args.seeds} seeds)")
            if not s:
                cells += ["not run", "not run"]
                continue
            m, se = _mean_se([x["modes"] for x in s])
            h, hse = _mean_se([100 * x["high_quality"] for x in s])
            n = "" if len(s) == args.seeds else f" ({len(s)} seeds)"
            cells += [f"{m:.1f} ± {se:.1f}{n}", f"{h:.1f} ± {hse:.1f}{n}"]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    notes = sorted({str(i["note"]) for i in infos if i is not None and i.get("note")})
    for note in notes:
        who = sorted({f"`{j[0]}`" for j, i in zip(jobs, infos) if i is not None and i.get("note") == note})
        lines += ["", f"Note on {', '.join(who)}: {note}."]
    if missing:
        lines += ["", f"Not run yet at {epochs} epochs: {', '.join(missing)}; train them with `python "
                      f"scripts/zoo_results.py --sections toy --toy-epochs {epochs} --device cuda --cuda-graphs "
                      f"--ensemble --together` (a GPU) or without `--cached` on a CPU."]
    if any(x is not None for x in infos):
        lines += ["", "Per run (modes / % high quality / KL of the captured-mode histogram to uniform):", ""]
    for (mix, label), s in rows.items():
        done = [x for x in s if x is not None]
        if done:
            lines.append(f"- `{label}`: " + "; ".join(
                f"{x['modes']}/{100 * x['high_quality']:.1f}%/KL {x['kl']:.3f}" for x in done))
    return lines + [""]


def _generated(args, section: str) -> str:
    return (f"Generated by `python scripts/zoo_results.py {' '.join(args.argv)}` (gankit {gankit.__version__}, "
            f"torch {torch.__version__}, {args.device_name}, {time.strftime('%Y-%m-%d', time.gmtime())}); "
            f"`--sections {section}` regenerates this section alone. Do not edit by hand.")


SECTION_ORDER = ("## 2-D mixtures", "## Stacked")


def _replace_sections(old: str, head: list[str], new: dict[str, list[str]]) -> str:
    """``old`` with its preamble replaced by ``head`` and each ``## `` section whose heading is a key of ``new``
    replaced by that body; sections in :data:`SECTION_ORDER`, then any others as they were."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in old.splitlines():
        if line.startswith("## "):
            current = line
            sections[current] = []
        if current is not None:  # lines before the first section are the old preamble: replaced
            sections[current].append(line)
    sections.update(new)

    def rank(heading: str) -> int:
        return next((i for i, p in enumerate(SECTION_ORDER) if heading.startswith(p)), len(SECTION_ORDER))
    out = list(head)
    for heading in sorted(sections, key=rank):  # stable: unknown sections keep their order, last
        out += sections[heading]
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------------------------
# ----------------------------------------------------------------------------------------------
STACKED_PRESETS = ("dcgan-stacked-mnist", "pacgan-stacked-mnist")
STACKED_PUBLISHED = "DCGAN 99 / 3.40 and VEEGAN 150 / 2.95 (VEEGAN Tab. 2); DCGAN 78.9±6.5 / 4.50±0.13 and " \
                    "PacDCGAN2 1000±0 / 0.06±0.003 (PacGAN Tab. 2)"


def _stacked_data(args) -> DataConfig:
    return DataConfig(name="stacked-mnist", base=args.stacked_base, dir=args.stacked_dir)


def _stacked_cfg(preset: str, args):
    return preset_config(preset).with_overrides({
        "data.base": args.stacked_base, "data.dir": args.stacked_dir, "train.steps": None, "train.progress": False,
        "train.sample_every": 0, "train.checkpoint_every": 0, "train.device": args.device, "train.log_every": 20})


def _stacked_modes(metrics: dict) -> dict:
    """The one ``stacked`` entry of a scored metrics dict, reduced to what the table and result.json keep."""
    (m,) = metrics.values()
    return {"modes": m["modes"], "num_modes": m["num_modes"], "kl_to_uniform": m["kl_to_uniform"],
            "n": m["n_fake"]}


def _stacked_train(job: tuple) -> tuple[Path, dict]:
    """Train one stacked preset for --stacked-seconds (a worker of --jobs: --threads each); kept if trained."""
    preset, args = job
    if args.threads:
        torch.set_num_threads(args.threads)
    return _train(_stacked_cfg(preset, args), args.runs / "stacked" / preset, args.force, args.stacked_seconds)


def run_stacked(args) -> list[str]:
    """docs/PROTOCOLS.md §2 (modes out of 1,000, KL to uniform, 26,000 samples) for the two stacked presets at an equal
    wall-clock budget, from ``--stacked-base`` (MNIST where a machine has it; Fashion-MNIST offline). The real floor
    scores 26,000 real training stacks the same way: what a perfect generator would show through this classifier."""
    from gankit.data.stacked import DEFAULT_SIZE as STACKED_SIZE
    from gankit.metrics import Scorer

    data = _stacked_data(args)
    floor_file = args.runs / "stacked" / "real_floor.json"
    cached = floor_file.is_file() and not args.force
    scorer = Scorer("stacked", data=data, floor=not cached, log=print)
    side = scorer.side(data)  # the evaluator, and unless cached the floor
    if cached:
        floor = json.loads(floor_file.read_text())
    else:  # exactly gankit eval's floor: 26,000 training stacks in a seeded random order
        floor = {**_stacked_modes(side.reference.floor), "source": side.real_train.source}
        floor_file.parent.mkdir(parents=True, exist_ok=True)
        floor_file.write_text(json.dumps(floor, indent=2) + "\n")
    res = []
    if args.jobs > 1:  # both presets at once, one process each: the same wall-clock window for both
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(args.jobs, len(STACKED_PRESETS))) as pool:
            pool.map(_stacked_train, [(p, args) for p in STACKED_PRESETS], chunksize=1)
    for preset in STACKED_PRESETS:
        cfg = _stacked_cfg(preset, args)
        run_dir, info = _stacked_train((preset, args))
        if "modes" not in info:
            info.update(_stacked_modes(scorer.score(run_dir)["metrics"]))
            info["epochs"] = info["steps"] * cfg.train.batch_size / (cfg.data.size or STACKED_SIZE)
            _save(run_dir, info)
        dest = args.out.parent / "zoo" / f"stacked-{preset}.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / "samples" / "final.png", dest)
        print(f"stacked {preset}: {info['steps']} steps, {info['modes']} modes, KL {info['kl_to_uniform']:.2f}",
              flush=True)
        res.append((preset, info))
    card = side.evaluator.card
    side_by_side = (" (both trained at once, one process each, so they shared the machine alike; the steps column "
                    "shows what each budget bought: a batch of 64 is 32 packs of 2 for the PacGAN D, whose deeper "
                    "layers then do half the work)") if args.jobs > 1 else ""
    lines = [f"## Stacked {args.stacked_name} (docs/PROTOCOLS.md §2)", "", _generated(args, "stacked"), "",
             f"PacGAN's Table 2 protocol on stacks of {args.stacked_name}: each training image stacks 3 images drawn "
             f"uniformly from the source's train + test sets as its 3 channels (128,000 stacks); a sample's mode is "
             f"100·c1 + 10·c2 + c3, each channel read by gankit's {card.get('dataset', '?')} classifier (test "
             f"accuracy {100 * card.get('test_accuracy', float('nan')):.2f} %, sha256 "
             f"{str(card.get('sha256', '?'))[:12]}); 26,000 samples; modes captured (of 1,000) and KL(p ‖ uniform) "
             f"in nats. Each preset trains for {args.stacked_seconds:.0f} s of wall-clock on {args.device_name}, "
             f"one seed, where the protocol trains 50 epochs: early training, to compare the two rows with each "
             f"other{side_by_side}. The real row scores 26,000 real training stacks the same way: what a "
             f"generator that matched the data would score through this classifier (a perfect reading of a "
             f"uniform sampler gives KL ≈ 0.019 at 26,000 samples, the finite-sample floor).", "",
             "| run | steps | epochs | modes (of 1,000) | KL to uniform ↓ |", "|---|---|---|---|---|",
             f"| real stacks (floor) | | | {floor['modes']} | {floor['kl_to_uniform']:.3f} |"]
    for preset, r in res:
        lines.append(f"| {preset} | {r['steps']:,} | {r['epochs']:.2f} | {r['modes']} | {r['kl_to_uniform']:.3f} |")
    lines += ["", " ".join(f"![{p}](zoo/stacked-{p}.png)" for p, _ in res), "",
              "(grids, left to right: " + ", ".join(p for p, _ in res) + ")", "",
              f"Published on Stacked MNIST after 50 epochs (modes / KL): {STACKED_PUBLISHED}; not comparable with "
              f"rows from another source or a shorter budget.", ""]
    return lines


def _seconds(text: str) -> float:
    """A budget in seconds, as train.time_limit takes it: positive and finite."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default="toy,stacked")
    p.add_argument("--toy-epochs", default="5", help="epochs per toy run (the protocol: 400); a list (400,30) "
                                                    "gives a table per budget")
    p.add_argument("--toy-presets", help="toy: train only these presets' runs (e.g. pacgan-ring8,gan-ring8); the "
                                         "others come from their result.json")
    p.add_argument("--cached", action="store_true",
                   help="toy: use the runs already trained (result.json); list the others as not run")
    p.add_argument("--seeds", type=int, default=5)
    # wall-clock budgets per run: gankit's train.time_limit (stop at the first step after it, grid and checkpoint)
    p.add_argument("--stacked-seconds", type=_seconds, default=600.0)
    p.add_argument("--stacked-base", default="fashion-mnist", help="stacked: the MNIST-format source (mnist, "
                                                                    "fashion-mnist, idx)")
    p.add_argument("--stacked-dir", default=FASHION, help="stacked: the source's folder (data.dir)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's choice)")
    p.add_argument("--runs", type=Path, default=Path("runs/zoo"))
    p.add_argument("--out", type=Path, default=Path("docs/ZOO.md"))
    p.add_argument("--force", action="store_true", help="retrain runs that already have a result.json")
    p.add_argument("--jobs", type=int, default=1, help="toy runs trained in parallel processes (use --threads 1)")
    p.add_argument("--cuda-graphs", action="store_true", help="toy runs on --device cuda with train.cuda_graphs")
    p.add_argument("--tf32", action="store_true", help="with --ensemble on CUDA: train.tf32 (TF32 matmuls)")
    p.add_argument("--ensemble", action="store_true",
                   help="train the toy seeds of each method as one batched network (gankit train --seeds)")
    p.add_argument("--together", action="store_true",
                   help="with --ensemble: the two methods' ensembles train in lockstep (on a GPU with --cuda-graphs, "
                        "one CUDA graph that runs both side by side on two streams)")
    args = p.parse_args(argv)
    if args.together and not args.ensemble:
        p.error("--together needs --ensemble")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.device_name = (torch.cuda.get_device_name(0) if args.device.startswith("cuda") else
                        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} "
                        f"thread{'s' if torch.get_num_threads() != 1 else ''})")
    args.argv = argv if argv is not None else sys.argv[1:]
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    new: dict[str, list[str]] = {}
    args.stacked_name = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}.get(args.stacked_base, "IDX images")
    unknown = sorted(set(sections) - {"toy", "stacked"})
    if unknown:
        p.error(f"unknown sections {unknown}; the sections: toy, stacked (the Fashion-MNIST budgets and the seed's "
                "fixes are scripts/time_curves.py and scripts/quick_trials.py --family seed)")
    for name, fn in (("toy", run_toy), ("stacked", run_stacked)):
        if name in sections:
            body = fn(args)
            new[body[0]] = body
    head = ["# Model zoo results", "", "Every number here comes from a script: `scripts/zoo_results.py`, "
            "`scripts/time_curves.py` or `scripts/quick_trials.py`; each section says the command that made it.", ""]
    old = args.out.read_text() if args.out.is_file() else ""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_replace_sections(old, head, new))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
