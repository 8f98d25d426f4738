"""The README is a contract: its code blocks run in order, in one fresh folder, as a new user would run them.

Shell lines go through the real CLI (``gankit.cli.main``, in-process), Python blocks through ``exec``, each in
the folder the commands before it left behind. What is not run is listed below with its reason; the only
changes to what the README says are the step budgets, listed with the time the line takes as written.
"""
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
from gankit import cli

README = Path(__file__).resolve().parents[1] / "README.md"

# Commands (or `&&` parts of a line) that are not run, by prefix.
SKIPPED = {
    "python3 -m venv": "creates the venv the tests already run in (the line's `gankit train` part runs)",
    ". .venv/bin/activate": "the venv the tests run in",
    "pip install": "gankit is installed in the venv the tests run in",
    "bash .ci/run": "the test runner itself",
    "torchrun": "launches processes per node: tests/train/test_distributed.py runs gankit under torchrun",
    "gankit serve": "serves until stopped: tests/serve runs the studio",
}

# Step caps appended to README lines whose budget as written takes minutes to hours on 2 CPU cores. Every other
# line runs exactly as written, so the files it writes are the files the next line reads.
BUDGETS = {
    # 400 epochs of 1,000 steps x 5 seeds (~16 h on 2 cores)
    "gankit train --preset pacgan-ring8 --seeds 0-4 --out runs/ring8": ["--steps", "20"],
    "gankit train --resume runs/ring8 --epochs 500": ["--steps", "40"],
    # a 10-minute budget as written: the later --time wins
    "gankit train --dataset fashion-mnist --epochs 30 --time 10m --out runs/fm30": ["--time", "2s"],
    # 5 epochs of Fashion-MNIST on 2 processes, ~30 s as written
    "gankit train --dataset fashion-mnist --epochs 5 --nproc 2 --out runs/ddp": ["--steps", "40"],
}
# The same for Python blocks: (text in the README, what the test runs instead).
PY_BUDGETS = [
    # two ensembles of 5 seeds x 400,000 steps
    ("gankit.preset(name)", 'gankit.preset(name).with_overrides({"train.steps": 20})'),
]


def readme_blocks(text: str) -> list[tuple[str, int, str]]:
    """The fenced code blocks in document order: (language, line of the block's first code line, code)."""
    return [(m.group(1), text.count("\n", 0, m.start(2)) + 1, m.group(2))
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)]


def shell_commands(code: str, first_line: int) -> list[tuple[int, str]]:
    """The commands of a bash block with their README line: continuation lines joined, comments dropped,
    `&&` chains split."""
    out, start, parts = [], None, []
    for i, line in enumerate(code.splitlines()):
        start = first_line + i if start is None else start
        parts.append(line.rstrip().removesuffix("\\").strip())
        if line.rstrip().endswith("\\"):
            continue
        cmd = re.split(r"(?:^|\s)#", " ".join(parts), maxsplit=1)[0].strip()
        out += [(start, c.strip()) for c in cmd.split("&&")] if cmd else []
        start, parts = None, []
    return out


def inline_names(text: str) -> set[str]:
    """Dotted ``gankit.X.Y`` names in the prose's inline code (outside the fenced blocks)."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return {n for span in re.findall(r"`([^`]+)`", prose) for n in re.findall(r"(?<![\w./-])gankit(?:\.\w+)+", span)}


def readme_steps(text: str) -> list[tuple[str, int, str]]:
    """What a new user runs, in order: ("bash", line, command) for each gankit command not skipped,
    ("python", line, code) for each Python block."""
    steps = []
    for lang, line, code in readme_blocks(text):
        assert lang in ("bash", "python"), f"README.md:{line}: a ```{lang} block; the test runs bash and python"
        if lang == "python":
            steps.append(("python", line, code))
            continue
        for cmd_line, cmd in shell_commands(code, line):
            if not any(cmd.startswith(prefix) for prefix in SKIPPED):
                assert cmd.startswith("gankit "), f"README.md:{cmd_line}: not a gankit command, not skipped: {cmd}"
                steps.append(("bash", cmd_line, cmd))
    return steps


def test_readme_names_of_the_python_api_exist():
    """A dotted name in the prose is what a user types: ``gankit.train`` is the function, so a name through it
    (``gankit.training.ensemble...``) would be an AttributeError."""
    names = inline_names(README.read_text())
    assert "gankit.RunConfig" in names
    for name in names:
        obj = gankit
        for part in name.split(".")[1:]:
            assert hasattr(obj, part), f"README names {name}, but {obj!r} has no attribute {part!r}"
            obj = getattr(obj, part)


def test_readme_shell_parsing():
    code = "gankit a  # note\n# comment\npython3 -m venv v && gankit b --x 1\ntorchrun --n=2 \\\n    -m gankit c\n"
    assert shell_commands(code, 10) == [(10, "gankit a"), (12, "python3 -m venv v"), (12, "gankit b --x 1"),
                                        (13, "torchrun --n=2 -m gankit c")]


def test_readme_runs_in_order(tmp_path, monkeypatch, capsys, fashion_dir):
    work = tmp_path / "new-user"
    work.mkdir()
    monkeypatch.chdir(work)
    # The system data folder holds Debian's Fashion-MNIST, as on a machine with dataset-fashion-mnist installed,
    # and nothing else: MNIST is not on disk and not downloadable (conftest), so `auto` trains on digits.
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    (datasets / "fashion-mnist").symlink_to(fashion_dir)
    monkeypatch.setenv("GANKIT_SYSTEM_DATA_DIRS", str(datasets))

    steps = readme_steps(README.read_text())
    # every budget still matches its line before anything runs: an unmatched one would leave a run of hours
    commands = {cmd for kind, _, cmd in steps if kind == "bash"}
    assert set(BUDGETS) <= commands, f"budgets for lines no longer in the README: {set(BUDGETS) - commands}"
    for old, _ in PY_BUDGETS:
        assert any(kind == "python" and old in code for kind, _, code in steps), f"no Python block has {old}"
    assert sum(kind == "bash" for kind, *_ in steps) >= 15 and sum(kind == "python" for kind, *_ in steps) == 2

    scopes = []
    for kind, line, code in steps:
        if kind == "python":
            for old, new in PY_BUDGETS:
                code = code.replace(old, new)
            scope: dict = {}
            # padded so that a traceback names the README's own line numbers
            exec(compile("\n" * (line - 1) + code, str(README), "exec"), scope)
            scopes.append(scope)
        else:
            capsys.readouterr()
            status = cli.main(shlex.split(code)[1:] + BUDGETS.get(code, []))
            err = capsys.readouterr().err
            assert status == 0, f"README.md:{line}: {code} exited {status}:\n{err[-3000:]}"

    # what the README says these commands leave behind
    assert Path("runs/seed/samples/final.png").is_file()
    fm = gankit.load("runs/fm")
    assert fm.step == 10 * 600  # resumed to 10 epochs of 60,000 images in batches of 100
    assert np.load("samples.npz")["images"].shape == (1000, 28, 28) and Path("samples_grid.png").is_file()
    assert len(list(Path("pngs").glob("*.png"))) == 64 and Path("pngs_grid.png").is_file()
    np.testing.assert_array_equal(np.load("typical.npz")["images"], fm.images(64, seed=0, scale=0.7))
    assert Path("walk.gif").read_bytes()[:6] == b"GIF89a"
    assert Path("runs/fm/eval.json").is_file() and Path("runs/fm/report.html").is_file()
    assert Path("runs/ev/metrics.jsonl").is_file()
    assert np.load("ring8-seed3.npz")["points"].shape == (2500, 2)
    assert all(Path(f"runs/ring8/seed{k}/report.html").is_file() for k in range(5))
    demo = scopes[0]
    assert demo["x"].shape == (16, 1, 8, 8) and demo["x"].dtype == torch.float32 and demo["x"].abs().max() <= 1
    assert demo["imgs"].dtype == np.uint8 and demo["imgs"].shape == (16, 8, 8)
    assert np.load("demo.npz")["images"].shape == (1000, 8, 8) and Path("demo_grid.png").is_file()
    for name in ("pacgan-ring8", "gan-ring8"):
        assert all(gankit.load(f"runs/{name}/seed{k}").step == 20 for k in range(5))
    assert gankit.load("runs/ddp").step == 40
    assert 0 < gankit.load("runs/fm30").step < 30 * 600  # stopped by its budget, checkpoint saved


SPELLING = {  # how each interface names the options: what its messages must say, and what they must not
    "api": {"overwrite": "overwrite=True", "resume": "resume=True", "out": "out='run'", "other": "--",
            "new": "gankit.train(out=NEW, resume='elsewhere.pt')"},
    "cli": {"overwrite": "--overwrite", "resume": "--resume run", "out": "--out run", "other": "=True",
            "new": "gankit train --resume elsewhere.pt --out NEW"},
}


@pytest.mark.parametrize("interface", ["api", "cli"])
def test_errors_name_the_options_of_the_interface_used(tmp_path, monkeypatch, capsys, interface):
    """The same refusal says `overwrite=True` to a Python user and `--overwrite` on the command line."""
    monkeypatch.chdir(tmp_path)
    cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.steps": 2, "train.progress": False})
    quiet = lambda *_: None  # noqa: E731
    gankit.train(cfg, "run", log=quiet)
    Path("s.npz").write_bytes(b"")
    Path("foreign").mkdir()
    Path("foreign/notes.txt").write_text("mine")
    Path("elsewhere.pt").write_bytes(Path("run/checkpoints/last.pt").read_bytes())

    def refusal(api_call, cli_args):
        if interface == "api":
            with pytest.raises(gankit.GankitError) as e:
                api_call()
            return str(e.value)
        capsys.readouterr()
        assert cli.main(cli_args) == 2
        return capsys.readouterr().err

    say = SPELLING[interface]
    msgs = [refusal(lambda: gankit.train(cfg, "run", log=quiet), ["train", "--dataset", "digits", "--out", "run"]),
            refusal(lambda: gankit.load("run").save(4, "s.npz"), ["sample", "run", "--n", "4", "--out", "s.npz"]),
            refusal(lambda: gankit.train(cfg, "foreign", overwrite=True, log=quiet),
                    ["train", "--dataset", "digits", "--out", "foreign", "--overwrite"]),
            refusal(lambda: gankit.train(out="elsewhere.pt", resume=True, log=quiet),
                    ["train", "--resume", "elsewhere.pt"])]
    taken, exists, foreign, bare = msgs
    assert f"{say['out']} already holds files" in taken and f"pass {say['overwrite']} to replace" in taken
    assert f"or {say['resume']} to continue" in taken
    assert f"s.npz already exists; choose another path or pass {say['overwrite']}" in exists
    assert foreign.count(say["overwrite"]) == 1 and "holds files gankit did not write (notes.txt)" in foreign
    assert f"give a new run folder: {say['new']}" in bare
    assert not [m for m in msgs if say["other"] in m]
