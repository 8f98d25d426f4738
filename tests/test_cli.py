"""The command line: every --help example runs, bad input is one line and exit 2."""
import json
import shlex

import numpy as np
import pytest

import gankit
from gankit import cli


def examples(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("gankit "):
            out.append(shlex.split(line.split("#")[0])[1:])
    return out


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.steps": 20, "train.progress": False})
    gankit.train(cfg, "runs/fm", log=lambda *_: None)
    return tmp_path


def test_help_works_and_shows_examples_for_every_command(capsys):
    import argparse

    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"train", "sample", "presets", "eval", "theory", "serve", "report"} <= set(sub.choices)
    for args in [["--help"]] + [[name, "--help"] for name in sub.choices]:
        with pytest.raises(SystemExit) as e:
            cli.main(args)
        assert e.value.code == 0
        assert "examples:" in capsys.readouterr().out, args


def test_train_help_examples_parse(in_tmp, capsys):
    ex = examples(cli.TRAIN_EXAMPLES)
    assert len(ex) >= 4
    dumps = []
    for args in ex:
        assert cli.main(args + ["--dry-run"]) == 0, args
        dumps.append(json.loads(capsys.readouterr().out))
    # the dry run prints the resolved config, overrides applied
    assert any(d["optim"]["g_lr"] == 2e-4 and d["model"]["g_hidden"] == [256, 256] for d in dumps)
    assert any(d["data"]["name"] == "fashion-mnist" and d["train"]["epochs"] == 5 for d in dumps)


def test_sample_help_examples_run(in_tmp, capsys):
    for args in examples(cli.SAMPLE_EXAMPLES):
        assert cli.main(args) == 0, args
    imgs = np.load(in_tmp / "samples.npz")["images"]
    assert imgs.shape == (1000, 8, 8) and imgs.dtype == np.uint8
    assert len(list((in_tmp / "pngs").glob("*.png"))) == 64 + 1  # 64 samples and the grid


def test_main_help_examples_run(in_tmp, monkeypatch):
    for args in examples(cli.MAIN_EXAMPLES):
        if args[0] == "train":  # the full run is exercised elsewhere; here it must parse
            args = args + ["--dry-run"]
        if args[0] == "sample":
            args = [a if a != "grid_samples" else "grid_samples" for a in args]
        assert cli.main(args) == 0, args


@pytest.mark.parametrize("args,msg", [
    (["train", "--bogus"], "unrecognized argument '--bogus'"),
    (["train", "--train.batchsize", "3"], "unknown config key 'train.batchsize'; did you mean 'train.batch_size'"),
    (["train", "--batch-size", "-4", "--dry-run"], "train.batch_size must be positive"),
    (["train", "--optim.g_lr", "0", "--dry-run"], "optim.g_lr must be > 0"),
    (["train", "--preset", "nope"], "unknown preset 'nope'"),
    (["train", "--dataset", "nope", "--steps", "1"], "unknown dataset 'nope'; choose one of"),
    (["train", "--model.z_dim"], "needs a value"),
    (["sample", "missing_dir", "--out", "x.npz"], "missing_dir: no such file or folder"),
])
def test_bad_input_is_one_line_and_exit_2(args, msg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit: error: ") and "\n" not in err
    assert msg in err
    assert not (tmp_path / "runs").exists()  # nothing was created


def test_sample_count_and_existing_output_are_checked(in_tmp, capsys):
    assert cli.main(["sample", "runs/fm", "--n", "0", "--out", "a.npz"]) == 2
    assert "positive integer" in capsys.readouterr().err
    assert cli.main(["sample", "runs/fm", "--n", "4", "--out", "a.npz"]) == 0
    before = (in_tmp / "a.npz").read_bytes()
    assert cli.main(["sample", "runs/fm", "--n", "4", "--out", "a.npz", "--seed", "1"]) == 2
    assert (in_tmp / "a.npz").read_bytes() == before
    assert cli.main(["sample", "runs/fm", "--n", "4", "--out", "a.npz", "--seed", "1", "--overwrite"]) == 0


def test_presets_lists_seed(capsys):
    assert cli.main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(ln.split()[0] == "seed" and "tutorial" in ln for ln in lines)
    assert len(lines) == len(gankit.config.list_presets())


def test_abbreviated_options_are_not_guessed(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--epoch", "3", "--dry-run"]) == 2
    assert "unrecognized argument '--epoch'" in capsys.readouterr().err


@pytest.mark.parametrize("args,msg", [
    (["train", "--steps", "x"], r"argument --steps: invalid int value: 'x'; see 'gankit train --help'$"),
    (["train", "--epochs", "1.5"], r"argument --epochs: invalid int value: '1\.5'"),
    (["train", "--nproc", "two"], r"argument --nproc: invalid int value: 'two'"),
    (["sample", "run", "--n", "x", "--out", "o.npz"], r"argument --n: invalid int value: 'x'; see 'gankit sample"),
    (["sample", "run"], r"the following arguments are required: --out; see 'gankit sample --help'$"),
    (["report", "run", "--max-frames", "x"], r"argument --max-frames: invalid int value: 'x'; see 'gankit report"),
    (["serve", "run", "--port", "http"], r"argument --port: invalid int value: 'http'"),
    (["evaluator", "fit"], r"argument action: invalid choice: 'fit' \(choose from"),
    (["trian"], r"argument COMMAND: invalid choice: 'trian' \(choose from 'train'.*; see 'gankit --help'$"),
    (["theory", "--seed", "x"], r"argument --seed: invalid seed 'x': expected an integer"),
    (["eval", "run", "--seed", str(2**70)], rf"argument --seed: seed {2**70} is outside \[0, 4294967295\]"),
    (["evaluator", "train", "--dataset", "digits", "--seed", str(2**70)], r"argument --seed: seed \d+ is outside"),
    (["theory", "--quick", "--seed", str(2**70)], r"argument --seed: seed \d+ is outside"),
])
def test_usage_errors_are_one_line_without_the_usage_block(args, msg, refused, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(args, tmp_path, msg)


@pytest.mark.parametrize("args,msg", [
    (["--seed", str(2**70)], rf"train\.seed must be in \[0, 4294967295\] \(32 bits\), got {2**70}$"),
    (["--train.seed", str(2**64)], r"train\.seed must be in \[0, 4294967295\]"),
    (["--train.log_every", "2000000000"], r"train\.log_every must be in \[1, 1000000\], got 2000000000$"),
    (["--seeds", "0-100000000000"], r"--seeds '0-100000000000': at most 256 runs train together$"),
    (["--seeds", f"0,{2**70}"], r"train\.seed must be in \[0, 4294967295\]"),
    (["--nproc", "100000"], r"--nproc 100000 is more processes than this machine has CPU cores \(\d+\) or GPUs"),
    (["--eval-every", "1", "--eval-metrics", "fd99999999999k"], r"metric 'fd99999999999k': 99,999,999,999,000 "
                                                                r"samples is more than a metric draws"),
])
def test_values_that_failed_after_the_run_folder_now_fail_before_it(args, msg, refused, tmp_path):
    """--seed 2**70 and --train.log_every 2e9 used to end in a traceback after the run folder was written (a rerun
    then said 'already holds files'); --seeds 0-1e11 filled the memory and --nproc 100000 started that many
    processes."""
    refused(["train", "--dataset", "digits", "--steps", "2", "--out", tmp_path / "run", *args], tmp_path, msg)
