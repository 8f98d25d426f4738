"""Domain classifiers: gankit's own feature networks, one per dataset family, pinned or trained once and cached.

Inception features cannot be downloaded offline and fit 28x28 grayscale poorly (docs/PROTOCOLS.md §4), so gankit
uses a small CNN per dataset family, trained on its training split, seeded, with a *metric card*: SHA-256 of
the weights file, architecture, feature layer, test accuracy. Scores computed with one evaluator are
comparable only with scores from the same checksum; every report prints it.

Where the classifier comes from (``load_evaluator(source=...)``, ``gankit eval --evaluator``):

- ``pinned``: the weights of ``digits`` and ``fashion-mnist`` ship inside the package
  (``gankit/metrics/pinned/<family>/{model.pt, card.json}``, made by ``scripts/pin_evaluators.py``), so every
  machine scores with the same checksum as docs/ZOO.md, without training. The default for these families;
  a classifier the user trained for them is used only when asked for (``cache``).
- ``cache``: trained on this machine (``gankit evaluator train``, or on first use) and kept in
  ``cache_root()/evaluators/<family>/{model.pt, card.json}``; the default for the other families.
- a folder holding ``model.pt`` and ``card.json`` (a colleague's evaluator, say).

A weights file whose SHA-256 differs from its card is refused (tampered or corrupt), never silently used.
"""
from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..config import DataConfig
from ..data import Dataset, load_dataset, sources, to_unit_range
from ..errors import GankitError, option
from ..io import atomic_write_bytes, atomic_write_text

FEATURE_LAYER = "fc1"  # the penultimate layer: 128 ReLU units
CARD_VERSION = 1

# Families that have a classifier, with how many epochs it trains (sized so Fashion-MNIST reaches >= 90 % in
# about a minute of one idle CPU core; digits has 1,500 training images and needs more passes).
FAMILIES: dict[str, dict] = {
    "mnist": {"epochs": 6, "batch": 128, "note": "MNIST digits (train 60k / test 10k)"},
    "fashion-mnist": {"epochs": 6, "batch": 128, "note": "Fashion-MNIST (train 60k / test 10k)"},
    "digits": {"epochs": 12, "batch": 64, "note": "scikit-learn 8x8 digits (train: first 1,500; test: last 297)"},
    "cifar10": {"epochs": 10, "batch": 128, "note": "CIFAR-10, where gankit can load it"},
    "idx": {"epochs": 6, "batch": 128, "note": "any folder of MNIST-format IDX files (keyed by folder)"},
}
# Datasets whose images stack another family's images, one per channel (that family is ``data.base``).
STACKED = ("stacked-mnist",)
STACKED_REAL_SIZE = 26_000  # real stacks drawn for the floor: the protocol's sample count
DIGITS_TEST = 297  # load_digits('test') is the last 297 images
# Families whose classifier ships inside the package, so scores compare across machines and need no training.
PINNED = ("digits", "fashion-mnist")
# Training runs on one thread: with two, reductions split differently and the weights (and checksum) change
# (Fashion-MNIST: sha256 9ba02025b37e with 2 threads against the pinned e8dde9142958 with 1, same torch and CPU).
TRAIN_THREADS = 1


def list_families() -> list[str]:
    return sorted(FAMILIES)


def _strided(size: int) -> int:
    return -(-(-(-size // 2)) // 2)  # two stride-2 convolutions: ceil(ceil(size / 2) / 2)


class DomainClassifier(nn.Module):
    """Small CNN: images (N, C, H, W) float in [-1, 1] -> logits (N, num_classes).

    conv5x5/2 (C->w) BN ReLU, conv3x3/2 (w->2w) BN ReLU, fc1 (->128) ReLU [the features], dropout 0.5, fc2.
    Strided convolutions instead of pooling: on a CPU this costs a quarter of the classic conv-pool net for the
    same accuracy within the epochs we can afford (Fashion-MNIST >= 90 % in 6 epochs).
    """

    def __init__(self, img_shape: tuple[int, int, int], num_classes: int, width: int = 32, feature_dim: int = 128):
        super().__init__()
        c, h, w = img_shape
        self.img_shape = tuple(img_shape)
        self.conv1 = nn.Conv2d(c, width, 5, stride=2, padding=2)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.fc1 = nn.Linear(2 * width * _strided(h) * _strided(w), feature_dim)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> the fc1 activations (N, feature_dim), float32."""
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return torch.relu(self.fc1(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.features(x)))


def architecture(img_shape, num_classes: int, width: int = 32, feature_dim: int = 128) -> str:
    c, h, w = img_shape
    return (f"conv5x5/2({c}->{width})-bn-relu, conv3x3/2({width}->{2 * width})-bn-relu, "
            f"fc1({2 * width * _strided(h) * _strided(w)}->{feature_dim})-relu [features], dropout0.5, "
            f"fc2({feature_dim}->{num_classes}); input {c}x{h}x{w} in [-1, 1]")


@dataclass
class Embedding:
    """What an evaluator returns for a batch: ``features`` float32 (N, d), ``probs`` float32 (N, K) or None,
    ``labels`` int64 (N,) predicted classes (for stacked data, 100*d1 + 10*d2 + d3)."""

    features: torch.Tensor
    probs: torch.Tensor | None
    labels: torch.Tensor


class Evaluator:
    """A frozen domain classifier: always in eval mode, no gradients. ``card``: its metric card (a dict);
    ``origin``: where it came from, ``'pinned'`` (shipped with gankit), ``'user-trained'`` (the cache) or
    ``'folder DIR'``."""

    def __init__(self, net: DomainClassifier, card: dict, device: str | torch.device = "cpu",
                 origin: str = "user-trained"):
        self.net = net.to(device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.card = card
        self.device = torch.device(device)
        self.origin = origin

    @property
    def num_classes(self) -> int:
        return int(self.card["num_classes"])

    @property
    def feature_dim(self) -> int:
        return int(self.card["feature_dim"])

    @property
    def img_shape(self) -> tuple[int, int, int]:
        return tuple(self.card["img_shape"])  # type: ignore[return-value]

    def to(self, device: str | torch.device) -> "Evaluator":
        return Evaluator(self.net, self.card, device, self.origin)

    def check_shape(self, shape) -> None:
        if tuple(shape) != self.img_shape:
            raise GankitError(f"images of shape {tuple(shape)} do not fit the {self.card['family']} evaluator "
                              f"(trained on {self.img_shape}); pass "
                              f"{option('--evaluator-dataset', 'evaluator_dataset=')} for the right family")

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> Embedding:
        """``x``: float (N, C, H, W) in [-1, 1]."""
        self.net.eval()  # frozen: never in training mode, whatever a caller did to the module
        x = x.to(self.device, torch.float32)
        f = self.net.features(x)
        probs = torch.softmax(self.net.fc2(f), dim=1)
        return Embedding(f.float().cpu(), probs.float().cpu(), probs.argmax(1).cpu())

    def summary(self) -> str:
        c = self.card
        return (f"evaluator {c['family']} ({self.origin}) sha256:{c['sha256'][:12]} test accuracy "
                f"{100 * c['test_accuracy']:.2f}% features {c['feature_layer']} ({c['feature_dim']}-d)")


class StackedEvaluator:
    """Reads each channel of (N, 3, H, W) stacked images with a one-channel evaluator (docs/PROTOCOLS.md §2).

    Features are the three channels' features concatenated (3d); labels are 100*d1 + 10*d2 + d3."""

    def __init__(self, base: Evaluator, channels: int = 3):
        self.base = base
        self.channels = channels
        self.card = dict(base.card, family=f"stacked-{base.card['family']}", stacked_channels=channels,
                         num_classes=base.num_classes ** channels)
        self.device = base.device
        self.origin = base.origin

    num_classes = property(lambda self: int(self.card["num_classes"]))
    feature_dim = property(lambda self: self.base.feature_dim * self.channels)
    img_shape = property(lambda self: (self.channels, *self.base.img_shape[1:]))
    summary = Evaluator.summary

    def check_shape(self, shape) -> None:
        if tuple(shape) != self.img_shape:
            raise GankitError(f"stacked images must have shape {self.img_shape}, got {tuple(shape)}")

    def to(self, device) -> "StackedEvaluator":
        return StackedEvaluator(self.base.to(device), self.channels)

    def embed(self, x: torch.Tensor) -> Embedding:
        n, c = x.shape[:2]
        e = self.base.embed(x.reshape(n * c, 1, *x.shape[2:]))  # channel-major within each image
        digits = e.labels.view(n, c)
        k = self.base.num_classes
        labels = sum(digits[:, i] * k ** (c - 1 - i) for i in range(c))
        return Embedding(e.features.view(n, c * e.features.shape[1]), None, labels)


# ----------------------------------------------------------------------------------------------
# Families and their train/test data.

def channel_family(data: DataConfig) -> DataConfig:
    """The dataset whose classifier reads ``data``: itself, or for stacked data its per-channel source."""
    if data.name in STACKED:
        return DataConfig(name=data.base, dir=data.dir, download=data.download)
    return data


def family_key(data: DataConfig) -> str:
    """The cache key of the classifier for ``data``'s images (a folder of IDX files is keyed by its path)."""
    data = channel_family(data)
    name = data.name
    if name == "auto":
        raise GankitError(f"evaluators need a named dataset; pass "
                          f"{option('--evaluator-dataset', 'evaluator_dataset=')} mnist|fashion-mnist|digits")
    if name == "idx":
        if not data.dir:
            raise GankitError(f"the 'idx' evaluator needs the folder: pass {option('--data-dir DIR', 'data.dir=DIR')}")
        folder = str(Path(data.dir).expanduser().resolve())
        return "idx-" + hashlib.sha256(folder.encode()).hexdigest()[:12]
    if name not in FAMILIES:
        raise GankitError(f"no evaluator for dataset {data.name!r}; evaluators exist for: "
                          f"{', '.join(list_families())}, stacked-mnist; to score in one of their features, pass "
                          f"{option('--evaluator-dataset NAME', 'evaluator_dataset=NAME')} (images of its shape)")
    return name


def family_data(data: DataConfig, split: str, log: Callable[[str], None] = print, labelled: bool = True
                ) -> Dataset:
    """The labelled ``split`` ('train' or 'test') of ``data``'s family, as the classifier sees it.

    For ``digits`` the classifier trains on the first 1,500 images and is tested on the last 297."""
    name = channel_family(data).name
    cfg = DataConfig(name=name, dir=data.dir, split=split, download=data.download)
    ds = load_dataset(cfg, log=log)
    if name == "digits" and split == "train":
        ds = Dataset(ds.name, ds.images[:-DIGITS_TEST], ds.labels[:-DIGITS_TEST], ds.source,  # type: ignore
                     ds.num_classes)
    if ds.labels is None and labelled:
        raise GankitError(f"{ds.source}: the {split} split has no labels; an evaluator needs labelled images")
    return ds


def real_splits(data: DataConfig, log: Callable[[str], None] = print) -> tuple[Dataset, Dataset]:
    """(train, test) real images of ``data`` for scoring: the test split is the reference, a training
    subset gives the real-vs-real floor. ``digits`` keeps its last 297 images out of train, as above."""
    if data.name in STACKED:  # the stacked dataset itself, not its per-channel family
        size = min(data.size or STACKED_REAL_SIZE, STACKED_REAL_SIZE)
        return (load_dataset(replace(data, split="train", size=size), log=log),
                load_dataset(replace(data, split="test", size=size), log=log))
    return family_data(data, "train", log, labelled=False), family_data(data, "test", log, labelled=False)


# ----------------------------------------------------------------------------------------------
# Training, caching and loading.

def cache_dir(key: str) -> Path:
    return sources.cache_root() / "evaluators" / key


def pinned_root():
    """The folder of the evaluators shipped with gankit (a ``Traversable``: a plain folder once installed)."""
    return resources.files(__package__) / "pinned"


@torch.no_grad()
def accuracy(net: DomainClassifier, ds: Dataset, batch_size: int = 1000) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(ds), batch_size):
        logits = net(to_unit_range(ds.images[i:i + batch_size]))
        correct += int((logits.argmax(1) == ds.labels[i:i + batch_size]).sum())  # type: ignore[index]
    return correct / len(ds)


def data_sha256(ds: Dataset) -> str:
    """SHA-256 of a labelled split as the classifier sees it (uint8 images, then int64 labels): two machines
    whose training data hash alike differ, if at all, in torch, its CPU kernels or the settings."""
    h = hashlib.sha256(ds.images.contiguous().numpy().tobytes())
    h.update(ds.labels.to(torch.int64).numpy().tobytes())  # type: ignore[union-attr]
    return h.hexdigest()


LR = 2e-3  # peak of the one-cycle schedule
BATCH = 128


def train_classifier(train: Dataset, epochs: int, *, seed: int = 0, batch_size: int = BATCH, lr: float = LR,
                     log: Callable[[str], None] = print) -> DomainClassifier:
    """Adam with a one-cycle learning rate on cross-entropy, seeded: the same data and seed give the same
    weights on one machine with one thread count."""
    torch.manual_seed(seed)
    num_classes = int(train.labels.max()) + 1  # type: ignore[union-attr]
    net = DomainClassifier(train.shape, num_classes)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    n = len(train)
    per_epoch = -(-n // batch_size)
    # one-cycle (Smith 2018): warm up for 15 % of the steps, then anneal; most accuracy per epoch on a budget
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch, pct_start=0.15)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            loss = nn.functional.cross_entropy(net(to_unit_range(train.images[idx])), train.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if epochs <= 10 or (epoch + 1) % 10 == 0:
            log(f"  evaluator epoch {epoch + 1}/{epochs}: train loss {total / n:.4f}")
    return net.eval()


def train_evaluator(data: DataConfig | str, *, epochs: int | None = None, seed: int = 0, force: bool = False,
                    log: Callable[[str], None] = print) -> Evaluator:
    """Train the classifier of ``data``'s family on one thread and cache it with its metric card; returns it.

    An existing cached classifier is reused unless ``force``. The pinned evaluators are made by this function
    (scripts/pin_evaluators.py); :func:`compare_with_pinned` says whether a result reproduces them."""
    data = DataConfig(name=data) if isinstance(data, str) else data
    key = family_key(data)
    if not force and (cache_dir(key) / "card.json").is_file():
        return load_evaluator(data, source="cache", train_if_missing=False, log=log)  # type: ignore[return-value]
    family = channel_family(data).name
    spec = FAMILIES.get(family, FAMILIES["idx"])
    epochs = epochs or spec["epochs"]
    train, test = family_data(data, "train", log), family_data(data, "test", log)
    log(f"training the {key} evaluator: {len(train)} images, {epochs} epochs, {TRAIN_THREADS} thread "
        f"(once; cached in {cache_dir(key)})")
    t0, cpu0 = time.perf_counter(), time.process_time()
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        net = train_classifier(train, epochs, seed=seed, batch_size=spec["batch"], log=log)
    finally:
        torch.set_num_threads(threads)
    acc = accuracy(net, test)
    buf = io.BytesIO()
    torch.save({"state_dict": net.state_dict(), "img_shape": list(train.shape),
                "num_classes": net.fc2.out_features, "width": net.conv1.out_channels,
                "feature_dim": net.fc1.out_features}, buf)
    folder = cache_dir(key)
    atomic_write_bytes(folder / "model.pt", buf.getvalue())
    card = {
        "card_version": CARD_VERSION, "family": key, "dataset": family, "source": train.source,
        "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
        "architecture": architecture(train.shape, net.fc2.out_features), "img_shape": list(train.shape),
        "num_classes": net.fc2.out_features, "feature_layer": FEATURE_LAYER, "feature_dim": net.fc1.out_features,
        "test_accuracy": acc, "n_train": len(train), "n_test": len(test), "train_data_sha256": data_sha256(train),
        "training": {"epochs": epochs, "batch_size": spec["batch"], "optimizer": "Adam, one-cycle", "lr": LR,
                     "seed": seed, "seconds": round(time.perf_counter() - t0, 1),
                     "cpu_seconds": round(time.process_time() - cpu0, 1), "threads": TRAIN_THREADS},
        "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(folder / "card.json", json.dumps(card, indent=2) + "\n")
    log(f"evaluator {key}: test accuracy {100 * acc:.2f}% ({card['training']['seconds']} s), "
        f"sha256 {card['sha256'][:12]}")
    return Evaluator(net, card)


def _read_json(path, fix: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise GankitError(f"{path} is missing; {fix}") from None
    except (OSError, ValueError) as e:
        raise GankitError(f"{path}: unreadable metric card ({e}); {fix}") from None


def read_card(key: str) -> dict | None:
    """The card of the evaluator cached for ``key`` (None when there is none)."""
    path = cache_dir(key) / "card.json"
    if not path.is_file():
        return None
    return _read_json(path, f"retrain with 'gankit evaluator train --dataset {key} --force'")


_PINNED_FIX = "this gankit installation is damaged: reinstall it (pip install --force-reinstall gankit)"


def pinned_card(key: str) -> dict | None:
    """The card of the evaluator shipped with gankit for ``key`` (None for a family without one)."""
    if key not in PINNED:
        return None
    return _read_json(pinned_root() / key / "card.json", _PINNED_FIX)


def _load_folder(folder, origin: str, fix: str) -> Evaluator:
    """The evaluator in ``folder`` (a Path or Traversable with model.pt and card.json), SHA-256 checked."""
    card = _read_json(folder / "card.json", fix)
    path = folder / "model.pt"
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise GankitError(f"{path} is missing; {fix}") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != card.get("sha256"):
        raise GankitError(f"{path}: SHA-256 {digest[:12]} does not match its metric card "
                          f"({str(card.get('sha256'))[:12]}): the file was modified or corrupted; {fix}")
    state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    net = DomainClassifier(tuple(state["img_shape"]), state["num_classes"], state["width"], state["feature_dim"])
    net.load_state_dict(state["state_dict"])
    return Evaluator(net, card, origin=origin)


SOURCES = ("auto", "pinned", "cache")  # or a folder; see the module docstring


def load_evaluator(data: DataConfig | str, *, source: str = "auto", train_if_missing: bool = True,
                   device: str | torch.device = "cpu", log: Callable[[str], None] = print
                   ) -> Evaluator | StackedEvaluator:
    """The evaluator of ``data``'s family, checked against its card's SHA-256.

    ``source``: ``'auto'`` (the pinned one where gankit ships one, else the cache), ``'pinned'``, ``'cache'``
    (the one trained on this machine, trained on first use unless ``train_if_missing`` is False), or a folder
    holding ``model.pt`` and ``card.json``. Stacked datasets (``stacked-mnist``) get their per-channel family's
    classifier, wrapped."""
    data = DataConfig(name=data) if isinstance(data, str) else data
    key = family_key(data)
    if source == "auto":
        source = "pinned" if key in PINNED else "cache"
    if source == "pinned":
        if key not in PINNED:
            raise GankitError(f"gankit ships no {key} evaluator (pinned: {', '.join(PINNED)}); use --evaluator "
                              f"cache, which trains one on this machine")
        ev = _load_folder(pinned_root() / key, "pinned", _PINNED_FIX)
    elif source == "cache":
        fix = f"retrain with 'gankit evaluator train --dataset {data.name} --force'"
        if read_card(key) is not None:
            ev = _load_folder(cache_dir(key), "user-trained", fix)
        elif train_if_missing:
            ev = train_evaluator(data, log=log)
        else:
            raise GankitError(f"no cached evaluator for {key}; run 'gankit evaluator train --dataset {data.name}'")
        note = compare_with_pinned(ev.card)
        if note and not note.startswith("identical"):
            log(f"evaluator {key}: {note}")
    else:
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise GankitError(f"evaluator {source!r}: not a folder; use {', '.join(SOURCES)} or a folder holding "
                              f"model.pt and card.json")
        ev = _load_folder(folder, f"folder {folder}", "ask for an intact copy, or use --evaluator pinned|cache")
        if ev.card.get("dataset") != channel_family(data).name:
            raise GankitError(f"{folder}: an evaluator for {ev.card.get('dataset')!r}, not {data.name!r}; pass the "
                              f"folder of a {channel_family(data).name} evaluator")
    ev = ev.to(device)
    if data.name in STACKED:
        return StackedEvaluator(ev)
    return ev


def compare_with_pinned(card: dict) -> str | None:
    """Whether an evaluator ``card`` reproduces the pinned evaluator of its family, and if not what differs
    (None for families gankit ships no evaluator for)."""
    pinned = pinned_card(card["family"])
    if pinned is None:
        return None
    if pinned["sha256"] == card["sha256"]:
        return (f"identical to the pinned evaluator that ships with gankit (sha256 {card['sha256'][:12]}): "
                f"scores are comparable with docs/ZOO.md and with other machines")
    mine = {**card["training"], **card}  # what a card made before the pinned ones records may be missing
    theirs = {**pinned["training"], **pinned}
    keys = ("train_data_sha256", "torch", "cpu_capability", "epochs", "seed", "threads")
    diffs = [("training data" if k == "train_data_sha256" else f"{k} {mine[k]} vs {theirs.get(k)}")
             for k in keys if k in mine and mine[k] != theirs.get(k)]
    unknown = [k for k in keys if k not in mine]
    if diffs or unknown:
        why = "; differs in " + ", ".join(diffs) if diffs else ""
        why += f"; its card does not record {', '.join(unknown)}" if unknown else ""
    else:
        why = "; same data, torch and settings, so the CPU's arithmetic (BLAS, oneDNN kernels) made the difference"
    return (f"sha256 {card['sha256'][:12]} differs from the pinned {pinned['sha256'][:12]} that ships with gankit"
            f"{why}. Its scores are not comparable with docs/ZOO.md; 'gankit eval' keeps using the pinned one "
            f"unless given --evaluator cache")


def describe(card: dict) -> str:
    """The metric card as a few readable lines."""
    t = card["training"]
    return "\n".join([
        f"family         {card['family']} ({card['dataset']}; {card['source']})",
        f"sha256         {card['sha256']}",
        f"architecture   {card['architecture']}",
        f"feature layer  {card['feature_layer']} ({card['feature_dim']}-d, penultimate)",
        f"test accuracy  {100 * card['test_accuracy']:.2f}% on {card['n_test']} test images "
        f"(trained on {card['n_train']})",
        f"training       {t['epochs']} epochs, {t['optimizer']} lr {t['lr']}, batch {t['batch_size']}, "
        f"seed {t['seed']}, {t.get('threads', '?')} thread(s), {t['seconds']} s, torch {card['torch']}"
        + (f" ({card['cpu_capability']} kernels)" if card.get("cpu_capability") else ""),
    ])
