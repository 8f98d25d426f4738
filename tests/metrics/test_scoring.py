"""score_run / Scorer: the one pipeline behind gankit eval, the training callback and the scripts."""
from __future__ import annotations

import json
import shutil

import pytest

from gankit.config import DataConfig
from gankit.errors import GankitError
from gankit.generator import load
from gankit.metrics import Scorer, evaluate, generator_sampler, load_evaluator, real_splits, score_run
from gankit.metrics import scoring


def test_score_run_is_the_hand_built_pipeline(digits_run):
    names = "fd300,kid300,pr300_k3,classes300,is300"
    report = score_run(digits_run, names, seed=2, batch_size=128)
    g = load(digits_run)
    train, test = real_splits(DataConfig(name="digits"))
    by_hand = evaluate(generator_sampler(g.G, g.z_dim, seed=2), names, evaluator=load_evaluator("digits"),
                       real_test=test, real_train=train, batch_size=128, seed=2)
    assert report["metrics"] == by_hand["metrics"] and report["evaluator"] == by_hand["evaluator"]
    assert report["run"] == {"checkpoint": str(g.path), "step": 20, "dataset": "digits", "seed": 2}


def test_a_scorer_builds_the_real_side_once(digits_run, monkeypatch):
    calls = {"evaluator": 0, "splits": 0}

    def counting(name, fn):
        def wrapped(*a, **kw):
            calls[name] += 1
            return fn(*a, **kw)
        return wrapped
    monkeypatch.setattr(scoring, "load_evaluator", counting("evaluator", scoring.load_evaluator))
    monkeypatch.setattr(scoring, "real_splits", counting("splits", scoring.real_splits))
    scorer = Scorer("fd200,classes200", log=lambda *_: None)
    first = scorer.score(digits_run)
    again = scorer.score(digits_run / "checkpoints" / "last.pt")
    assert calls == {"evaluator": 1, "splits": 1}
    assert again["metrics"] == first["metrics"] == score_run(digits_run, "fd200,classes200")["metrics"]
    assert scorer.real_floor(DataConfig(name="digits")) == {n: r["floor"] for n, r in first["metrics"].items()}


def test_metrics_without_a_real_split_load_none(digits_run, monkeypatch):
    """--no-floor with metrics read off the fakes alone (the classifier score) needs no real images."""
    monkeypatch.setattr(scoring, "real_splits", lambda *a, **kw: pytest.fail("loaded the real splits"))
    report = score_run(digits_run, "is100", floor=False)
    assert report["metrics"]["is100"]["floor"] is None and report["metrics"]["is100"]["n_real"] is None


def test_bad_names_fail_before_anything_loads(tmp_path):
    with pytest.raises(GankitError, match="unknown metric 'fid'"):
        Scorer("fd,fid")
    with pytest.raises(GankitError, match="no such file or folder"):
        score_run(tmp_path / "nothing", "fd")


def test_an_n_that_no_metric_reads_is_refused_not_ignored(digits_run, tmp_path, capsys):
    """`--n` sizes the metrics named without a size. Where every name carries its own (or is a fixed protocol,
    as a toy mixture's default modes2d), an --n used to change nothing without a word."""
    from gankit.cli import main

    assert main(["eval", str(digits_run), "--metrics", "fd300,pr300_k3", "--n", "200", "--no-floor"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("gankit: error: --n 200 sets the samples of metrics named without a size, and none here is "
                   "(fd300, pr300_k3): drop it, or put the size in the name (fd5k, pr5k_k3)")
    # one name without a size takes it: scored at 200, the sized one at its own 300
    out = tmp_path / "e.json"
    assert main(["eval", str(digits_run), "--metrics", "fd300,kid", "--n", "200", "--no-floor", "--json",
                 str(out)]) == 0
    report = json.loads(out.read_text())["metrics"]
    assert (report["fd300"]["n_fake"], report["kid200"]["n_fake"]) == (300, 200)
    with pytest.raises(GankitError, match=r"^n=200 sets the samples of metrics named without a size, and none "
                                          r"here is \(modes2d\)"):
        Scorer(n=200).side(DataConfig(name="ring8"))  # the toy mixtures' default: a fixed protocol of 2,500
    with pytest.raises(GankitError, match=r"^n=50 sets"):
        Scorer("stacked", n=50)
    assert Scorer("fd300").n == 10_000 and Scorer("fd300", default_n=5000).n == 5000  # a default is never refused


def test_eval_of_a_seeds_folder_reads_its_members_with_checkpoint_seed_members(digits_run, tmp_path, capsys):
    from gankit.cli import main

    seeds = tmp_path / "seeds"
    for k in range(2):
        shutil.copytree(digits_run, seeds / f"seed{k}")
    (seeds / "ensemble.json").write_text(json.dumps({"members": ["seed0", "seed1"]}))
    assert main(["eval", str(seeds), "--metrics", "fd100", "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert list(report["members"]) == ["seed0", "seed1"]
    assert report["members"]["seed0"]["metrics"] == report["members"]["seed1"]["metrics"]  # the same weights
    assert report["summary"]["fd100"]["fd"]["se"] == 0.0
    capsys.readouterr()
    (seeds / "ensemble.json").write_text(json.dumps({"members": "seed0"}))
    assert main(["eval", str(seeds)]) == 2
    err = capsys.readouterr().err
    assert "ensemble.json: not a readable list of member folders" in err and err.count("\n") == 1
