"""``gankit evaluator``: show and list the domain classifiers behind gankit's metrics, or train one."""
from __future__ import annotations

import argparse
import json

from ..config import seed_arg

NAME = "evaluator"

EXAMPLES = """\
examples:
  gankit evaluator show --dataset fashion-mnist         # the metric card: checksum, architecture, accuracy
  gankit evaluator list                                 # pinned (shipped with gankit) and user-trained ones
  gankit evaluator train --dataset mnist                # once, about a minute of one CPU core; cached
  gankit evaluator train --dataset idx --data-dir DIR   # any folder of MNIST-format IDX files
  gankit evaluator train --dataset fashion-mnist        # reproduce the pinned one: says whether it matches
  gankit evaluator show --dataset fashion-mnist --evaluator cache   # the one trained on this machine

digits and fashion-mnist evaluators ship with gankit (pinned, SHA-256 checked), so their scores compare across
machines and with docs/ZOO.md; 'gankit eval' uses them unless given --evaluator cache or a folder. A retrained
evaluator reproduces the pinned checksum only with the same data files, seed, epochs, torch version and CPU
kernels (training always runs on one thread: the thread count changes the weights too).
"""


# What each action reads; any other option given is refused in one line.
ACTION_OPTIONS = {"train": ("--dataset", "--data-dir", "--epochs", "--seed", "--force"),
                  "show": ("--dataset", "--data-dir", "--evaluator", "--json"),
                  "list": ()}


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="show, list or train the domain classifiers used by 'gankit eval'",
                              allow_abbrev=False,
                              epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("train", "show", "list"))
    p.add_argument("--dataset", help="train, show: mnist, fashion-mnist, digits, cifar10, idx, stacked-mnist")
    p.add_argument("--data-dir", help="train, show: folder with the dataset files")
    p.add_argument("--epochs", type=int, help="train: epochs (default: per family)")
    p.add_argument("--seed", type=seed_arg, help="train: the seed (default 0)")
    p.add_argument("--force", action="store_true", help="train: retrain even when a cached classifier exists")
    p.add_argument("--evaluator", metavar="auto|pinned|cache|DIR",
                   help="show: which one (default auto: pinned where gankit ships one, else the cache)")
    p.add_argument("--json", action="store_true", help="show: print the card as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    from ..config import DataConfig
    from ..data import sources
    from ..errors import GankitError
    from .evaluator import (PINNED, channel_family, compare_with_pinned, describe, load_evaluator, pinned_card,
                            read_card, train_evaluator)

    given = {"--dataset": args.dataset is not None, "--data-dir": args.data_dir is not None,
             "--epochs": args.epochs is not None, "--seed": args.seed is not None, "--force": args.force,
             "--evaluator": args.evaluator is not None, "--json": args.json}
    for opt, on in given.items():
        takers = [a for a, opts in ACTION_OPTIONS.items() if opt in opts]
        if on and args.action not in takers:  # an option the action would not read is refused, not ignored
            raise GankitError(f"{opt} applies to {' and '.join(repr('gankit evaluator ' + t) for t in takers)} "
                              f"only; 'gankit evaluator {args.action}' does not take it")
    if args.action == "list":
        for key in PINNED:
            c = pinned_card(key)
            print(f"{key:<16} pinned        sha256:{c['sha256'][:12]} test accuracy "  # type: ignore[index]
                  f"{100 * c['test_accuracy']:.2f}%  (ships with gankit; the default)")  # type: ignore[index]
        root = sources.cache_root() / "evaluators"
        keys = sorted(p.name for p in root.iterdir() if (p / "card.json").is_file()) if root.is_dir() else []
        for key in keys:
            c = read_card(key)
            use = "--evaluator cache" if key in PINNED else "the default"
            print(f"{key:<16} user-trained  sha256:{c['sha256'][:12]} test accuracy "  # type: ignore[index]
                  f"{100 * c['test_accuracy']:.2f}%  ({root / key}; {use})")  # type: ignore[index]
        if not keys:
            print(f"no user-trained evaluators in {root}; 'gankit evaluator train --dataset NAME' makes one")
        return 0
    if not args.dataset:
        raise GankitError(f"'gankit evaluator {args.action}' needs --dataset NAME")
    if args.epochs is not None and args.epochs < 1:
        raise GankitError(f"--epochs must be positive, got {args.epochs}")
    data = channel_family(DataConfig(name=args.dataset, dir=args.data_dir))
    if args.action == "train":
        ev = train_evaluator(data, epochs=args.epochs, seed=args.seed or 0, force=args.force)
        print(describe(ev.card))
        note = compare_with_pinned(ev.card)
        if note:
            print(f"pinned check   {note}")
        return 0
    ev = load_evaluator(data, source=args.evaluator or "auto", train_if_missing=False)  # refuses a mismatching file
    print(json.dumps(ev.card, indent=2) if args.json else f"origin         {ev.origin}\n{describe(ev.card)}")
    return 0
