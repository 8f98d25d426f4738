"""Shared test set-up: every test runs with an isolated data cache and no system data folders, so the
suite behaves the same on a machine with or without datasets installed (tests that want the real
Fashion-MNIST files ask for the ``fashion_dir`` fixture)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from hypothesis import settings
import torch

FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist package

# One thread: the suite's models are tiny, and several OpenMP threads slow small matmuls badly whenever another
# process (a subprocess test, a neighbour on a shared machine) wants the cores.
torch.set_num_threads(1)

# Property tests explore new random examples on developers' machines; in CI they replay a fixed set, so a
# submission's result does not depend on the draw (a newly found failing example shows up locally first).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def isolated_data_env(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.mktemp("gankit_cache")
    monkeypatch.setenv("GANKIT_CACHE", str(cache))
    monkeypatch.setenv("GANKIT_SYSTEM_DATA_DIRS", "")
    monkeypatch.delenv("GANKIT_DATA", raising=False)
    # downloads go nowhere unless a test points them at its own local server
    monkeypatch.setenv("GANKIT_MIRRORS_MNIST", "")
    monkeypatch.setenv("GANKIT_MIRRORS_FASHION_MNIST", "")
    monkeypatch.setenv("GANKIT_MIRRORS_CIFAR10", "")
    yield cache


@pytest.fixture
def fashion_dir() -> Path:
    """The folder of Debian's Fashion-MNIST IDX files (installed by .ci/run); skips where absent."""
    if not (FASHION_SYSTEM_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    return FASHION_SYSTEM_DIR


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(root.rglob("*"))}


@pytest.fixture
def refused(capsys):
    """``refused(args, root, match)``: the CLI refuses ``args`` the way every bad input must be refused (exit 2,
    one stderr line ``gankit: error: ...`` matching the regex ``match``), and nothing below the folder ``root``
    was created, changed or removed. Returns the line."""
    import re

    from gankit import cli

    def check(args: list[str], root: Path, match: str) -> str:
        before = _tree(root)
        capsys.readouterr()
        code = cli.main([str(a) for a in args])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.startswith("gankit: error: ") and err.count("\n") == 1, err
        assert re.search(match, err), err
        assert _tree(root) == before
        return err.strip()
    return check


# Debian's chromium for the end-to-end tests of the studio and the lab (Playwright cannot download a browser here)
CHROMIUM = os.environ.get("GANKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """A headless chromium, one per test module; skips where chromium or Playwright is missing."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def load_script():
    """``load_script("time_curves")``: a fresh module of scripts/time_curves.py (the scripts are not a package)."""
    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
