"""Fixtures for the metrics tests: the pinned digits evaluator, and a digits evaluator trained once per session
for the tests of the user cache (tests/conftest.py already runs the suite on one torch thread)."""
from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def digits_evaluator_dir(tmp_path_factory):
    """A cache folder holding a digits evaluator trained here (once for the whole session)."""
    from gankit.metrics.evaluator import train_evaluator

    root = tmp_path_factory.mktemp("evaluator_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANKIT_CACHE", str(root))
        train_evaluator("digits", log=lambda *_: None)
    return root / "evaluators" / "digits"


@pytest.fixture
def digits_evaluator(isolated_data_env):
    """The pinned digits evaluator that ships with gankit: what 'gankit eval' uses for digits by default."""
    from gankit.metrics.evaluator import load_evaluator

    return load_evaluator("digits", source="pinned")


@pytest.fixture
def cached_digits_evaluator(isolated_data_env, digits_evaluator_dir):
    """A user-trained digits evaluator, copied into this test's isolated cache, loaded from there."""
    from gankit.metrics.evaluator import load_evaluator

    shutil.copytree(digits_evaluator_dir, isolated_data_env / "evaluators" / "digits")
    return load_evaluator("digits", source="cache", train_if_missing=False)


@pytest.fixture
def digits_run(tmp_path, digits_evaluator):
    """A run folder of the seed preset after 20 steps on digits (checkpoints/last.pt)."""
    from gankit import api

    cfg = api.preset("seed").with_overrides({"data.name": "digits", "train.steps": 20, "train.progress": False,
                                             "train.sample_every": 0})
    api.train(cfg, tmp_path / "run", log=lambda *_: None)
    return tmp_path / "run"
