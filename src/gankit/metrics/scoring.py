"""Score a trained generator: the one pipeline behind ``gankit eval``, ``train --eval-every`` and the scripts.

Load G, the evaluator, the real splits, the reference statistics (with the real-vs-real floor), then evaluate::

    from gankit.metrics import Scorer, format_report, score_run
    report = score_run("runs/fm", "fd10k,pr10k_k3")        # one run folder or checkpoint file
    scorer = Scorer("fd10k,pr10k_k3")                      # many generators, one real side built once
    for ckpt in sorted(Path("runs/fm/checkpoints").glob("epoch_*.pt")):
        print(format_report(scorer.score(ckpt)))

The evaluator, the real splits and the reference are built on first use and kept per dataset, so scoring a
``--seeds`` folder, every epoch of a run, or every run of a table computes the real side once. Generators load
through :mod:`gankit.generator`: nothing here imports the trainer.

Point data (ring8, grid25, mog1d, and ``drawn``: the points of a run saved by ``gankit lab``, read from the run
folder's points.json) is scored in the plane against its own mixture: see :mod:`gankit.metrics.points`.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch

from ..config import DataConfig
from ..data import run_data
from ..data.toy import DRAWN
from ..errors import GankitError, option
from .evaluate import MetricSpec, Reference, evaluate, generator_sampler, parse_metrics, takes_default_n
from .evaluator import STACKED, load_evaluator, real_splits
from .mixtures import MIXTURES
from .points import PointEvaluator, check_point_metrics, point_mixture, point_splits

DRAWN_METRICS = "modes2d,fd,kid,pr,dc"  # arbitrary drawn points: their clusters, and the clouds compared in the plane


def default_metrics(dataset: str) -> str:
    """The metrics ``gankit eval`` scores when none are named: the dataset's protocol, else the feature set."""
    if dataset in MIXTURES:
        return "modes2d"
    if dataset == DRAWN:
        return DRAWN_METRICS
    if dataset in STACKED:
        return "stacked"
    return "fd,kid,is,pr,dc,classes"


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)  # progress goes to stderr, reports to stdout


def num_classes(model) -> int:
    """Classes a conditional G is called with (0 for an unconditional one), from its model config."""
    return model.num_classes if getattr(model, "cond", "none") != "none" else 0


@dataclass
class RealSide:
    """Everything scoring needs besides G, for one dataset: the metrics, the evaluator, the splits, the reference."""

    data: DataConfig
    specs: list[MetricSpec]
    evaluator: Any
    mixture: Any  # the point data's Mixture (modes2d, the real splits), or None for images
    real_train: Any
    real_test: Any
    reference: Reference | None

    @property
    def streamed(self) -> list[MetricSpec]:
        return [s for s in self.specs if s.metric.streamed]

    @property
    def outside(self) -> list[MetricSpec]:
        """Metrics scored outside the streaming loop (torch-fidelity's Inception metrics)."""
        return [s for s in self.specs if not s.metric.streamed]


class Scorer:
    """Scores generators on ``metrics`` against a real side built once per dataset.

    ``metrics``: names (``'fd10k,pr10k_k3'``); None: :func:`default_metrics` of the dataset. ``n``: samples of a
    name without a size (``default_n`` when None); an ``n`` no metric would read (every name states its own size,
    or is a fixed protocol) is refused rather than ignored. ``evaluator``: ``'auto'``, ``'pinned'``, ``'cache'`` or
    a folder (see :func:`gankit.metrics.load_evaluator`). ``seed``: the latent seed (and the floor subset's).
    ``floor``: also score the real-vs-real floor. ``data``: the dataset to score against (default: each run's own);
    ``data_dir``/``evaluator_dataset``: replace its folder/name. ``log``: progress (default: stderr)."""

    def __init__(self, metrics: str | list[str] | None = None, *, n: int | None = None, evaluator: str = "auto",
                 seed: int = 0, device: str | torch.device = "cpu", floor: bool = True, batch_size: int = 500,
                 data: DataConfig | None = None, data_dir: str | None = None, evaluator_dataset: str | None = None,
                 log: Callable[[str], None] = _stderr, default_n: int = 10_000):
        self.metrics, self.evaluator_source, self.seed = metrics, evaluator, seed
        self.n, self._n_given = (default_n, False) if n is None else (n, True)
        self.device, self.floor, self.batch_size, self.log = device, floor, batch_size, log
        self.data, self.data_dir, self.evaluator_dataset = data, data_dir, evaluator_dataset
        if metrics is not None:
            self._parse(metrics)  # a bad name (or an unread n) fails here, before anything loads
        self._sides: dict[DataConfig, RealSide] = {}

    def _parse(self, metrics: str | list[str]) -> list[MetricSpec]:
        specs = parse_metrics(metrics, self.n)
        names = [s.strip() for s in (metrics.split(",") if isinstance(metrics, str) else metrics) if s.strip()]
        if self._n_given and not any(takes_default_n(s) for s in names):
            raise GankitError(f"{option(f'--n {self.n}', f'n={self.n}')} sets the samples of metrics named without "
                              f"a size, and none here is ({', '.join(names)}): drop it, or put the size in the "
                              f"name (fd5k, pr5k_k3)")
        return specs

    def resolve_data(self, run_data: DataConfig | None = None, img_shape: tuple | None = None) -> DataConfig:
        """The dataset a run is scored against: ``data`` or the run's, with ``data_dir``/``evaluator_dataset``;
        a run that fell back from MNIST to digits (``data.name`` auto) is told apart by its ``img_shape``."""
        data = self.data or run_data
        if data is None:
            raise GankitError("Scorer: no dataset; pass data=DataConfig(...) or score a run folder")
        if self.data_dir:
            data = replace(data, dir=self.data_dir)
        if self.evaluator_dataset:
            data = replace(data, name=self.evaluator_dataset)
        elif data.name == "auto" and img_shape is not None:
            data = replace(data, name="digits" if tuple(img_shape) == (1, 8, 8) else "mnist")
        return data

    def side(self, data: DataConfig) -> RealSide:
        """The real side for ``data``: built on the first call, then reused."""
        if data in self._sides:
            return self._sides[data]
        specs = self._parse(self.metrics or default_metrics(data.name))
        mixture = point_mixture(data)  # points: scored in the plane against their own mixture
        if mixture is not None:
            check_point_metrics([s.kind for s in specs], data)
        evaluator = None
        if any(s.needs_features for s in specs):
            evaluator = (PointEvaluator(mixture) if mixture is not None else
                         load_evaluator(data, source=self.evaluator_source, device=self.device, log=self.log))
        streamed = [s for s in specs if s.metric.streamed]
        need_test = any(s.metric.real_n or s.metric.real_data or not s.metric.streamed for s in specs)
        need_train = any(s.metric.real_data for s in specs) or (
            self.floor and any(s.metric.floor_sampler is None for s in streamed))
        train = test = None
        if mixture is not None and (need_test or need_train):
            train, test = point_splits(mixture, data, max(s.n for s in specs))
        elif need_test or need_train:
            train, test = real_splits(data, self.log)
        reference = None
        if streamed:
            reference = Reference(streamed, evaluator, test, train, mixture=mixture, floor=self.floor,
                                  batch_size=self.batch_size, seed=self.seed)
        side = RealSide(data, specs, evaluator, mixture, train, test, reference)
        self._sides[data] = side
        return side

    def real_floor(self, data: DataConfig | None = None) -> dict | None:
        """The real-vs-real floor of every streamed metric on ``data`` (default: the Scorer's ``data``)."""
        ref = self.side(self.resolve_data(data)).reference
        return ref.floor if ref is not None else None

    def score_generator(self, G: torch.nn.Module, z_dim: int, data: DataConfig, *, num_classes: int = 0,
                        label_shares: torch.Tensor | None = None) -> dict:
        """Score the module ``G`` (z (N, z_dim) -> samples (N, C, H, W) in [-1, 1]) against ``data``; the report
        of :func:`gankit.metrics.evaluate`, plus ``inception`` when torch-fidelity metrics were asked for. A
        conditional G takes its ``num_classes`` in turn, or by ``label_shares`` (a self-conditioned G)."""
        side = self.side(data)

        def sampler():  # each pass draws the same seeded latents
            return generator_sampler(G, z_dim, seed=self.seed, device=self.device, num_classes=num_classes,
                                     label_shares=label_shares)
        report: dict = {"metrics": {}}
        if side.streamed:
            report = evaluate(sampler(), [s.name for s in side.streamed], evaluator=side.evaluator,
                              reference=side.reference, n=self.n, batch_size=self.batch_size)
        if side.outside:
            from .inception import inception_metrics

            report["inception"] = inception_metrics(sampler(), side.real_test, [s.kind for s in side.outside],
                                                    max(s.n for s in side.outside), self.batch_size)
        return report

    def score(self, run_or_checkpoint: str | os.PathLike) -> dict:
        """Score the generator of a run folder or checkpoint file (G_ema where the run kept one). The report
        gains ``run``: the checkpoint, its step, the dataset scored against and the latent seed."""
        from ..generator import load

        g = load(run_or_checkpoint, device=self.device)
        # drawn points live in the run folder (gankit lab's points.json)
        data = run_data(self.resolve_data(g.config.data, g.img_shape), g.path)
        report = self.score_generator(g.G, g.z_dim, data, num_classes=num_classes(g.config.model),
                                      label_shares=g.label_shares)
        report["run"] = {"checkpoint": str(g.path), "step": g.step, "dataset": data.name, "seed": self.seed}
        return report


def score_run(run_or_checkpoint: str | os.PathLike, metrics: str | list[str] | None = None, **options) -> dict:
    """Score one run folder or checkpoint: ``Scorer(metrics, **options).score(run_or_checkpoint)``.

    Options as :class:`Scorer` (``n``, ``evaluator``, ``seed``, ``device``, ``floor``, ``batch_size``, ``data``,
    ...). To score several generators against the same real side, keep a :class:`Scorer`."""
    return Scorer(metrics, **options).score(run_or_checkpoint)
