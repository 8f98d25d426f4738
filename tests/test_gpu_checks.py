"""scripts/gpu_checks.sh, the one script a session on a CUDA machine runs (tests/test_gpu.py, issue #19's GPU row,
r3gan-cifar10's step speed, the 2-D protocol table): here, without a GPU, it must refuse in one line before it
runs or writes anything; its usage line names what it takes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_checks.sh"


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=120)


def test_the_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_without_an_out_folder_it_prints_its_usage():
    r = run()
    assert r.returncode != 0 and "usage: bash scripts/gpu_checks.sh OUT [STEP...]" in r.stderr


def test_an_unknown_step_or_a_bad_minutes_is_refused_before_anything_runs(tmp_path):
    """The steps are checked first (here before the missing GPU is), so a typo costs no device time."""
    for steps, msg in ((["tests", "curve=5"], "gpu_checks: unknown step 'curve=5'; usage:"),
                       (["curves=five"], "gpu_checks: curves=five: MINUTES must be a number")):
        r = run(str(tmp_path / "out"), *steps)
        assert r.returncode == 2 and r.stderr.startswith(msg) and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here: the script would run")
def test_without_a_gpu_it_refuses_in_one_line_and_writes_nothing(tmp_path):
    r = run(str(tmp_path / "out"), "tests", "curves=1")
    assert r.returncode == 2 and r.stderr.strip() == "gpu_checks: no CUDA device here" and r.stdout == ""
    assert not (tmp_path / "out").exists()
