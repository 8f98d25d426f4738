"""Make the evaluators that ship inside the package: src/gankit/metrics/pinned/<family>/{model.pt, card.json}.

Trains each pinned family with ``train_evaluator`` (exactly what ``gankit evaluator train`` runs: seed 0, the
family's epochs, one thread) in a temporary cache, then copies the weights and the card into the package. Run
it only to change the pinned evaluators on purpose: every score in docs/ZOO.md and docs/EVALUATION.md is tied
to their checksums. About a minute of CPU for Fashion-MNIST, a second for digits.

    python scripts/pin_evaluators.py                 # both families
    python scripts/pin_evaluators.py --family digits
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from gankit.config import DataConfig
from gankit.metrics.evaluator import PINNED, cache_dir, train_evaluator

DEST = Path(__file__).resolve().parents[1] / "src" / "gankit" / "metrics" / "pinned"


def portable(source: str) -> str:
    """The card ships to every machine: keep no local virtualenv path (scikit-learn's digits file)."""
    return source.split("site-packages/", 1)[1] if "site-packages/" in source else source


def pin(family: str, data_dir: str | None = None) -> dict:
    ev = train_evaluator(DataConfig(name=family, dir=data_dir, download=False), force=True, log=print)
    card = dict(ev.card, source=portable(ev.card["source"]))
    out = DEST / family
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cache_dir(family) / "model.pt", out / "model.pt")
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"pinned {family}: sha256 {card['sha256']}, test accuracy {100 * card['test_accuracy']:.2f}%, "
          f"{(out / 'model.pt').stat().st_size / 1e6:.2f} MB -> {out}")
    return card


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=PINNED, action="append", help="a family to pin (default: all)")
    p.add_argument("--fashion-dir", help="folder of the Fashion-MNIST IDX files (default: $GANKIT_DATA, then "
                                         "/usr/share/datasets/fashion-mnist; the user cache is not searched)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GANKIT_CACHE"] = tmp  # train from scratch, whatever this user's cache holds
        for family in args.family or PINNED:
            pin(family, args.fashion_dir if family == "fashion-mnist" else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
