"""``gankit evaluator``: train, show and list the cached domain classifiers behind gankit's metrics."""
from __future__ import annotations

import argparse
import json

NAME = "evaluator"

EXAMPLES = """\
examples:
  gankit evaluator train --dataset fashion-mnist        # once, ~2 min on 2 CPU cores; cached with its card
  gankit evaluator train --dataset digits --force       # retrain (e.g. after a checksum mismatch)
  gankit evaluator train --dataset idx --data-dir DIR   # any folder of MNIST-format IDX files
  gankit evaluator show --dataset fashion-mnist         # the metric card: checksum, architecture, accuracy
  gankit evaluator list
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="train or inspect the domain classifiers used by 'gankit eval'",
                              allow_abbrev=False,
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("train", "show", "list"))
    p.add_argument("--dataset", help="mnist, fashion-mnist, digits, cifar10, idx, stacked-mnist")
    p.add_argument("--data-dir", help="folder with the dataset files")
    p.add_argument("--epochs", type=int, help="training epochs (default: per family)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--force", action="store_true", help="retrain even when a cached classifier exists")
    p.add_argument("--json", action="store_true", help="show: print the card as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    from ..config import DataConfig
    from ..data import sources
    from ..errors import GankitError
    from .evaluator import channel_family, describe, family_key, load_evaluator, read_card, train_evaluator

    if args.action == "list":
        root = sources.cache_root() / "evaluators"
        keys = sorted(p.name for p in root.iterdir() if (p / "card.json").is_file()) if root.is_dir() else []
        if not keys:
            print(f"no evaluators cached in {root}; 'gankit evaluator train --dataset NAME' makes one")
        for key in keys:
            c = read_card(key)
            print(f"{key:<16} sha256:{c['sha256'][:12]} test accuracy {100 * c['test_accuracy']:.2f}%")  # type: ignore
        return 0
    if not args.dataset:
        raise GankitError(f"'gankit evaluator {args.action}' needs --dataset NAME")
    if args.epochs is not None and args.epochs < 1:
        raise GankitError(f"--epochs must be positive, got {args.epochs}")
    data = channel_family(DataConfig(name=args.dataset, dir=args.data_dir))
    if args.action == "train":
        ev = train_evaluator(data, epochs=args.epochs, seed=args.seed, force=args.force)
        print(describe(ev.card))
        return 0
    load_evaluator(data, train_if_missing=False)  # refuses a file that does not match its card
    card = read_card(family_key(data))
    print(json.dumps(card, indent=2) if args.json else describe(card))  # type: ignore[arg-type]
    return 0
