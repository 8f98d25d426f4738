"""The evaluators that ship inside gankit (digits, fashion-mnist): intact, packaged, used without training on a
fresh cache, refused when tampered with, and as accurate on the real test split as their cards say."""
from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest
import torch

from gankit import api
from gankit.cli import main
from gankit.config import DataConfig
from gankit.errors import GankitError
from gankit.metrics import evaluator as evaluator_module
from gankit.metrics.evaluator import (PINNED, accuracy, cache_dir, compare_with_pinned, data_sha256, family_data,
                                      load_evaluator, pinned_card)

ROOT = Path(__file__).resolve().parents[2]


def pinned_files(family: str):
    folder = resources.files("gankit.metrics") / "pinned" / family
    return folder / "model.pt", json.loads((folder / "card.json").read_text())


@pytest.mark.parametrize("family", PINNED)
def test_the_shipped_weights_match_their_cards(family):
    model, card = pinned_files(family)
    assert hashlib.sha256(model.read_bytes()).hexdigest() == card["sha256"]
    assert card["family"] == card["dataset"] == family and card["training"]["threads"] == 1
    assert card["training"]["seed"] == 0 and card["training"]["epochs"] == evaluator_module.FAMILIES[family]["epochs"]
    assert "site-packages" not in card["source"]  # nothing of the machine that made them


def test_the_package_data_includes_them_and_stays_small():
    """pyproject's package-data globs take every pinned file into the wheel; together they stay a few MB."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gankit.metrics"]
    src = ROOT / "src" / "gankit" / "metrics"
    files = [p for p in (src / "pinned").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert {p.parent.name for p in files} == set(PINNED) and len(files) == 2 * len(PINNED)
    for p in files:
        assert any(fnmatch.fnmatch(p.relative_to(src).as_posix(), g) for g in globs), p
    assert sum(p.stat().st_size for p in files) < 3e6


@pytest.mark.slow
def test_the_built_wheel_carries_the_pinned_evaluators(tmp_path):
    """Build the wheel from a copy of the sources (setuptools from this environment, no download)."""
    pytest.importorskip("setuptools")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q",
                    "-w", "dist"], cwd=tmp_path, check=True)
    (wheel,) = (tmp_path / "dist").glob("gankit-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for family in PINNED:
            for f in ("model.pt", "card.json"):
                assert f"gankit/metrics/pinned/{family}/{f}" in names
        blob = z.read("gankit/metrics/pinned/fashion-mnist/model.pt")
    assert hashlib.sha256(blob).hexdigest() == pinned_card("fashion-mnist")["sha256"]
    assert wheel.stat().st_size < 4e6  # a few MB: the pinned weights are 1.9 MB of it


def test_a_fresh_cache_scores_with_the_pinned_evaluator_without_training(tmp_path, isolated_data_env, monkeypatch,
                                                                         capsys):
    cfg = api.preset("seed").with_overrides({"data.name": "digits", "train.steps": 5, "train.progress": False,
                                             "train.sample_every": 0})
    api.train(cfg, tmp_path / "run", log=lambda *_: None)

    def no_training(*args, **kwargs):
        raise AssertionError("a pinned family must not train an evaluator")

    monkeypatch.setattr(evaluator_module, "train_classifier", no_training)
    assert main(["eval", str(tmp_path / "run"), "--metrics", "fd300", "--no-floor",
                 "--json", str(tmp_path / "eval.json")]) == 0
    out = capsys.readouterr().out
    assert f"evaluator: digits (pinned) sha256:{pinned_card('digits')['sha256'][:16]}" in out
    assert json.loads((tmp_path / "eval.json").read_text())["evaluator"]["origin"] == "pinned"
    assert not (isolated_data_env / "evaluators").exists()  # nothing trained, nothing written to the cache
    ev = load_evaluator("fashion-mnist", log=no_training)  # Fashion-MNIST too: no data needed to load it
    assert ev.origin == "pinned" and ev.card["sha256"] == pinned_card("fashion-mnist")["sha256"]
    assert not (isolated_data_env / "evaluators").exists()


def _retrained_copy(src, dest: Path) -> None:
    """A consistent evaluator folder (card matches weights) whose network differs from ``src``'s."""
    dest.mkdir(parents=True)
    state = torch.load(src / "model.pt", weights_only=True)
    state["state_dict"]["fc2.bias"] += 1.0
    torch.save(state, dest / "model.pt")
    card = json.loads((src / "card.json").read_text())
    card["sha256"] = hashlib.sha256((dest / "model.pt").read_bytes()).hexdigest()
    (dest / "card.json").write_text(json.dumps(card))


def test_a_user_trained_evaluator_replaces_the_pinned_one_only_when_asked(isolated_data_env):
    _retrained_copy(resources.files("gankit.metrics") / "pinned" / "digits", cache_dir("digits"))
    assert load_evaluator("digits").origin == "pinned"  # the cache does not silently win
    logs: list[str] = []
    ev = load_evaluator("digits", source="cache", log=logs.append)
    assert ev.origin == "user-trained" and ev.card["sha256"] != pinned_card("digits")["sha256"]
    assert len(logs) == 1 and "differs from the pinned" in logs[0] and "--evaluator cache" in logs[0]
    folder = load_evaluator("digits", source=str(cache_dir("digits")))
    assert folder.origin == f"folder {cache_dir('digits')}"
    with pytest.raises(GankitError, match="an evaluator for 'digits', not 'fashion-mnist'"):
        load_evaluator("fashion-mnist", source=str(cache_dir("digits")))


def test_compare_with_pinned_names_what_differs():
    card = pinned_card("digits")
    assert compare_with_pinned(card).startswith("identical")
    other = dict(card, sha256="0" * 64, torch="9.9", training=dict(card["training"], threads=4))
    note = compare_with_pinned(other)
    assert f"torch 9.9 vs {card['torch']}" in note and "threads 4 vs 1" in note and "training data" not in note
    assert "CPU's arithmetic" in compare_with_pinned(dict(card, sha256="0" * 64))
    assert compare_with_pinned(dict(card, family="idx-0123")) is None
    old = {k: v for k, v in card.items() if k not in ("train_data_sha256", "cpu_capability")}  # an older card
    assert "does not record train_data_sha256, cpu_capability" in compare_with_pinned(dict(old, sha256="0" * 64))


def test_a_tampered_pinned_file_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    copy = tmp_path / "pinned"
    shutil.copytree(resources.files("gankit.metrics") / "pinned", copy)
    state = torch.load(copy / "digits" / "model.pt", weights_only=True)
    state["state_dict"]["fc2.bias"] += 1.0  # a plausible, loadable, different network
    torch.save(state, copy / "digits" / "model.pt")
    monkeypatch.setattr(evaluator_module, "pinned_root", lambda: copy)
    with pytest.raises(GankitError, match=r"model.pt: SHA-256 \w{12} does not match its metric card .*reinstall"):
        load_evaluator("digits")
    assert main(["evaluator", "show", "--dataset", "digits"]) == 2
    err = capsys.readouterr().err
    assert str(copy / "digits" / "model.pt") in err and "reinstall" in err and err.count("\n") == 1
    with pytest.raises(GankitError, match="does not match its metric card"):  # a tampered copy passed as a folder
        load_evaluator("digits", source=str(copy / "digits"))


def test_the_pinned_digits_evaluator_scores_its_card_on_the_real_test_split():
    ev = load_evaluator("digits")
    data = DataConfig(name="digits")
    assert accuracy(ev.net, family_data(data, "test", log=lambda *_: None)) == pytest.approx(ev.card["test_accuracy"])
    assert data_sha256(family_data(data, "train", log=lambda *_: None)) == ev.card["train_data_sha256"]


def test_the_pinned_fashion_evaluator_scores_its_card_on_the_real_test_split(fashion_dir):
    """All 10,000 test images; 2 images of slack for another CPU's rounding of a near tie. A network trained
    otherwise (with 2 threads: 91.67 % against 91.64 %) fails it."""
    ev = load_evaluator("fashion-mnist")
    data = DataConfig(name="fashion-mnist", dir=str(fashion_dir))
    test = family_data(data, "test", log=lambda *_: None)
    assert len(test) == ev.card["n_test"] == 10_000
    assert accuracy(ev.net, test) == pytest.approx(ev.card["test_accuracy"], abs=2e-4)
    assert data_sha256(family_data(data, "train", log=lambda *_: None)) == ev.card["train_data_sha256"]
