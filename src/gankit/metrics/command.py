"""``gankit eval``: score a trained generator offline, with the floor and the evaluator's card."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..config import seed_arg
from ..errors import GankitError

NAME = "eval"

EXAMPLES = """\
examples:
  gankit eval runs/fm                                    # fd, kid, is, pr_k3, dc_k5, classes on 10,000 samples
  gankit eval runs/fm --metrics fd10k,pr10k_k3 --json runs/fm/eval.json
  gankit eval runs/fm/checkpoints/epoch_0010.pt --metrics fd,kid --n 5000 --no-floor
  gankit eval runs/ring --metrics modes2d                # 2-D mixtures protocol (2,500 samples)
  gankit eval runs/ring8                                 # a --seeds folder: each seed, then mean ± std. error
  gankit eval runs/stacked --metrics stacked             # Stacked MNIST: modes out of 1,000 (26,000 samples)
  gankit eval runs/fm --metrics parzen                   # Goodfellow et al.'s Parzen protocol (with its caveat)
  gankit eval runs/fm --metrics ifid                     # Inception FID: needs torch-fidelity and its weights
  gankit eval runs/fm --evaluator cache                  # score with the evaluator trained on this machine

Metric names carry the protocol: <kind>[N][_kK], kinds fd, kid, is, pr, dc, classes, modes2d, stacked, parzen,
ifid, ikid, iis. Scores use gankit's own domain classifier: for digits and fashion-mnist the one that ships
pinned with the package (no training; the checksum of docs/ZOO.md), for other datasets one trained once on this
machine and cached (see 'gankit evaluator'). Compare scores only between reports with the same checksum.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="score a trained generator (FD, KID, precision/recall, modes, ...)",
                              allow_abbrev=False,
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("--metrics", help="comma-separated metric names (default: by dataset; see below)")
    p.add_argument("--n", type=int, help="samples for metrics named without a size (default 10000); refused where "
                                         "every metric names its own")
    p.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    p.add_argument("--batch-size", type=int, default=500, help="samples generated and embedded at once")
    p.add_argument("--seed", type=seed_arg, default=0, help="latent seed (default 0)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--no-floor", action="store_true", help="skip the real-vs-real floor")
    p.add_argument("--evaluator-dataset", help="evaluator family, when it differs from the run's dataset")
    p.add_argument("--evaluator", default="auto", metavar="auto|pinned|cache|DIR",
                   help="which evaluator: pinned (shipped with gankit), cache (trained on this machine, on first "
                        "use if needed) or a folder with model.pt and card.json; default auto: pinned where "
                        "gankit ships one (digits, fashion-mnist), else cache")
    p.add_argument("--data-dir", help="folder with the real dataset files (default: the run's)")
    return p


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import seed_members
    from ..device import resolve_device
    from .scoring import Scorer

    resolve_device(args.device, "--device")  # before any loading: the message names the option typed
    if args.n is not None and args.n < 2:
        raise GankitError(f"--n must be at least 2, got {args.n}")
    if args.batch_size < 1:
        raise GankitError(f"--batch-size must be positive, got {args.batch_size}")
    scorer = Scorer(args.metrics, n=args.n, evaluator=args.evaluator, seed=args.seed, device=args.device,
                    floor=not args.no_floor, batch_size=args.batch_size, data_dir=args.data_dir,
                    evaluator_dataset=args.evaluator_dataset)
    members = seed_members(args.run)
    if members is None:
        report = _run_one(scorer, args.run)
    else:  # a --seeds folder: every member, then mean ± standard error over the seeds (one real side for all)
        reports = {}
        for path in members:
            reports[path.name] = _run_one(scorer, path)
            print()
        report = {"members": reports, "summary": summarize([r["metrics"] for r in reports.values()])}
        print(format_summary(report["summary"], len(reports)))
    if args.json:
        from ..io import atomic_write_text

        atomic_write_text(Path(args.json), json.dumps(report, indent=2, default=float) + "\n")
        print(f"report written to {args.json}", file=sys.stderr)
    return 0


def summarize(metrics: list[dict]) -> dict:
    """{metric: {field: {mean, se, n}}} over the members' numeric top-level fields (se: std / sqrt(n))."""
    import math

    out: dict = {}
    for name in metrics[0]:
        fields: dict = {}
        for key, v in metrics[0][name].items():
            vals = [m[name].get(key) for m in metrics]
            if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in vals):
                continue
            n = len(vals)
            mean = sum(vals) / n
            se = math.sqrt(sum((x - mean) ** 2 for x in vals) / (n - 1) / n) if n > 1 else float("nan")
            fields[key] = {"mean": mean, "se": se, "n": n}
        out[name] = fields
    return out


def format_summary(summary: dict, n: int) -> str:
    lines = [f"over {n} seeds (mean ± standard error):"]
    for name, fields in summary.items():
        # a mean that is inf (a KL over a mode never hit) has no spread worth printing ("inf ± nan")
        cells = [f"{k} {v['mean']:.4g}" + (f" ± {v['se']:.2g}" if math.isfinite(v["mean"]) else "")
                 for k, v in fields.items()]
        lines.append(f"{name:<12} " + ", ".join(cells))
    return "\n".join(lines)


def _run_one(scorer, path: str | Path) -> dict:
    """Score one run folder or checkpoint with ``scorer`` (a :class:`~gankit.metrics.scoring.Scorer`) and print
    its report."""
    from .evaluate import format_report

    report = scorer.score(path)
    run = report["run"]
    print(f"{run['checkpoint']} (step {run['step']}, dataset {run['dataset']}, latent seed {run['seed']})")
    if report["metrics"]:
        print(format_report(report))
    if "inception" in report:
        r = report["inception"]
        print(f"inception    {r['inception']}   [N_fake {r['n_fake']}, N_real {r['n_real']}; torch-fidelity]")
    sys.stdout.flush()
    return report
