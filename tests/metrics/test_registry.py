"""The metric registry: a metric is one file plus one registry entry, and evaluate reads only the registry."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from gankit.config import DataConfig
from gankit.data import to_unit_range
from gankit.errors import GankitError
from gankit.metrics import (METRICS, Metric, evaluate, format_report, list_metrics, register_metric, score_run,
                            tensor_sampler)
from gankit.metrics.evaluator import StackedEvaluator, real_splits
from gankit.metrics.metric import all_real, read_samples
from gankit.metrics.mixtures import sample_mixture


# ----------------------------------------------------------------------------------------------
# A metric defined here, outside gankit: the mean pixel value of the fakes next to the real test split's.

class MeanState:
    """Running float64 sum and count: the mean of every value fed."""

    def __init__(self):
        self.sum, self.n = 0.0, 0

    def update(self, x: torch.Tensor) -> None:
        self.sum += float(x.double().sum())
        self.n += x.numel()

    def compute(self) -> float:
        return self.sum / self.n


MEAN_PIXEL = Metric("meanpx", "mean pixel value in [-1, 1], fakes and real test images",
                    state=lambda spec, evaluator, mixture: MeanState(), read=read_samples,
                    compute=lambda state, real, spec: {"mean": state.compute(), "real_mean": real.compute()},
                    headline=lambda res: f"mean {res['mean']:.4f} (real {res['real_mean']:.4f})", real_n=all_real)


@pytest.fixture
def mean_pixel():
    register_metric(MEAN_PIXEL)
    yield MEAN_PIXEL
    del METRICS["meanpx"]


def test_a_metric_registered_outside_gankit_is_scored_and_reported(mean_pixel, digits_evaluator):
    train, test = real_splits(DataConfig(name="digits"))
    x = to_unit_range(train.images[:300])
    report = evaluate(tensor_sampler(x), "fd300,meanpx300", evaluator=digits_evaluator, real_test=test,
                      real_train=train)
    res = report["metrics"]["meanpx300"]
    assert list(report["metrics"]) == ["fd300", "meanpx300"]
    assert res["mean"] == pytest.approx(float(x.double().mean()))
    assert res["real_mean"] == pytest.approx(float(to_unit_range(test.images).double().mean()))
    assert (res["n_fake"], res["n_real"]) == (300, len(test))
    # the floor scores 300 other training images like the fakes: about the training split's mean
    assert res["floor"]["n_fake"] == 300
    assert res["floor"]["mean"] == pytest.approx(float(to_unit_range(train.images).double().mean()), abs=0.02)
    text = format_report(report)
    assert f"meanpx300    mean {res['mean']:.4f} (real {res['real_mean']:.4f})   [N_fake 300, N_real 297" in text


def test_a_registered_metric_reaches_gankit_eval_and_score_run(mean_pixel, digits_run, tmp_path, capsys):
    from gankit.cli import main

    assert main(["eval", str(digits_run), "--metrics", "meanpx200", "--json", str(tmp_path / "r.json")]) == 0
    assert "meanpx200    mean " in capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["metrics"]["meanpx200"] == score_run(digits_run, "meanpx200")["metrics"]["meanpx200"]
    assert "evaluator" not in report  # a metric without features loads no evaluator


def test_kinds_are_unique_and_well_formed():
    kinds = list_metrics()
    assert len(kinds) == len(set(kinds)) == len(METRICS)
    with pytest.raises(GankitError, match="a metric named 'fd' is already registered"):
        register_metric(Metric("fd", "a second FD", state=lambda *a: None, read=read_samples,
                               compute=lambda *a: {}, headline=str))
    with pytest.raises(GankitError, match="lowercase letters"):
        register_metric(Metric("fd2", "digits would read as a sample count"))
    with pytest.raises(GankitError, match="needs read, compute and headline"):
        register_metric(Metric("half", "a state and nothing else", state=lambda *a: None))
    assert list_metrics() == kinds


def _contexts(digits_evaluator) -> dict[str, dict]:
    """For each streamed kind: a sampler and evaluate's keyword arguments it runs with here (small sizes)."""
    train, test = real_splits(DataConfig(name="digits"))
    digits = {"sampler": lambda: tensor_sampler(to_unit_range(train.images[:300])),
              "kwargs": {"evaluator": digits_evaluator, "real_test": test, "real_train": train}}
    stacked = to_unit_range(train.images[:900]).reshape(300, 3, 8, 8)  # three digits per image
    return {"fd": digits, "kid": digits, "is": digits, "pr": digits, "dc": digits, "classes": digits,
            "parzen": digits,
            "modes2d": {"sampler": lambda: tensor_sampler(sample_mixture("ring8", 300, seed=3)),
                        "kwargs": {"mixture": "ring8"}},
            "stacked": {"sampler": lambda: tensor_sampler(stacked),
                        "kwargs": {"evaluator": StackedEvaluator(digits_evaluator)}}}


def test_every_registered_metric_is_scored_by_evaluate(digits_evaluator, monkeypatch):
    """Each entry flows through evaluate into the report and its text; metrics outside the streaming loop (the
    torch-fidelity ones) are refused with the place they run instead. Fixed protocol sizes are made small here."""
    import dataclasses

    contexts = _contexts(digits_evaluator)
    streamed = [k for k, m in METRICS.items() if m.streamed]
    assert sorted(contexts) == sorted(streamed), "a new metric needs a context in this test"
    for kind in streamed:
        if METRICS[kind].n is not None:
            monkeypatch.setitem(METRICS, kind, dataclasses.replace(METRICS[kind], n=300))
        name = kind if METRICS[kind].n is not None else f"{kind}300"
        ctx = contexts[kind]
        report = evaluate(ctx["sampler"](), name, n=300, **ctx["kwargs"])
        (res,) = report["metrics"].values()
        assert res["n_fake"] == 300, kind
        assert METRICS[kind].headline(res) in format_report(report), kind
    for kind in (k for k, m in METRICS.items() if not m.streamed):
        with pytest.raises(GankitError, match="run through gankit.metrics.inception"):
            evaluate(lambda n: torch.zeros(n, 1, 8, 8), kind)


def test_evaluate_never_names_a_metric():
    """evaluate.py loops over the registry: no string in it (docstrings aside) is a metric kind."""
    import importlib

    tree = ast.parse(Path(importlib.import_module("gankit.metrics.evaluate").__file__).read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    strings = {n.value for n in ast.walk(tree)
               if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings}
    assert not strings & set(METRICS)
