"""Domain classifiers: training, the cache with its metric card, tamper detection, frozen eval mode (the pinned
evaluators that ship with gankit: tests/metrics/test_pinned.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gankit.config import DataConfig
from gankit.data import load_digits, to_unit_range
from gankit.errors import GankitError
from gankit.metrics.evaluator import (DomainClassifier, StackedEvaluator, accuracy, cache_dir, family_key,
                                      load_evaluator, train_evaluator)


def test_the_digits_evaluator_is_accurate_and_carries_its_card(digits_evaluator):
    card = digits_evaluator.card
    assert card["test_accuracy"] >= 0.90 and card["n_test"] == 297 and card["n_train"] == 1500
    assert card["feature_layer"] == "fc1" and card["feature_dim"] == 128 and len(card["sha256"]) == 64
    # the card's accuracy is what the cached network scores on the held-out 297 images
    assert accuracy(digits_evaluator.net, load_digits("test")) == pytest.approx(card["test_accuracy"])
    emb = digits_evaluator.embed(to_unit_range(load_digits("test").images[:10]))
    assert emb.features.shape == (10, 128) and emb.features.dtype == torch.float32
    torch.testing.assert_close(emb.probs.sum(1), torch.ones(10))


def test_a_second_call_reuses_the_cached_network(cached_digits_evaluator):
    model = cache_dir("digits") / "model.pt"
    before = model.stat().st_mtime_ns
    logs: list[str] = []
    again = train_evaluator("digits", log=logs.append)  # cached: no retraining
    assert not any("training" in m for m in logs) and model.stat().st_mtime_ns == before
    assert again.card["sha256"] == cached_digits_evaluator.card["sha256"]
    loaded = load_evaluator(DataConfig(name="digits"), source="cache", log=logs.append)
    assert not any("training" in m for m in logs) and loaded.origin == "user-trained"
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    torch.testing.assert_close(loaded.embed(x).features, cached_digits_evaluator.embed(x).features)


def test_a_tampered_file_is_detected_by_its_checksum(cached_digits_evaluator):
    model = cache_dir("digits") / "model.pt"
    state = torch.load(model, weights_only=True)
    state["state_dict"]["fc2.bias"] += 1.0  # a plausible, loadable, different network
    torch.save(state, model)
    with pytest.raises(GankitError, match="does not match its metric card.*--force"):
        load_evaluator("digits", source="cache")
    (cache_dir("digits") / "card.json").write_text("{not json")
    with pytest.raises(GankitError, match="unreadable metric card"):
        load_evaluator("digits", source="cache")


def test_missing_evaluators_and_unknown_families_are_clear(isolated_data_env):
    with pytest.raises(GankitError, match="gankit evaluator train --dataset digits"):
        load_evaluator("digits", source="cache", train_if_missing=False)
    with pytest.raises(GankitError, match="gankit ships no cifar10 evaluator"):
        load_evaluator("cifar10", source="pinned")
    with pytest.raises(GankitError, match="not a folder; use auto, pinned, cache"):
        load_evaluator("digits", source="no/such/folder")
    with pytest.raises(GankitError, match="no evaluator for dataset 'folder'"):
        family_key(DataConfig(name="folder", dir="x"))
    assert family_key(DataConfig(name="stacked-mnist", base="fashion-mnist")) == "fashion-mnist"
    assert family_key(DataConfig(name="idx", dir="/a")) != family_key(DataConfig(name="idx", dir="/b"))


def test_the_network_stays_frozen_in_eval_mode(digits_evaluator):
    digits_evaluator.net.train()  # whatever a caller does, embedding runs in eval mode: dropout is off
    x = torch.rand(16, 1, 8, 8) * 2 - 1
    a, b = digits_evaluator.embed(x), digits_evaluator.embed(x)
    torch.testing.assert_close(a.probs, b.probs)
    assert not any(p.requires_grad for p in digits_evaluator.net.parameters())


def test_training_is_seeded():
    from gankit.data import Dataset

    g = torch.Generator().manual_seed(0)
    ds = Dataset("t", (torch.rand(64, 1, 8, 8, generator=g) * 255).to(torch.uint8),
                 torch.randint(0, 3, (64,), generator=g), "random")
    from gankit.metrics.evaluator import train_classifier

    a = train_classifier(ds, 2, seed=5, log=lambda *_: None)
    b = train_classifier(ds, 2, seed=5, log=lambda *_: None)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)
    assert isinstance(a, DomainClassifier)


def test_stacked_digits_a_uniform_sampler_covers_the_1000_modes(digits_evaluator):
    """Stand-in for Stacked MNIST (docs/PROTOCOLS.md §2): three digits images per sample, read by the digits
    classifier. A sampler of real stacks, uniform over the source, covers ~1,000 modes with KL ~ 0.02 at 26,000
    samples (the finite-sample floor: E KL ~ 999 / (2 x 26,000) = 0.019)."""
    from gankit.metrics import evaluate

    digits = to_unit_range(load_digits("train").images)[:, 0]  # (1797, 8, 8)
    rng = np.random.default_rng(0)

    def uniform_stacks(n):
        return digits[torch.from_numpy(rng.integers(0, len(digits), (n, 3)))]  # (n, 3, 8, 8)

    ev = StackedEvaluator(digits_evaluator)
    res = evaluate(uniform_stacks, "stacked", evaluator=ev, floor=False, batch_size=2000)["metrics"]["stacked"]
    assert res["n_fake"] == 26_000 and res["num_modes"] == 1000
    assert res["modes"] >= 995
    assert 0.01 < res["kl_to_uniform"] < 0.035
    one = evaluate(lambda n: digits[torch.zeros(n, 3, dtype=torch.long)], "stacked", evaluator=ev, floor=False,
                   batch_size=2000)
    assert one["metrics"]["stacked"]["modes"] == 1
    assert one["metrics"]["stacked"]["kl_to_uniform"] == pytest.approx(np.log(1000))


def test_card_json_is_readable(cached_digits_evaluator):
    card = json.loads((cache_dir("digits") / "card.json").read_text())
    assert card["sha256"] == cached_digits_evaluator.card["sha256"] and "conv" in card["architecture"]
    assert card["training"]["threads"] == 1 and len(card["train_data_sha256"]) == 64
