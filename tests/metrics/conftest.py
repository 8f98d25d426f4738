"""Fixtures for the metrics tests: one thread (the suite shares busy cores, where a second OpenMP thread
spin-waits and runs small matmuls many times slower), and a digits evaluator trained once per session."""
from __future__ import annotations

import shutil

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits_evaluator_dir(tmp_path_factory):
    """A cache folder holding the trained digits evaluator (trained once for the whole session)."""
    from gankit.metrics.evaluator import train_evaluator

    root = tmp_path_factory.mktemp("evaluator_cache")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANKIT_CACHE", str(root))
        train_evaluator("digits", log=lambda *_: None)
    torch.set_num_threads(before)
    return root / "evaluators" / "digits"


@pytest.fixture
def digits_evaluator(isolated_data_env, digits_evaluator_dir):
    """The digits evaluator, copied into this test's isolated cache, loaded."""
    from gankit.metrics.evaluator import load_evaluator

    shutil.copytree(digits_evaluator_dir, isolated_data_env / "evaluators" / "digits")
    return load_evaluator("digits", train_if_missing=False)
