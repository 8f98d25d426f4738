"""Offline evaluation of generators: domain-classifier metrics and the published protocols.

Imports go one way: this package takes a *sampler* (``sampler(n) -> Tensor``) and real data, never a
trainer, and never imports :mod:`gankit.train`. ::

    import gankit
    from gankit import metrics
    g = gankit.load("runs/fm")
    ev = metrics.load_evaluator("fashion-mnist")          # pinned: ships with gankit, SHA-256 checked
    train, test = metrics.real_splits(g.config.data)
    report = metrics.evaluate(metrics.generator_sampler(g.G, g.z_dim), "fd10k,pr10k_k3,classes10k",
                              evaluator=ev, real_test=test, real_train=train)
    print(metrics.format_report(report))

See docs/EVALUATION.md for what each number means and the reference values.
"""
from .callback import training_callback
from .classes import class_coverage, kl_divergence, stacked_modes
from .evaluate import (METRICS, MetricSpec, Reference, dataset_sampler, evaluate, format_report, generator_sampler,
                       list_metrics, parse_metric, parse_metrics, tensor_sampler)
from .evaluator import (Evaluator, StackedEvaluator, describe, list_families, load_evaluator, real_splits,
                        train_evaluator)
from .frechet import FrechetState, frechet_distance, kid
from .mixtures import count_modes, sample_mixture
from .parzen import parzen_protocol
from .prdc import density_coverage, precision_recall

__all__ = ["METRICS", "Evaluator", "FrechetState", "MetricSpec", "Reference", "StackedEvaluator", "class_coverage",
           "count_modes", "dataset_sampler", "density_coverage", "describe", "evaluate", "format_report",
           "frechet_distance", "generator_sampler", "kid", "kl_divergence", "list_families", "list_metrics",
           "load_evaluator", "parse_metric", "parse_metrics", "parzen_protocol", "precision_recall", "real_splits",
           "sample_mixture", "stacked_modes", "tensor_sampler", "train_evaluator", "training_callback"]
