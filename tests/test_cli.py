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
    cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.steps": 2, "train.progress": False,
                                               "model.cond": "concat", "model.num_classes": 10})
    gankit.train(cfg, "runs/cgan", log=lambda *_: None)  # a conditional run for the --label example
    for args in examples(cli.SAMPLE_EXAMPLES):
        assert cli.main(args) == 0, args
    imgs = np.load(in_tmp / "samples.npz")["images"]
    assert imgs.shape == (1000, 8, 8) and imgs.dtype == np.uint8
    assert len(list((in_tmp / "pngs").glob("*.png"))) == 64  # the samples only: the grid is beside the folder
    assert (in_tmp / "pngs_grid.png").is_file()
    np.testing.assert_array_equal(np.load(in_tmp / "typical.npz")["images"],
                                  gankit.load("runs/fm").images(64, seed=0, scale=0.7))
    np.testing.assert_array_equal(np.load(in_tmp / "sevens.npz")["images"],
                                  gankit.load("runs/cgan").images(64, seed=0, label=7))
    assert "wrote 64 samples of class 7 to sevens.npz" in capsys.readouterr().out


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
    (["--model.d_norm", "batch", "--batch-size", "1"], r"train\.batch_size 1 \(per process 1, model\.pack 1\) gives "
                                                       r"D's batch norm one sample per batch; it needs at least 2"),
    (["--model.g_norm", "batch", "--batch-size", "1"], r"gives G's batch norm one sample per batch"),
])
def test_values_that_failed_after_the_run_folder_now_fail_before_it(args, msg, refused, tmp_path):
    """--seed 2**70 and --train.log_every 2e9 used to end in a traceback after the run folder was written (a rerun
    then said 'already holds files'); --seeds 0-1e11 filled the memory and --nproc 100000 started that many
    processes; a batch norm over one sample per batch (pacgan-stacked-mnist at --batch-size 2) stopped at the first
    step with torch's ValueError, after the run folder was written."""
    refused(["train", "--dataset", "digits", "--steps", "2", "--out", tmp_path / "run", *args], tmp_path, msg)


# -- issue #17, part 3: command-line rough edges ------------------------------------------------------------
@pytest.mark.parametrize("args,msg", [
    (["train", "--epoch", "3", "--dry-run"], r"unrecognized argument '--epoch'; did you mean '--epochs'\?$"),
    (["train", "--data_dir", "d", "--dry-run"], r"unrecognized argument '--data_dir'; did you mean .*'--data-dir'"),
    (["sample", "run", "--out", "o.npz", "--ovewrite"], r"'--ovewrite'; did you mean '--overwrite'\?$"),
    (["report", "run", "--max_frames", "3"], r"'--max_frames'; did you mean '--max-frames'\?$"),
    (["train", "--preset", "dcgan-mnsit", "--dry-run"], r"unknown preset 'dcgan-mnsit'; did you mean 'dcgan-mnist'"),
    (["train", "--dataset", "fashion_mnist", "--dry-run"],
     r"unknown dataset 'fashion_mnist'; did you mean 'fashion-mnist'\?$"),
])
def test_misspelled_flags_presets_and_datasets_get_a_suggestion(args, msg, refused, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(args, tmp_path, msg)


@pytest.mark.parametrize("args,msg", [
    (["--dataset", "nope"], r"unknown dataset 'nope'; choose one of: auto, mnist"),
    (["--dataset", "folder"], r"dataset 'folder' needs a folder: pass --data-dir DIR"),
    (["--dataset", "stacked-mnist", "--data.base", "idx"], r"dataset 'idx' needs a folder"),
    (["--loss.name", "hing"], r"unknown loss 'hing'"),
    (["--model.arch", "vit"], r"unknown model\.arch 'vit'"),
    (["--model.g_channels", "8"], r"model\.g_channels 8 has no effect on the mlp family"),
    (["--device", "mps"], r"--device 'mps' is not a device gankit runs on"),
])
def test_dry_run_refuses_what_the_run_refuses(args, msg, refused, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dry = refused(["train", *args, "--dry-run"], tmp_path, msg)
    assert refused(["train", *args, "--steps", "1", "--out", tmp_path / "run"], tmp_path, msg) == dry


def test_device_errors_name_the_option_typed(in_tmp, refused, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    no_cuda = r"'cuda': CUDA is not available here \(no GPU, or a CPU-only torch\); use "
    train = ["train", "--dataset", "digits", "--steps", "1", "--out", "runs/new"]
    refused(train + ["--device", "cuda"], in_tmp, rf"error: --device {no_cuda}--device cpu$")
    refused(train + ["--train.device", "cuda"], in_tmp, rf"error: --train\.device {no_cuda}--train\.device cpu$")
    refused(train + ["--device", "cpu", "--train.device=cuda"], in_tmp, rf"error: --train\.device {no_cuda}")
    refused(["train", "--resume", "runs/fm", "--device", "cuda"], in_tmp, rf"error: --device {no_cuda}--device cpu$")
    refused(["sample", "runs/fm", "--device", "cuda", "--out", "s.npz"], in_tmp, rf"error: --device {no_cuda}")
    refused(["eval", "runs/fm", "--device", "cuda"], in_tmp, rf"error: --device {no_cuda}--device cpu$")
    assert cli.main(["train", "--device", "cuda", "--dry-run"]) == 0  # a config for another machine


def test_a_taken_out_is_refused_before_any_download(refused, tmp_path, monkeypatch):
    """MNIST (the default data) used to be downloaded, or its mirrors tried for minutes, before the error."""
    from gankit.data import sources

    fetched = []

    def fetch(url, *_args):
        fetched.append(url)
        raise OSError("no network in this test")
    monkeypatch.setattr(sources, "_fetch", fetch)
    monkeypatch.setenv("GANKIT_MIRRORS_MNIST", "http://127.0.0.1:9/")
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused(["train", "--steps", "1", "--out", out], tmp_path, rf"--out {out} already holds files")
    refused(["train", "--steps", "1", "--out", out, "--overwrite"], tmp_path, r"holds files gankit did not write")
    with pytest.raises(gankit.GankitError, match="already holds files"):
        gankit.train(gankit.preset("seed"), out, log=lambda *_: None)
    assert fetched == []


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds") / "ring8"
    assert cli.main(["train", "--preset", "gan-ring8", "--seeds", "0-1", "--steps", "2", "--data.size", "400",
                     "--no-progress", "--out", str(root)]) == 0
    return root


def test_sample_report_and_serve_on_a_seeds_folder(seeds_run, refused, tmp_path, capsys):
    refused(["sample", seeds_run, "--out", tmp_path / "s.npz"], tmp_path,
            rf"{seeds_run} is a --seeds folder of 2 runs \(seed0, seed1\); name one of them, e.g. {seeds_run}/seed0$")
    refused(["report", seeds_run, "--out", tmp_path / "r.html"], seeds_run,
            rf"--seeds folder of 2 runs and --out names one file: .* gankit report {seeds_run}/seed0 --out ")
    assert cli.main(["report", str(seeds_run)]) == 0
    assert "wrote 2 reports, one per member" in capsys.readouterr().out
    for member in ("seed0", "seed1"):
        assert "<html" in (seeds_run / member / "report.html").read_text()[:200].lower()
    from gankit.serve.runs import discover

    assert list(discover(seeds_run)) == ["seed0", "seed1"]  # gankit serve lists the members as runs
    assert cli.main(["sample", str(seeds_run / "seed1"), "--n", "5", "--out", str(tmp_path / "s.npz")]) == 0


def test_a_folder_of_samples_is_an_image_folder_dataset(in_tmp, refused):
    from gankit.config import DataConfig
    from gankit.data import load_dataset

    assert cli.main(["sample", "runs/fm", "--n", "10", "--out", "pngs"]) == 0
    assert sorted(p.name for p in (in_tmp / "pngs").iterdir()) == [f"{i}.png" for i in range(10)]
    assert (in_tmp / "pngs_grid.png").is_file()
    ds = load_dataset(DataConfig(name="folder", dir=str(in_tmp / "pngs")))
    assert ds.images.shape == (10, 1, 8, 8)
    (in_tmp / "other_grid.png").write_bytes(b"not ours")  # the grid beside is not overwritten unasked
    refused(["sample", "runs/fm", "--n", "4", "--out", "other"], in_tmp,
            r"other_grid\.png already exists; .*--overwrite")


@pytest.mark.parametrize("preset,net", [("seed", "MLP"), ("dcgan-mnist", "DCGAN")])
def test_falling_back_to_digits_says_the_model_changed_shape(preset, net, tmp_path, capsys):
    assert cli.main(["train", "--preset", preset, "--steps", "1", "--no-progress", "--out", str(tmp_path / "r")]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("MNIST is not on disk")]
    assert len(lines) == 1
    assert (f"training on the bundled 8x8 'digits' instead, so the {preset} preset's G and D are built for 8x8x1 "
            f"images instead of MNIST's 28x28x1 (64 pixels, not 784)") in lines[0]
