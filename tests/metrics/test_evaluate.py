"""The streaming evaluation loop, metric names, the floor, and the report text."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gankit.config import DataConfig
from gankit.data import to_unit_range
from gankit.errors import GankitError
from gankit.metrics import (dataset_sampler, evaluate, format_report, generator_sampler, parse_metric,
                            tensor_sampler)
from gankit.metrics.evaluator import real_splits
from gankit.metrics.frechet import frechet_distance
from gankit.metrics.mixtures import sample_mixture


def test_metric_names_carry_their_protocol():
    assert parse_metric("fd10k") == parse_metric("fd", default_n=10_000)
    assert parse_metric("fd").name == "fd10k" and parse_metric("pr", default_n=5000).name == "pr5k_k3"
    pr = parse_metric("pr5k_k3")
    assert (pr.kind, pr.n, pr.k) == ("pr", 5000, 3)
    assert parse_metric("dc").k == 5 and parse_metric("kid250").n == 250
    assert parse_metric("stacked").n == 26_000 and parse_metric("modes2d").n == 2500
    assert parse_metric("parzen").n == 10_000
    for bad, msg in (("fid10k", "unknown metric 'fid10k'"), ("fd10k_k3", "only pr and dc"),
                     ("pr_k0", "k must be >= 1"), ("stacked5k", "unknown metric")):
        with pytest.raises(GankitError, match=msg):
            parse_metric(bad)
    assert parse_metric("fd1000k").n == 1_000_000  # the most a metric draws; a typo of more never runs for days
    with pytest.raises(GankitError, match=r"^metric 'fd1001k': 1,001,000 samples is more than a metric draws"):
        parse_metric("fd1001k")
    with pytest.raises(GankitError, match=r"^metric 'kid': 100,000,000,000 samples is more than a metric draws"):
        parse_metric("kid", default_n=10**11)


def _counting(sampler, sizes):
    def wrapped(n):
        sizes.append(n)
        return sampler(n)
    return wrapped


def test_real_against_itself_scores_zero_and_samples_stream_in_batches(digits_evaluator):
    train, test = real_splits(DataConfig(name="digits"))
    sizes: list[int] = []
    report = evaluate(_counting(dataset_sampler(test), sizes), "fd297,kid297,pr297_k3,dc297_k5,classes297,is290",
                      evaluator=digits_evaluator, real_test=test, real_train=train, batch_size=64, n=297)
    m = report["metrics"]
    assert sizes == [64, 64, 64, 64, 41] and sum(sizes) == 297  # never more than one batch at a time
    assert m["fd297"]["fd"] == pytest.approx(0.0, abs=1e-6)
    assert m["pr297_k3"]["precision"] == 1.0 and m["pr297_k3"]["recall"] == 1.0
    assert m["dc297_k5"]["coverage"] == 1.0
    assert m["classes297"]["kl_to_real"] == pytest.approx(0.0, abs=1e-12)
    assert m["kid297"]["kid"] < 1e-6 + 2 * m["kid297"]["kid_std"]
    # the floor: a training subset of the same size, against the test split -- worse than the set itself
    fl = m["fd297"]["floor"]
    assert fl["n_fake"] == 297 and fl["fd"] > 0.1
    assert m["fd297"]["n_fake"] == 297 and m["fd297"]["n_real"] == 297
    assert "warning" not in m["fd297"]  # 297 samples > 128 feature dimensions
    assert report["evaluator"]["sha256"] == digits_evaluator.card["sha256"]


def test_fd_matches_a_direct_computation_on_the_same_features(digits_evaluator):
    train, test = real_splits(DataConfig(name="digits"))
    x = to_unit_range(train.images[:400])
    report = evaluate(tensor_sampler(x), "fd400", evaluator=digits_evaluator, real_test=test, floor=False)
    fx = digits_evaluator.embed(x).features.double().numpy()
    ft = digits_evaluator.embed(to_unit_range(test.images)).features.double().numpy()
    direct = frechet_distance(fx.mean(0), np.cov(fx, rowvar=False), ft.mean(0), np.cov(ft, rowvar=False))
    assert report["metrics"]["fd400"]["fd"] == pytest.approx(direct, rel=1e-6)
    assert report["metrics"]["fd400"]["floor"] is None


def test_a_collapsed_generator_scores_worse_than_the_floor(digits_evaluator):
    train, test = real_splits(DataConfig(name="digits"))
    one = to_unit_range(test.images[:1])
    report = evaluate(lambda n: one.repeat(n, 1, 1, 1), "fd300,classes300,pr300_k3", evaluator=digits_evaluator,
                      real_test=test, real_train=train)
    m = report["metrics"]
    assert m["classes300"]["classes_reached"] == 1
    # all mass on one class c: KL(p_fake || p_real) = -log p_real(c), p_real from the classifier on the test split
    real_labels = digits_evaluator.embed(to_unit_range(test.images)).labels
    c = int(digits_evaluator.embed(one).labels[0])
    assert m["classes300"]["kl_to_real"] == pytest.approx(-math.log(float((real_labels == c).double().mean())))
    assert m["fd300"]["fd"] > 10 * m["fd300"]["floor"]["fd"]
    assert m["pr300_k3"]["recall"] < 0.05
    text = format_report(report)
    for needle in ("N_fake 300", "N_real 297", "real-vs-real floor", digits_evaluator.card["sha256"][:16],
                   "test accuracy"):
        assert needle in text


def test_fd_warns_when_n_is_below_the_feature_dimension(digits_evaluator):
    train, test = real_splits(DataConfig(name="digits"))
    report = evaluate(dataset_sampler(train), "fd50", evaluator=digits_evaluator, real_test=test, floor=False)
    assert "rank-deficient" in report["metrics"]["fd50"]["warning"]
    assert "warning: FD from 50 samples" in format_report(report)


def test_modes2d_with_its_floor_is_the_protocol():
    pts = sample_mixture("ring8", 2500, seed=3)
    report = evaluate(tensor_sampler(pts), "modes2d", mixture="ring8")
    res = report["metrics"]["modes2d"]
    assert res["modes"] == 8 and res["n_fake"] == 2500
    assert res["floor"]["modes"] == 8 and abs(res["floor"]["high_quality"] - 0.9889) < 0.01
    assert "8/8 modes" in format_report(report)


def test_generator_sampler_is_seeded_and_restores_training_mode():
    G = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5))
    G.train()
    a, b = generator_sampler(G, 3, seed=1), generator_sampler(G, 3, seed=1)
    torch.testing.assert_close(a(5), b(5))  # eval mode: dropout off, same z
    assert G.training


def test_feature_metrics_need_an_evaluator_and_real_data(digits_evaluator):
    with pytest.raises(GankitError, match="need an evaluator"):
        evaluate(lambda n: torch.zeros(n, 1, 8, 8), "fd10")
    with pytest.raises(GankitError, match="real test split"):
        evaluate(lambda n: torch.zeros(n, 1, 8, 8), "fd10", evaluator=digits_evaluator)
    _, test = real_splits(DataConfig(name="digits"))
    with pytest.raises(GankitError, match="do not fit the digits evaluator"):
        evaluate(lambda n: torch.zeros(n, 1, 28, 28), "fd10", evaluator=digits_evaluator, real_test=test,
                 floor=False)


@pytest.mark.slow  # 10,000 kernel centres x 10 bandwidths, twice: ~10 s on a free core
def test_parzen_through_evaluate_follows_the_protocol(digits_evaluator):
    from gankit.metrics.parzen import parzen_protocol

    train, test = real_splits(DataConfig(name="digits"))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(10_000, 1, 8, 8, generator=g) * 2 - 1
    report = evaluate(tensor_sampler(x), "parzen", real_test=test, real_train=train, floor=False, batch_size=2500)
    res = report["metrics"]["parzen"]
    direct = parzen_protocol((x.reshape(10_000, -1).double() + 1) / 2,
                             train.images[500:1500].reshape(1000, -1).double() / 255,
                             test.images.reshape(297, -1).double() / 255)
    assert res["log_likelihood"] == pytest.approx(direct["log_likelihood"]) and res["sigma"] == direct["sigma"]
    assert res["n_fake"] == 10_000 and res["n_real"] == 297
    assert "caveat: Parzen-window estimates have high variance" in format_report(report)


def test_metrics_never_import_the_trainer():
    """One-way imports (STYLE.md): metrics take a sampler, never a trainer; runs load through gankit.generator."""
    import ast
    from pathlib import Path

    import gankit.metrics

    for path in Path(gankit.metrics.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = ("." * node.level) + (node.module or "")
                assert not target.startswith(("..train", "..api", "gankit.train", "gankit.api")), (path.name, target)


def test_scoring_a_run_loads_no_trainer(digits_run):
    """Importing the metrics modules, and scoring a checkpoint through them (the CLI's 'gankit eval' path),
    leaves no gankit.training (nor gankit.api) module loaded: checked in a fresh interpreter."""
    import subprocess
    import sys

    code = f"""
import sys
import gankit.metrics.evaluate, gankit.metrics.command, gankit.metrics.callback, gankit.metrics.scoring
import gankit.metrics, gankit.metrics.registry
def trainer():
    return sorted(m for m in sys.modules if m.startswith(("gankit.training", "gankit.train", "gankit.api")))
assert not trainer(), trainer()
from gankit.metrics import command
args = command.add_parser(__import__("argparse").ArgumentParser().add_subparsers()).parse_args(
    [{str(digits_run)!r}, "--metrics", "fd100,classes100", "--no-floor"])
assert command.run(args) == 0
assert not trainer(), trainer()
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert "fd100" in r.stdout
