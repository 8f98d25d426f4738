"""The README's examples run: shell lines through the CLI, the Python block as written."""
import re
import shlex
from pathlib import Path

import numpy as np

import gankit
from gankit import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_shell_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.steps": 20, "train.progress": False})
    gankit.train(cfg, "runs/fm", log=lambda *_: None)
    # the --seeds examples resume and sample a seeds folder: a tiny one stands in for it
    assert cli.main(["train", "--preset", "pacgan-ring8", "--seeds", "0-4", "--steps", "3", "--device", "cpu",
                     "--data.size", "2000", "--model.g_hidden", "8,8", "--model.d_hidden", "8", "--no-progress",
                     "--out", "runs/ring8"]) == 0
    lines = [ln.split("  #")[0].strip() for b in blocks("bash") for ln in b.splitlines()]
    cmds = [shlex.split(ln)[1:] for ln in lines if ln.startswith("gankit ")]
    assert len(cmds) >= 7
    # `serve` runs until stopped and `theory` takes a minute: tests/serve and tests/theory run those commands
    covered_elsewhere = {"serve", "theory"}
    for args in cmds:
        if args[0] in covered_elsewhere:
            continue
        if args[0] == "train":
            args = args + ["--dry-run"]
        assert cli.main(args) == 0, args
    assert np.load("samples.npz")["images"].shape == (1000, 8, 8)
    assert np.load("ring8-seed3.npz")["points"].shape == (2500, 2)
    # the main-job line ends with the gankit command the test above dry-runs
    main_job = [ln for ln in lines if "pip install" in ln and "gankit train" in ln]
    assert main_job and cli.main(shlex.split(main_job[0].split("&& gankit ")[1]) + ["--dry-run"]) == 0


def test_readme_python_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (code,) = blocks("python")
    code = code.replace('"train.epochs": 5', '"train.epochs": 2, "train.progress": False')
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["x"].shape == (16, 1, 8, 8)
    assert scope["imgs"].dtype == np.uint8 and scope["imgs"].shape == (16, 8, 8)
    assert np.load("samples.npz")["images"].shape == (1000, 8, 8)
