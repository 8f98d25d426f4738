"""Offline evaluation of generators: domain-classifier metrics and the published protocols.

Imports go one way: this package takes a *sampler* (``sampler(n) -> Tensor``) and real data, never a
trainer, and never imports :mod:`gankit.training`; trained generators load through :mod:`gankit.generator`. ::

    from gankit import metrics
    report = metrics.score_run("runs/fm", "fd10k,pr10k_k3,classes10k")   # load G, evaluator, real side; score
    print(metrics.format_report(report))

or, piece by piece, with any sampler::

    import gankit
    g = gankit.load("runs/fm")
    ev = metrics.load_evaluator("fashion-mnist")          # pinned: ships with gankit, SHA-256 checked
    train, test = metrics.real_splits(g.config.data)
    report = metrics.evaluate(metrics.generator_sampler(g.G, g.z_dim), "fd10k,pr10k_k3,classes10k",
                              evaluator=ev, real_test=test, real_train=train)

Metrics are registered in :mod:`gankit.metrics.registry` (a new one: one file plus one line there). See
docs/EVALUATION.md for what each number means and the reference values.
"""
from .callback import training_callback
from .classes import class_coverage, kl_divergence, stacked_modes
from .evaluate import (MetricSpec, Reference, dataset_sampler, evaluate, format_report, generator_sampler,
                       parse_metric, parse_metrics, tensor_sampler)
from .evaluator import (Evaluator, StackedEvaluator, describe, list_families, load_evaluator, real_splits,
                        train_evaluator)
from .frechet import FrechetState, frechet_distance, kid
from .metric import Metric
from .mixtures import count_modes, sample_mixture
from .parzen import parzen_protocol
from .prdc import density_coverage, precision_recall
from .registry import METRICS, list_metrics, register_metric
from .scoring import Scorer, default_metrics, score_run

__all__ = ["METRICS", "Evaluator", "FrechetState", "Metric", "MetricSpec", "Reference", "Scorer", "StackedEvaluator",
           "class_coverage", "count_modes", "dataset_sampler", "default_metrics", "density_coverage", "describe",
           "evaluate", "format_report", "frechet_distance", "generator_sampler", "kid", "kl_divergence",
           "list_families", "list_metrics", "load_evaluator", "parse_metric", "parse_metrics", "parzen_protocol",
           "precision_recall", "real_splits", "register_metric", "sample_mixture", "score_run", "stacked_modes",
           "tensor_sampler", "train_evaluator", "training_callback"]
