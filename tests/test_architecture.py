"""The layering README's "Architecture" section promises: imports run one way, and nothing but the API and the CLI
reaches the trainer."""
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "gankit"
TOP = ("gankit.api", "gankit.cli", "gankit.__main__", "gankit.lab")  # the only modules that may import gankit.training


def _modules(under: Path) -> list[str]:
    out = []
    for f in sorted(under.rglob("*.py")):
        parts = f.relative_to(SRC.parent).with_suffix("").parts
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def _import_each(modules: list[str], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """{module: the forbidden modules importing it loaded}, each module imported in a fresh interpreter."""
    code = ("import importlib, json, sys\n"
            f"mods, bad = {modules!r}, {forbidden!r}\n"
            "out = {}\n"
            "for m in mods:\n"
            "    before = set(sys.modules)\n"
            "    importlib.import_module(m)\n"
            "    new = [k for k in set(sys.modules) - before if k.startswith(bad) and k != m]\n"
            "    if new: out[m] = sorted(new)\n"
            "    for k in set(sys.modules) - before:\n"
            "        if k.startswith('gankit'): del sys.modules[k]\n"
            "print(json.dumps(out))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    return json.loads(r.stdout.strip().splitlines()[-1])


def test_nothing_below_the_api_imports_the_trainer():
    mods = [m for m in _modules(SRC) if not m.startswith(("gankit.training",) + TOP)]
    assert len(mods) > 50
    assert _import_each(mods, ("gankit.training", "gankit.api", "gankit.cli", "gankit.lab")) == {}


def test_the_trainer_imports_no_evaluation_studio_or_theory():
    mods = _modules(SRC / "training")
    assert _import_each(mods, ("gankit.metrics", "gankit.serve", "gankit.theory", "gankit.api", "gankit.cli",
                                "gankit.lab")) == {}


def test_import_gankit_loads_only_its_init_and_the_api_stays_callable():
    code = ("import sys, gankit\n"
            "assert [k for k in sys.modules if k.startswith('gankit')] == ['gankit'], sys.modules.keys()\n"
            "import gankit.training.loop\n"  # the subpackage loaded first must not shadow gankit.train
            "assert callable(gankit.train) and callable(gankit.load) and callable(gankit.train_seeds)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
