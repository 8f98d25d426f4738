"""Produce the evaluation numbers of docs/EVALUATION.md: evaluator cards, real-vs-real floors, seed-preset scores.

Steps (each reuses what an earlier run left: cached evaluators, an existing run folder):
1. load the pinned domain classifiers (digits, fashion-mnist: they ship with gankit) and train (or load) the
   others available here (mnist);
2. train the seed preset on Fashion-MNIST for --epochs epochs, keeping a checkpoint every 10 epochs;
3. score every kept checkpoint with fd10k, kid10k, is10k, pr10k_k3, dc10k_k5, classes10k, next to the
   real-vs-real floor (a 10,000-image training subset against the 10,000 test images);
4. write results.json and rewrite the generated block of docs/EVALUATION.md.

    python scripts/eval_deliverables.py --run-dir runs/seed-fashion --epochs 50
    python scripts/eval_deliverables.py --cards-only     # step 1 alone: rewrite just the metric-card table
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch

import gankit
from gankit import metrics
from gankit.config import DataConfig
from gankit.errors import GankitError
from gankit.metrics.evaluate import headline

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "EVALUATION.md"
BEGIN, END = "<!-- BEGIN GENERATED: scripts/eval_deliverables.py -->", "<!-- END GENERATED -->"
METRICS = "fd10k,kid10k,is10k,pr10k_k3,dc10k_k5,classes10k"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cards() -> dict:
    out = {}
    for name in ("mnist", "fashion-mnist", "digits"):
        try:  # what 'gankit eval' uses: the pinned evaluator where gankit ships one, else trained here
            ev = metrics.load_evaluator(DataConfig(name=name, download=False), log=log)
            out[name] = dict(ev.card, origin=ev.origin)
        except GankitError as e:  # MNIST is not on every machine (its classifier's code path is Fashion-MNIST's)
            out[name] = {"unavailable": str(e).split(";")[0]}
            log(f"{name}: no evaluator ({e})")
    return out


def train_seed(run_dir: Path, epochs: int) -> None:
    if (run_dir / "checkpoints" / "last.pt").is_file():
        state = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
        if state["epoch"] >= epochs:
            log(f"{run_dir}: already trained to epoch {state['epoch']}")
            return
        cfg = gankit.RunConfig.from_dict(state["config"]).with_overrides({"train.epochs": epochs})
        gankit.train(cfg, run_dir, resume=True, log=log)
        return
    cfg = gankit.preset("seed").with_overrides({
        "data.name": "fashion-mnist", "train.epochs": epochs, "train.checkpoint_every": 10,
        "train.sample_every": 10, "train.progress": False, "train.threads": 1})
    gankit.train(cfg, run_dir, log=log)


def score(run_dir: Path, seed: int, data: DataConfig = DataConfig(name="fashion-mnist"), names: str = METRICS
          ) -> tuple[dict, dict]:
    """Every kept checkpoint's scores {epoch: {metric: result}} and the real-vs-real floor {metric: result}."""
    scorer = metrics.Scorer(names, data=data, seed=seed, log=log)
    t0 = time.perf_counter()
    floor = scorer.real_floor() or {}
    log(f"evaluator, real statistics and floors: {time.perf_counter() - t0:.0f} s")
    results = {}
    for ckpt in sorted((run_dir / "checkpoints").glob("epoch_*.pt")):
        t0 = time.perf_counter()
        report = scorer.score(ckpt)
        scores = {name: {k: v for k, v in r.items() if k != "floor"} for name, r in report["metrics"].items()}
        epoch = int(ckpt.stem.split("_")[1])
        results[epoch] = scores
        log(f"epoch {epoch}: scored in {time.perf_counter() - t0:.0f} s: "
            + ", ".join(f"{k} {headline(metrics.parse_metric(k).kind, v)}"
                        for k, v in scores.items()))
    return results, floor


def _f(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


CARDS, FLOORS = "### Metric cards of the feature networks", "### Real-vs-real floors on Fashion-MNIST"


def render_cards(card_list: dict) -> list[str]:
    L = [CARDS, "",
         "| family | evaluator | test accuracy | train / test images | SHA-256 (first 16) | epochs | "
         "training: wall / CPU |", "|---|---|---|---|---|---|---|"]
    for name, c in card_list.items():
        if "unavailable" in c:
            L.append(f"| {name} | not available on this machine | | | | | |")
            continue
        t = c["training"]
        origin = "pinned (ships with gankit)" if c.get("origin") == "pinned" else "trained on this machine"
        L.append(f"| {name} | {origin} | {100 * c['test_accuracy']:.2f} % | {c['n_train']} / {c['n_test']} | "
                 f"`{c['sha256'][:16]}` | {t['epochs']} | {t['seconds']} s / {t.get('cpu_seconds', '?')} s "
                 f"({t.get('threads', '?')} thread) |")
    arch = next((c for c in card_list.values() if "architecture" in c), None)
    if arch:
        L += ["", f"Architecture (28x28 input): `{arch['architecture']}`; features: `{arch['feature_layer']}` "
              f"({arch['feature_dim']}-d, penultimate); trained with {arch['training']['optimizer']}, peak lr "
              f"{arch['training']['lr']}, batch {arch['training']['batch_size']}, seed {arch['training']['seed']}, "
              f"{arch['training'].get('threads', '?')} thread, torch {arch['torch']}"
              + (f" ({arch['cpu_capability']} kernels)" if arch.get("cpu_capability") else "") + "."]
    return L + [""]


def render(card_list: dict, floor: dict, results: dict, epochs: int) -> str:
    L = [BEGIN, ""] + render_cards(card_list)
    L += [FLOORS, "",
          "10,000 training images (a seeded random subset) scored exactly like generated samples against the "
          "10,000 test images: the best value a generator can be expected to reach.", "",
          "| metric | floor | N |", "|---|---|---|"]
    for name, v in floor.items():
        L.append(f"| {name} | {headline(metrics.parse_metric(name).kind, v)} | {v['n_fake']} |")
    L += ["", f"### The seed preset on Fashion-MNIST (trained {epochs} epochs; checkpoints every 10)", "",
          "| epoch | fd10k | kid10k | is10k | precision | recall | density | coverage | classes reached | "
          "KL to real classes |", "|---|---|---|---|---|---|---|---|---|---|"]
    for epoch in sorted(results):
        s = results[epoch]
        L.append(f"| {epoch} | {_f(s['fd10k']['fd'], 2)} | {_f(s['kid10k']['kid'], 4)} | {_f(s['is10k']['is'], 2)} | "
                 f"{_f(s['pr10k_k3']['precision'])} | {_f(s['pr10k_k3']['recall'])} | "
                 f"{_f(s['dc10k_k5']['density'])} | {_f(s['dc10k_k5']['coverage'])} | "
                 f"{s['classes10k']['classes_reached']}/10 | {_f(s['classes10k']['kl_to_real'], 4)} |")
    if floor:
        L.append(f"| floor | {_f(floor['fd10k']['fd'], 2)} | {_f(floor['kid10k']['kid'], 4)} | "
                 f"{_f(floor['is10k']['is'], 2)} | {_f(floor['pr10k_k3']['precision'])} | "
                 f"{_f(floor['pr10k_k3']['recall'])} | {_f(floor['dc10k_k5']['density'])} | "
                 f"{_f(floor['dc10k_k5']['coverage'])} | {floor['classes10k']['classes_reached']}/10 | "
                 f"{_f(floor['classes10k']['kl_to_real'], 4)} |")
    if results and floor:
        last = results[max(results)]
        first = results[min(results)]
        hist = last["classes10k"]["histogram"]
        names = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
        lo = min(range(10), key=lambda i: hist[i])
        L += ["", "Computed from the table (not typed in):", "",
              f"- FD falls from {_f(first['fd10k']['fd'], 1)} (epoch {min(results)}) to {_f(last['fd10k']['fd'], 1)} "
              f"(epoch {max(results)}), still {last['fd10k']['fd'] / floor['fd10k']['fd']:.0f}x the real-vs-real "
              f"floor of {_f(floor['fd10k']['fd'], 2)}.",
              f"- precision {_f(first['pr10k_k3']['precision'])} -> {_f(last['pr10k_k3']['precision'])} while recall "
              f"stays at {_f(first['pr10k_k3']['recall'])} -> {_f(last['pr10k_k3']['recall'])} (floor "
              f"{_f(floor['pr10k_k3']['precision'])} / {_f(floor['pr10k_k3']['recall'])}); coverage "
              f"{_f(last['dc10k_k5']['coverage'])} against a floor of {_f(floor['dc10k_k5']['coverage'])}.",
              f"- the classifier score rises from {_f(first['is10k']['is'], 2)} to {_f(last['is10k']['is'], 2)} "
              f"(floor {_f(floor['is10k']['is'], 2)}).",
              f"- predicted classes of the epoch-{max(results)} samples (real: about 10 % each): "
              + ", ".join(f"{n} {100 * h:.1f} %" for n, h in zip(names, hist))
              + f"; the rarest, {names[lo]}, is drawn {0.1 / max(hist[lo], 1e-9):.0f}x less often than in the data."]
    L += ["", END]
    return "\n".join(L)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", default="runs/seed-fashion-eval", help="run folder of the seed preset")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seed", type=int, default=0, help="latent and floor-subset seed")
    p.add_argument("--no-train", action="store_true", help="score the checkpoints that exist, train nothing")
    p.add_argument("--cards-only", action="store_true", help="rewrite only the metric-card table, score nothing")
    p.add_argument("--doc", default=str(DOC))
    args = p.parse_args()
    torch.set_num_threads(1)
    run_dir = Path(args.run_dir)
    card_list = cards()
    doc = Path(args.doc)
    if args.cards_only:
        table = "\n".join(render_cards(card_list))
        text, n = re.subn(re.escape(CARDS) + ".*?(?=" + re.escape(FLOORS) + ")", lambda _: table + "\n",
                          doc.read_text(), flags=re.S)
        if n != 1:
            raise SystemExit(f"{doc}: no generated metric-card table to rewrite")
        doc.write_text(text)
        log(f"rewrote the metric cards in {doc}")
        return 0
    if not args.no_train:
        train_seed(run_dir, args.epochs)
    results, floor = score(run_dir, args.seed)
    (run_dir / "eval_deliverables.json").write_text(json.dumps(
        {"cards": card_list, "floor": floor, "results": results}, indent=2, default=float))
    text = doc.read_text()
    block = render(card_list, floor, results, max(results) if results else 0)
    text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    doc.write_text(text)
    log(f"wrote {doc} and {run_dir / 'eval_deliverables.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
