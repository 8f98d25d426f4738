"""Feed gankit every fault and bad input we know of, through the real CLI, and write docs/RELIABILITY.md.

    python scripts/reliability_table.py [--out docs/RELIABILITY.md] [--only SUBSTRING]

Each case runs `python -m gankit ...` in a work folder holding a finished run, crafted checkpoints and damaged
datasets; the table shows the exit status, the number of stderr lines, the last one (what the user sees), and
whether every file in the work folder is byte-identical afterwards with nothing new created. A case is *clean*
when it exits 2 with one line and keeps every file.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "GANKIT_SYSTEM_DATA_DIRS": "", "GANKIT_MIRRORS_MNIST": "", "GANKIT_MIRRORS_FASHION_MNIST": "",
       "GANKIT_MIRRORS_CIFAR10": "", "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "default",
       "GANKIT_MEMORY_LIMIT": "8G"}  # the same table on any machine: plan for an 8 GB one (gankit/memory.py)
HUGE = str(2**70)
ADDRESS_SPACE_CAP = 16 * 2**30


def _address_space_cap():  # a safety net: a case that slipped past gankit's own checks cannot exhaust the machine
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))


def gankit(args, cwd, timeout=300):
    try:
        r = subprocess.run([sys.executable, "-m", "gankit", *args], cwd=cwd, capture_output=True, text=True,
                           timeout=timeout, env=ENV, preexec_fn=_address_space_cap)
    except subprocess.TimeoutExpired:
        return "timeout", [f"(still running after {timeout} s)"]
    return r.returncode, [ln for ln in r.stderr.strip().splitlines() if ln.strip()]


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file and folder below ``folder`` (but the data cache) -> a hash of its bytes."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if rel == "cache" or rel.startswith("cache/"):
            continue
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def _idx(shape, data: bytes | None = None, type_code=8) -> bytes:
    head = bytes([0, 0, type_code, len(shape)]) + b"".join(int(s).to_bytes(4, "big") for s in shape)
    return head + (data if data is not None else bytes(int(np.prod(shape))))


def _idx_dir(work: Path, name: str, images: bytes, labels: bytes | None = None) -> None:
    d = work / name
    d.mkdir()
    (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
    if labels is not None:
        (d / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))


def _crafted(work: Path, state: dict, name: str, **changes) -> None:
    s = dict(state)
    for k, v in changes.items():
        if v is _DROP:
            s.pop(k)
        else:
            s[k] = v
    torch.save(s, work / f"{name}.pt")


_DROP = object()


def _run_copy(work: Path, name: str) -> Path:
    d = work / name
    shutil.copytree(work / "run", d)
    return d


def setup(work: Path):
    ENV["GANKIT_CACHE"] = str(work / "cache")
    code, err = gankit(["train", "--dataset", "digits", "--steps", "30", "--out", "run", "--no-progress"], work)
    assert code == 0, err
    code, err = gankit(["train", "--dataset", "ring8", "--data.size", "1000", "--steps", "5", "--out", "ring",
                        "--no-progress"], work)
    assert code == 0, err
    ck = (work / "run" / "checkpoints" / "last.pt").read_bytes()
    state = torch.load(io.BytesIO(ck), weights_only=True)
    # damaged and foreign files
    (work / "trunc.pt").write_bytes(ck[: len(ck) // 2])
    (work / "junk.pt").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (work / "empty.pt").write_bytes(b"")
    (work / "text.pt").write_text("this is a text file, not a checkpoint\n")
    (work / "raw_pickle.pt").write_bytes(pickle.dumps({"G": [1, 2, 3]}, protocol=4))
    with zipfile.ZipFile(work / "plain.zip.pt", "w") as z:
        z.writestr("hello.txt", "a zip archive that is no torch file")
    torch.save({"state_dict": {"w": torch.zeros(3)}}, work / "foreign.pt")
    torch.save([1, 2, 3], work / "list.pt")
    # gankit checkpoints with one field crafted
    s = dict(state, format_version=1)
    _crafted(work, s, "newer", format_version=99)
    _crafted(work, s, "version_str", format_version="1")
    other = json.loads(json.dumps(state["config"]))
    other["model"]["g_hidden"] = [64]
    _crafted(work, s, "other_model", config=other)
    _crafted(work, s, "shape_negative", img_shape=[-1, 8, 8])
    _crafted(work, s, "shape_zero", img_shape=[1, 0, 8])
    _crafted(work, s, "shape_huge", img_shape=[1, 100_000, 100_000])
    _crafted(work, s, "shape_string", img_shape="1x8x8")
    _crafted(work, s, "shape_float", img_shape=[1.5, 8, 8])
    _crafted(work, s, "shape_empty", img_shape=[])
    _crafted(work, s, "shape_4d", img_shape=[1, 1, 8, 8])
    _crafted(work, s, "shape_bool", img_shape=[True, 8, 8])
    _crafted(work, s, "step_string", step="thirty")
    _crafted(work, s, "step_negative", step=-5)
    _crafted(work, s, "step_float", step=2.5)
    _crafted(work, s, "config_string", config="seed")
    _crafted(work, s, "config_missing", config=_DROP)
    bad_key = json.loads(json.dumps(state["config"]))
    bad_key["train"]["nonsense"] = 1
    _crafted(work, s, "config_unknown_key", config=bad_key)
    bad_val = json.loads(json.dumps(state["config"]))
    bad_val["model"]["z_dim"] = 10**9
    _crafted(work, s, "config_huge_z", config=bad_val)
    bad_type = json.loads(json.dumps(state["config"]))
    bad_type["model"]["z_dim"] = "many"
    _crafted(work, s, "config_wrong_type", config=bad_type)
    _crafted(work, s, "G_string", G="weights")
    _crafted(work, s, "G_missing", G=_DROP)
    _crafted(work, s, "G_empty", G={})
    _crafted(work, s, "G_ema_junk", G_ema={"x": torch.zeros(1)})
    _crafted(work, s, "classes_string", num_classes="ten")
    _crafted(work, s, "format_other", format="something-else")
    # run folders with one file damaged (copies: the original run stays as it is)
    (_run_copy(work, "run_binlog") / "log.csv").write_bytes(bytes(range(256)) * 8)
    d = _run_copy(work, "run_dirlog")
    (d / "log.csv").unlink()
    (d / "log.csv").mkdir()
    (_run_copy(work, "run_textckpt") / "checkpoints" / "last.pt").write_text("hello\n")
    shutil.copy(work / "step_string.pt", _run_copy(work, "run_stepstr") / "checkpoints" / "last.pt")
    shutil.copy(work / "shape_huge.pt", _run_copy(work, "run_shapehuge") / "checkpoints" / "last.pt")
    (_run_copy(work, "run_noconfig") / "config.json").unlink()
    for name, text in [("cfg_list", "[1, 2]"), ("cfg_string", '"seed"'), ("cfg_number", "3"),
                       ("cfg_bad_json", "{not json"), ("cfg_model_string", '{"model": "mlp", "preset": "seed"}'),
                       ("cfg_loss_list", '{"loss": [1], "preset": 7}')]:
        (_run_copy(work, "run_" + name) / "config.json").write_text(text)
    for name, text in [("man_list", "[1, 2]"), ("man_string", '"x"'),
                       ("man_dataset_string", '{"dataset": "digits", "parameters": "many"}'),
                       ("man_parameters_list", '{"parameters": [1, 2], "versions": "1.0", "argv": 5}'),
                       ("man_binary", None)]:
        f = _run_copy(work, "run_" + name) / "manifest.json"
        if text is None:
            f.write_bytes(bytes(range(256)))
        else:
            f.write_text(text)
    (_run_copy(work, "run_report_binlog") / "log.csv").write_bytes(bytes(range(256)) * 8)
    (_run_copy(work, "run_metrics_junk") / "metrics.jsonl").write_bytes(b"\x00\xff{]\n[1]\n{\"step\": \"x\"}\n")
    (_run_copy(work, "run_bad_png") / "samples" / "epoch_0001.png").write_bytes(b"not a png")
    # IDX folders
    imgs = np.zeros((10, 28, 28), np.uint8)
    _idx_dir(work, "idx_ok", _idx(imgs.shape, imgs.tobytes()), _idx((10,), bytes(range(10))))
    (work / "idx_magic").mkdir()
    (work / "idx_magic" / "train-images-idx3-ubyte").write_bytes(b"\x12\x34" + _idx(imgs.shape, imgs.tobytes())[2:])
    _idx_dir(work, "idx_trunc", _idx(imgs.shape, imgs.tobytes()[:3000]))
    _idx_dir(work, "idx_mismatch", _idx(imgs.shape, imgs.tobytes()), _idx((9,), bytes(9)))
    _idx_dir(work, "idx_absurd", _idx((2**31, 2**31, 2**31), b""))
    _idx_dir(work, "idx_float", _idx((2, 2, 2), bytes(32), type_code=0x0D))
    _idx_dir(work, "idx_labels_2d", _idx(imgs.shape, imgs.tobytes()), _idx((5, 2), bytes(10)))
    _idx_dir(work, "idx_labels_negative", _idx(imgs.shape, imgs.tobytes()), _idx((10,), b"\xff" * 10, type_code=9))
    _idx_dir(work, "idx_labels_big", _idx(imgs.shape, imgs.tobytes()), _idx((10,), bytes([200] * 10)))
    _idx_dir(work, "idx_huge_image", _idx((1, 3000, 3000)))
    _idx_dir(work, "idx_zero", _idx((0, 28, 28), b""))
    _idx_dir(work, "idx_no_pixels", _idx((10, 0, 28), b""))
    (work / "idx_gz_junk").mkdir()
    (work / "idx_gz_junk" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b" + bytes(100))
    (work / "idx_empty").mkdir()
    # image folders
    (work / "empty_imgs").mkdir()
    mixed = work / "mixed_imgs"
    mixed.mkdir()
    Image.new("L", (8, 8)).save(mixed / "a.png")
    Image.new("L", (9, 9)).save(mixed / "b.png")
    few = work / "few_imgs"
    few.mkdir()
    for i in range(10):
        Image.new("L", (8, 8), i).save(few / f"{i}.png")
    corrupt = work / "corrupt_imgs"
    shutil.copytree(few, corrupt)
    (corrupt / "5.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    text_png = work / "text_imgs"
    shutil.copytree(few, text_png)
    (text_png / "notes.png").write_text("just text")
    big = work / "big_imgs"
    big.mkdir()
    Image.new("L", (9000, 9000)).save(big / "big.png")
    bomb = work / "bomb_imgs"
    bomb.mkdir()
    Image.new("1", (20000, 20000)).save(bomb / "bomb.png")
    (work / "exists.npz").write_bytes(b"keep me")
    (work / "a_file").write_text("a file, not a folder")


T = ["train", "--out", "new", "--no-progress"]  # a fresh run folder, which must not appear
TD = T + ["--dataset", "digits", "--steps", "2"]
S = ["sample", "run", "--out", "o.npz"]

SECTIONS = [
    ("Command line", [
        ("unknown command", ["trian"]),
        ("unrecognised option", ["train", "--epoch", "3"]),
        ("unrecognised option of sample", S + ["--nn", "3"]),
        ("option without its value", ["train", "--model.z_dim"]),
        ("non-integer --steps", ["train", "--steps", "x"]),
        ("non-integer --epochs", ["train", "--epochs", "1.5"]),
        ("non-integer --batch-size", ["train", "--batch-size", "ten"]),
        ("non-integer --seed", ["train", "--seed", "s"]),
        ("non-integer --nproc", ["train", "--nproc", "two"]),
        ("non-integer --eval-every", ["train", "--eval-every", "often"]),
        ("non-integer sample --n", ["sample", "run", "--n", "x", "--out", "o.npz"]),
        ("non-integer sample --seed", S + ["--seed", "1.5"]),
        ("sample without --out", ["sample", "run"]),
        ("sample without a run", ["sample", "--out", "o.npz"]),
        ("non-integer sample --label", S + ["--label", "x"]),
        ("sample --label of an unconditional run", S + ["--label", "3"]),
        ("sample --scale negative", S + ["--scale", "-1"]),
        ("sample --scale not a number", S + ["--scale", "nan"]),
        ("sample --interpolate with one seed", S + ["--interpolate", "3"]),
        ("sample --interpolate of 1 step", ["sample", "run", "--out", "w.gif", "--interpolate", "3", "8", "--steps",
                                            "1"]),
        ("sample --interpolate to a .jpg", ["sample", "run", "--out", "w.jpg", "--interpolate", "3", "8"]),
        ("sample --steps without --interpolate", S + ["--steps", "5"]),
        ("sample --interpolate to a .png with --frame-ms", ["sample", "run", "--out", "w.png", "--interpolate", "3",
                                                            "8", "--frame-ms", "50"]),
        ("sample --interpolate to an .npz with --zoom", ["sample", "run", "--out", "w.npz", "--interpolate", "3", "8",
                                                         "--zoom", "2"]),
        ("non-integer report --max-frames", ["report", "run", "--max-frames", "x"]),
        ("non-integer serve --port", ["serve", "run", "--port", "http"]),
        ("non-integer eval --n", ["eval", "run", "--n", "lots"]),
        ("unknown evaluator action", ["evaluator", "fit"]),
        ("extra argument to presets", ["presets", "--all"]),
        ("unknown preset", ["train", "--preset", "segd"]),
        ("unknown config key", ["train", "--train.batchsize", "64"]),
        ("unknown config section", ["train", "--trian.steps", "5"]),
        ("a section set as a value", ["train", "--model", "mlp"]),
        ("ill-typed value", ["train", "--train.batch_size", "sixty"]),
        ("float for an int key", ["train", "--train.steps", "1.5"]),
        ("bool key given a word", ["train", "--train.compile", "maybe"]),
        ("NaN learning rate", ["train", "--optim.g_lr", "nan"]),
        ("infinite learning rate", ["train", "--optim.g_lr", "inf"]),
        ("learning rate beyond float", ["train", "--optim.g_lr", "1e400"]),
        ("--resume with --overwrite", ["train", "--resume", "run", "--overwrite"]),
        ("--resume of a missing folder", ["train", "--resume", "nowhere"]),
        ("--resume of a folder without a run", ["train", "--resume", "empty_imgs"]),
        ("--nproc 0", TD + ["--nproc", "0"]),
        ("--nproc beyond the machine", TD + ["--nproc", "100000"]),
        ("--nproc with --seeds", TD + ["--nproc", "2", "--seeds", "0-1"]),
        ("--seeds nonsense", TD + ["--seeds", "a-b"]),
        ("--seeds backwards", TD + ["--seeds", "5-1"]),
        ("--seeds repeated", TD + ["--seeds", "1,1"]),
        ("--seeds of absurd count", TD + ["--seeds", "0-100000000000"]),
        ("--seeds beyond a seed's range", TD + ["--seeds", f"0,{HUGE}"]),
        ("--seeds with --seed", TD + ["--seeds", "0-1", "--seed", "3"]),
        ("--eval-every with an unknown metric", TD + ["--eval-every", "1", "--eval-metrics", "fid9"]),
        ("--eval-every negative", TD + ["--eval-every", "-1"]),
        ("--eval-every with a metric of 1e14 samples", TD + ["--eval-every", "1", "--eval-metrics",
                                                             "fd99999999999k"]),
        ("non-integer theory --seed", ["theory", "--seed", "x", "--out", "new"]),
        ("theory --seed beyond 64 bits", ["theory", "--quick", "--seed", HUGE, "--out", "new"]),
        ("eval --seed beyond 64 bits", ["eval", "run", "--metrics", "fd1k", "--seed", HUGE]),
        ("evaluator --seed beyond 64 bits", ["evaluator", "train", "--dataset", "digits", "--seed", HUGE]),
    ]),
    ("Training options", [
        ("time budget with a bad unit", ["train", "--time", "10x"]),
        ("time budget 0", ["train", "--time", "0"]),
        ("negative time budget", ["train", "--time", "-5m"]),
        ("time_limit 0 as a config key", ["train", "--train.time_limit", "0"]),
        ("time budget over a year", ["train", "--time", "9999h"]),
        ("batch size 0", TD + ["--batch-size", "0"]),
        ("negative batch size", ["train", "--batch-size", "-1"]),
        ("batch larger than the dataset", TD + ["--batch-size", "100000"]),
        ("absurd batch size", TD + ["--batch-size", "2000000000"]),
        ("steps 0", ["train", "--steps", "0"]),
        ("epochs 0", ["train", "--epochs", "0"]),
        ("negative seed", ["train", "--seed", "-1"]),
        ("seed beyond 64 bits", TD + ["--seed", HUGE]),
        ("seed beyond 64 bits (dotted key)", TD + ["--train.seed", HUGE]),
        ("learning rate <= 0", ["train", "--optim.g_lr", "0"]),
        ("beta1 = 1", ["train", "--optim.beta1", "1"]),
        ("eps 0", ["train", "--optim.eps", "0"]),
        ("unknown lr schedule", ["train", "--optim.lr_schedule", "cosine"]),
        ("EMA beta 1", ["train", "--optim.ema_beta", "1"]),
        ("d_steps 0", ["train", "--train.d_steps", "0"]),
        ("d_steps larger than an epoch", TD + ["--train.d_steps", "100000"]),
        ("unknown update order", ["train", "--train.updates", "sideways"]),
        ("log_every 0", ["train", "--train.log_every", "0"]),
        ("log_every 2e9 (would allocate 32 GB)", TD + ["--train.log_every", "2000000000"]),
        ("sample_every negative", ["train", "--train.sample_every", "-1"]),
        ("checkpoint_every negative", ["train", "--train.checkpoint_every", "-1"]),
        ("grid_size 0", ["train", "--train.grid_size", "0"]),
        ("grid_size huge", ["train", "--train.grid_size", "100000"]),
        ("threads negative", ["train", "--train.threads", "-1"]),
        ("threads beyond the machine", TD + ["--train.threads", "100000"]),
        ("unknown precision", ["train", "--train.precision", "fp8"]),
        ("fp16 on a CPU", TD + ["--train.precision", "fp16", "--device", "cpu"]),
        ("batch norm over one sample", TD + ["--model.d_norm", "batch", "--batch-size", "1"]),
        ("tf32 on a CPU", TD + ["--train.tf32", "true", "--device", "cpu"]),
        ("CUDA graphs on a CPU", TD + ["--train.cuda_graphs", "true", "--device", "cpu"]),
        ("dist_timeout 0", ["train", "--train.dist_timeout", "0"]),
        ("nonfinite_retries 100", ["train", "--train.nonfinite_retries", "100"]),
        ("device meta", TD + ["--device", "meta"]),
        ("device mps", TD + ["--device", "mps"]),
        ("device foo", TD + ["--device", "foo"]),
        ("device cuda without CUDA", TD + ["--device", "cuda"]),
        ("device cuda:7", TD + ["--device", "cuda:7"]),
        ("device cuda:-1", TD + ["--device", "cuda:-1"]),
        ("empty device", TD + ["--device", ""]),
        ("device cpu:1", TD + ["--device", "cpu:1"]),
        ("device as a dotted key", TD + ["--train.device", "meta"]),
    ]),
    ("Model options", [
        ("unknown model", ["train", "--dataset", "digits", "--model.arch", "transformer"]),
        ("z_dim 0", ["train", "--model.z_dim", "0"]),
        ("z_dim 1e9 (512 GB of weights)", TD + ["--model.z_dim", "1000000000"]),
        ("z_dim 1e9 in scientific notation", TD + ["--model.z_dim", "1e9"]),
        ("g_hidden 2e9", TD + ["--model.g_hidden", "2000000000"]),
        ("d_hidden 2e9", TD + ["--model.d_hidden", "2000000000"]),
        ("g_hidden of ten 50k layers", TD + ["--model.g_hidden", ",".join(["50000"] * 10)]),
        ("g_hidden 0", ["train", "--model.g_hidden", "0"]),
        ("g_hidden not numbers", ["train", "--model.g_hidden", "wide,deep"]),
        ("leaky_slope 1", ["train", "--model.leaky_slope", "1"]),
        ("unknown init", ["train", "--model.init", "xavier"]),
        ("unknown norm", ["train", "--model.g_norm", "group"]),
        ("dropout 1", ["train", "--model.d_dropout", "1"]),
        ("g_layers 9", ["train", "--model.g_layers", "9"]),
        ("g_layers on an MLP", TD + ["--model.g_layers", "3"]),
        ("dropout on the resnet family", ["train", "--preset", "sngan-cifar10", "--model.d_dropout", "0.5"]),
        ("leaky slope on the resnet family", ["train", "--preset", "sngan-cifar10", "--model.leaky_slope", "0.1"]),
        ("MLP widths on the dcgan family", ["train", "--preset", "dcgan-mnist", "--model.g_hidden", "64"]),
        ("maxout pieces on the dcgan family", ["train", "--preset", "dcgan-mnist", "--model.maxout_pieces", "3"]),
        ("bn momentum on the dcgan family", ["train", "--preset", "dcgan-mnist", "--model.bn_momentum", "0.05"]),
        ("conv channels on the MLP", TD + ["--model.g_channels", "32"]),
        ("g_channels 0", ["train", "--model.g_channels", "0"]),
        ("DCGAN g_channels 1e6", TD + ["--model.arch", "dcgan", "--model.g_channels", "1000000"]),
        ("DCGAN d_channels 1e6", TD + ["--model.arch", "dcgan", "--model.d_channels", "1000000"]),
        ("ResNet on 8x8 digits with 1e5 channels", TD + ["--model.arch", "resnet", "--model.g_channels", "100000"]),
        ("maxout_pieces 0", ["train", "--model.maxout_pieces", "0"]),
        ("toy maxout_pieces 1e8", T + ["--dataset", "ring8", "--data.size", "1000", "--steps", "2", "--model.arch",
                                       "toy", "--model.maxout_pieces", "100000000"]),
        ("unknown conditioning", ["train", "--model.cond", "film"]),
        ("cond without num_classes", TD + ["--model.cond", "concat"]),
        ("num_classes without cond", TD + ["--model.num_classes", "10"]),
        ("negative num_classes", ["train", "--model.num_classes", "-1"]),
        ("num_classes 1e9", TD + ["--model.cond", "concat", "--model.num_classes", "1000000000"]),
        ("fewer classes than the labels", TD + ["--model.cond", "concat", "--model.num_classes", "5"]),
        ("conditional model on unlabelled images", T + ["--dataset", "folder", "--data-dir", "few_imgs",
                                                        "--batch-size", "5", "--steps", "2", "--model.cond",
                                                        "concat", "--model.num_classes", "10"]),
        ("pack 0", ["train", "--model.pack", "0"]),
        ("pack not dividing the batch", TD + ["--model.pack", "3"]),
        ("pack 1e6", TD + ["--model.pack", "1000000"]),
        ("pack with a conditional model", TD + ["--model.pack", "2", "--model.cond", "concat",
                                                "--model.num_classes", "10"]),
        ("g_norm_slots on an MLP", TD + ["--model.g_norm_slots", "2"]),
        ("bn_momentum 0", ["train", "--model.bn_momentum", "0"]),
        ("DCGAN on 2-D points", T + ["--dataset", "ring8", "--data.size", "1000", "--steps", "2", "--model.arch",
                                     "dcgan"]),
        ("ResNet on 2-D points", T + ["--dataset", "ring8", "--data.size", "1000", "--steps", "2", "--model.arch",
                                      "resnet"]),
        ("DCGAN with 8 layers on 8x8 digits", TD + ["--model.arch", "dcgan", "--model.g_layers", "8"]),
        ("DCGAN D with 8 layers on 8x8 digits", TD + ["--model.arch", "dcgan", "--model.d_layers", "8"]),
    ]),
    ("Loss options", [
        ("unknown loss", ["train", "--dataset", "digits", "--loss.name", "hingee"]),
        ("real_target 0", ["train", "--loss.real_target", "0"]),
        ("fake_target >= real_target", ["train", "--loss.fake_target", "1"]),
        ("negative gradient penalty", ["train", "--loss.gp_weight", "-1"]),
        ("negative instance noise", ["train", "--loss.instance_noise", "-1"]),
        ("unknown augmentation", TD + ["--loss.augment", "rotate"]),
        ("augmentation of 2-D points", T + ["--dataset", "ring8", "--data.size", "1000", "--steps", "2",
                                            "--loss.augment", "color"]),
    ]),
    ("Datasets", [
        ("unknown dataset", ["train", "--dataset", "mnist2"]),
        ("explicit dataset missing (no fallback)", T + ["--dataset", "mnist"]),
        ("Fashion-MNIST missing", T + ["--dataset", "fashion-mnist"]),
        ("CIFAR-10 missing", T + ["--dataset", "cifar10"]),
        ("stacked MNIST of a missing source", T + ["--dataset", "stacked-mnist"]),
        ("stacked MNIST of labels beyond 9", T + ["--dataset", "stacked-mnist", "--data.base", "idx", "--data-dir",
                                                 "idx_labels_big", "--steps", "2"]),
        ("stacked MNIST of 1e11 stacks", T + ["--dataset", "stacked-mnist", "--data.base", "idx", "--data-dir",
                                              "idx_ok", "--data.size", "100000000000"]),
        ("unknown stacked base", ["train", "--data.base", "cifar"]),
        ("unknown split", ["train", "--data.split", "val"]),
        ("negative data seed", ["train", "--data.seed", "-1"]),
        ("data size 0", ["train", "--data.size", "0"]),
        ("ring8 of 1e11 points (745 GB)", T + ["--dataset", "ring8", "--data.size", "100000000000"]),
        ("grid25 of 1e10 points", T + ["--dataset", "grid25", "--data.size", "10000000000"]),
        ("idx without --data-dir", T + ["--dataset", "idx"]),
        ("folder without --data-dir", T + ["--dataset", "folder"]),
        ("--data-dir missing", T + ["--dataset", "idx", "--data-dir", "nowhere"]),
        ("--data-dir is a file", T + ["--dataset", "folder", "--data-dir", "a_file"]),
        ("IDX folder without IDX files", T + ["--dataset", "idx", "--data-dir", "idx_empty"]),
        ("IDX with a bad magic number", T + ["--dataset", "idx", "--data-dir", "idx_magic"]),
        ("truncated gzipped IDX", T + ["--dataset", "idx", "--data-dir", "idx_trunc"]),
        ("gzip header then garbage", T + ["--dataset", "idx", "--data-dir", "idx_gz_junk"]),
        ("IDX labels/images count mismatch", T + ["--dataset", "idx", "--data-dir", "idx_mismatch"]),
        ("IDX header claiming 2^93 pixels", T + ["--dataset", "idx", "--data-dir", "idx_absurd"]),
        ("IDX of float pixels", T + ["--dataset", "idx", "--data-dir", "idx_float"]),
        ("IDX labels of two dimensions", T + ["--dataset", "idx", "--data-dir", "idx_labels_2d"]),
        ("IDX negative labels", T + ["--dataset", "idx", "--data-dir", "idx_labels_negative"]),
        ("IDX of zero images", T + ["--dataset", "idx", "--data-dir", "idx_zero"]),
        ("IDX images without pixels", T + ["--dataset", "idx", "--data-dir", "idx_no_pixels"]),
        ("IDX of one 3000x3000 image", T + ["--dataset", "idx", "--data-dir", "idx_huge_image", "--batch-size",
                                            "1", "--steps", "2"]),
        ("IDX of 10 images, batch 100", T + ["--dataset", "idx", "--data-dir", "idx_ok"]),
        ("image folder with no images", T + ["--dataset", "folder", "--data-dir", "empty_imgs"]),
        ("image folder of mixed sizes", T + ["--dataset", "folder", "--data-dir", "mixed_imgs"]),
        ("image folder with a corrupt PNG", T + ["--dataset", "folder", "--data-dir", "corrupt_imgs"]),
        ("image folder with a text file named .png", T + ["--dataset", "folder", "--data-dir", "text_imgs"]),
        ("image folder of a 9000x9000 PNG", T + ["--dataset", "folder", "--data-dir", "big_imgs", "--batch-size",
                                                 "1", "--steps", "2"]),
        ("image folder of a 20000x20000 PNG (decompression bomb)", T + ["--dataset", "folder", "--data-dir",
                                                                        "bomb_imgs", "--batch-size", "1"]),
        ("resolution 2", ["train", "--data.resolution", "2"]),
        ("resolution 1024 (an MLP of 400 M weights)", T + ["--dataset", "folder", "--data-dir", "few_imgs",
                                                           "--data.resolution", "1024", "--batch-size", "5",
                                                           "--steps", "2"]),
        ("resolution 5000", ["train", "--data.resolution", "5000"]),
        ("channels 2", ["train", "--data.channels", "2"]),
        ("image folder of 10 images, batch 100", T + ["--dataset", "folder", "--data-dir", "few_imgs"]),
    ]),
    ("Run folders", [
        ("train into an existing run folder", ["train", "--dataset", "digits", "--steps", "5", "--out", "run"]),
        ("--out is a file", TD[:1] + ["--dataset", "digits", "--steps", "2", "--out", "a_file"]),
        ("--out below a file", ["train", "--dataset", "digits", "--steps", "2", "--out", "a_file/run"]),
        ("resume with a changed model", ["train", "--resume", "run", "--model.g_hidden", "64"]),
        ("resume with a changed dataset", ["train", "--resume", "run", "--dataset", "ring8"]),
        ("resume with log_every 2e9", ["train", "--resume", "run", "--train.log_every", "2000000000"]),
        ("resume with device meta", ["train", "--resume", "run", "--device", "meta"]),
        ("resume from a truncated checkpoint", ["train", "--resume", "trunc.pt"]),
        ("resume with a binary log.csv", ["train", "--resume", "run_binlog", "--steps", "40"]),
        ("resume with a folder as log.csv", ["train", "--resume", "run_dirlog", "--steps", "40"]),
        ("resume with a text file as last.pt", ["train", "--resume", "run_textckpt"]),
        ("resume with a string step", ["train", "--resume", "run_stepstr", "--steps", "40"]),
        ("resume with a huge img_shape", ["train", "--resume", "run_shapehuge", "--steps", "40"]),
        ("resume of a --seeds folder without members", ["train", "--resume", "run", "--seeds", "0-1"]),
    ]),
    ("Checkpoints", [
        ("checkpoint of another model", ["sample", "other_model.pt", "--out", "o.npz"]),
        ("checkpoint of a newer format", ["sample", "newer.pt", "--out", "o.npz"]),
        ("format version a string", ["sample", "version_str.pt", "--out", "o.npz"]),
        ("another format name", ["sample", "format_other.pt", "--out", "o.npz"]),
        ("truncated checkpoint", ["sample", "trunc.pt", "--out", "o.npz"]),
        ("random bytes as checkpoint", ["sample", "junk.pt", "--out", "o.npz"]),
        ("empty file as checkpoint", ["sample", "empty.pt", "--out", "o.npz"]),
        ("text file as checkpoint", ["sample", "text.pt", "--out", "o.npz"]),
        ("text file as a run's last.pt", ["sample", "run_textckpt", "--out", "o.npz"]),
        ("raw pickle as checkpoint", ["sample", "raw_pickle.pt", "--out", "o.npz"]),
        ("zip archive that is no torch file", ["sample", "plain.zip.pt", "--out", "o.npz"]),
        ("torch file of another program", ["sample", "foreign.pt", "--out", "o.npz"]),
        ("torch file holding a list", ["sample", "list.pt", "--out", "o.npz"]),
        ("img_shape negative", ["sample", "shape_negative.pt", "--out", "o.npz"]),
        ("img_shape with a zero", ["sample", "shape_zero.pt", "--out", "o.npz"]),
        ("img_shape huge", ["sample", "shape_huge.pt", "--out", "o.npz"]),
        ("img_shape a string", ["sample", "shape_string.pt", "--out", "o.npz"]),
        ("img_shape of floats", ["sample", "shape_float.pt", "--out", "o.npz"]),
        ("img_shape empty", ["sample", "shape_empty.pt", "--out", "o.npz"]),
        ("img_shape of 4 dimensions", ["sample", "shape_4d.pt", "--out", "o.npz"]),
        ("img_shape of booleans", ["sample", "shape_bool.pt", "--out", "o.npz"]),
        ("step a string", ["sample", "step_string.pt", "--out", "o.npz"]),
        ("step negative", ["sample", "step_negative.pt", "--out", "o.npz"]),
        ("step a float", ["sample", "step_float.pt", "--out", "o.npz"]),
        ("config a string", ["sample", "config_string.pt", "--out", "o.npz"]),
        ("config missing", ["sample", "config_missing.pt", "--out", "o.npz"]),
        ("config with an unknown key", ["sample", "config_unknown_key.pt", "--out", "o.npz"]),
        ("config with z_dim 1e9", ["sample", "config_huge_z.pt", "--out", "o.npz"]),
        ("config value of the wrong type", ["sample", "config_wrong_type.pt", "--out", "o.npz"]),
        ("G weights a string", ["sample", "G_string.pt", "--out", "o.npz"]),
        ("G weights missing", ["sample", "G_missing.pt", "--out", "o.npz"]),
        ("G weights empty", ["sample", "G_empty.pt", "--out", "o.npz"]),
        ("G_ema weights of another model", ["sample", "G_ema_junk.pt", "--out", "o.npz"]),
        ("num_classes a string", ["sample", "classes_string.pt", "--out", "o.npz"]),
    ]),
    ("Sampling", [
        ("sample count 0", ["sample", "run", "--n", "0", "--out", "o.npz"]),
        ("negative sample count", ["sample", "run", "--n", "-5", "--out", "o.npz"]),
        ("absurd sample count", ["sample", "run", "--n", "1000000000", "--out", "o.npz"]),
        ("sample output exists", ["sample", "run", "--n", "4", "--out", "exists.npz"]),
        ("sample output of an unknown kind", ["sample", "run", "--n", "4", "--out", "o.txt"]),
        ("sample output below a file", ["sample", "run", "--n", "4", "--out", "a_file/o.npz"]),
        ("points written as PNGs", ["sample", "ring", "--n", "4", "--out", "pngs"]),
        ("sample of a missing run", ["sample", "nowhere", "--out", "o.npz"]),
        ("sample of a folder without a run", ["sample", "empty_imgs", "--out", "o.npz"]),
        ("sample of an .npz", ["sample", "exists.npz", "--out", "o.npz"]),
        ("sample --device meta", S + ["--device", "meta"]),
        ("sample --device mps", S + ["--device", "mps"]),
        ("sample --device foo", S + ["--device", "foo"]),
        ("sample --device cuda without CUDA", S + ["--device", "cuda"]),
        ("sample --device cuda:3", S + ["--device", "cuda:3"]),
        ("sample --device empty", S + ["--device", ""]),
    ]),
    ("Reports and other commands", [
        ("report of a missing folder", ["report", "nowhere"]),
        ("report of a folder without a run", ["report", "empty_imgs"]),
        ("report of a run without config.json", ["report", "run_noconfig"]),
        ("report --max-frames 0", ["report", "run", "--max-frames", "0", "--out", "r.html"]),
        ("report config.json not JSON", ["report", "run_cfg_bad_json", "--out", "r.html"]),
        ("report config.json a list", ["report", "run_cfg_list", "--out", "r.html"]),
        ("report config.json a string", ["report", "run_cfg_string", "--out", "r.html"]),
        ("report config.json a number", ["report", "run_cfg_number", "--out", "r.html"]),
        ("report config.json model a string", ["report", "run_cfg_model_string", "--out", "r.html"]),
        ("report config.json loss a list", ["report", "run_cfg_loss_list", "--out", "r.html"]),
        ("report manifest.json a list", ["report", "run_man_list", "--out", "r.html"]),
        ("report manifest.json a string", ["report", "run_man_string", "--out", "r.html"]),
        ("report manifest.json dataset a string", ["report", "run_man_dataset_string", "--out", "r.html"]),
        ("report manifest.json parameters a list", ["report", "run_man_parameters_list", "--out", "r.html"]),
        ("report manifest.json binary", ["report", "run_man_binary", "--out", "r.html"]),
        ("report of a binary log.csv", ["report", "run_report_binlog", "--out", "r.html"]),
        ("report of a folder as log.csv", ["report", "run_dirlog", "--out", "r.html"]),
        ("report output below a file", ["report", "run", "--out", "a_file/r.html"]),
        ("report output is a folder", ["report", "run", "--out", "empty_imgs"]),
        ("eval of a missing run", ["eval", "nowhere"]),
        ("eval with an unknown metric", ["eval", "run", "--metrics", "fid9"]),
        ("eval of 1e14 samples", ["eval", "run", "--metrics", "fd99999999999k"]),
        ("eval --n 1e11", ["eval", "run", "--metrics", "fd", "--n", "100000000000"]),
        ("eval --n 0", ["eval", "run", "--metrics", "fd", "--n", "0"]),
        ("eval --n that no metric reads", ["eval", "run", "--metrics", "fd300", "--n", "200"]),
        ("evaluator list --epochs", ["evaluator", "list", "--epochs", "3"]),
        ("--eval-metrics without --eval-every", TD + ["--eval-metrics", "fd300"]),
        ("theory --pack with section 5 left out", ["theory", "--pack", "3", "--sections", "1", "--out", "new"]),
        ("eval --batch-size 0", ["eval", "run", "--metrics", "fd1k", "--batch-size", "0"]),
        ("eval k of 0", ["eval", "run", "--metrics", "pr1k_k0"]),
        ("eval k beyond the samples", ["eval", "run", "--metrics", "pr1k_k99999999"]),
        ("eval with an unknown evaluator", ["eval", "run", "--metrics", "fd1k", "--evaluator-dataset", "bogus"]),
        ("evaluator of an unknown dataset", ["evaluator", "show", "--dataset", "bogus"]),
        ("evaluator show without a dataset", ["evaluator", "show"]),
        ("evaluator train --epochs 0", ["evaluator", "train", "--dataset", "digits", "--epochs", "0"]),
        ("eval --device meta", ["eval", "run", "--metrics", "fd1k", "--device", "meta"]),
        ("eval --device cuda without CUDA", ["eval", "run", "--metrics", "fd1k", "--device", "cuda"]),
        ("eval of a text checkpoint", ["eval", "text.pt"]),
        ("serve of a missing run", ["serve", "nowhere"]),
        ("serve --port 70000", ["serve", "run", "--port", "70000"]),
        ("serve --threads 0", ["serve", "run", "--threads", "0"]),
        ("theory with an unknown section", ["theory", "--sections", "9", "--out", "new"]),
        ("theory --pack 9", ["theory", "--pack", "9", "--out", "new"]),
        ("theory into a file", ["theory", "--out", "a_file"]),
    ]),
]


def sigint_case(work: Path):
    p = subprocess.Popen([sys.executable, "-m", "gankit", "train", "--dataset", "digits", "--steps", "1000000",
                          "--out", "sig", "--no-progress"], cwd=work, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=ENV)
    while not (work / "sig" / "checkpoints" / "last.pt").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    step = torch.load(work / "sig" / "checkpoints" / "last.pt", weights_only=True)["step"]
    return p.returncode, err.strip().splitlines(), f"checkpoint at step {step}"


def kill_campaign(work: Path, kills: int, seed: int = 0):
    """``kills`` times: SIGKILL a training run at a random moment (sometimes mid-write: a checkpoint every epoch of
    17 steps), check that the last checkpoint loads, resume. Then finish and compare with an uninterrupted run."""
    import random

    rng = random.Random(seed)
    total = 17 * 2000  # more than 50 kills leave undone: each attempt trains well under a second
    base = ["train", "--dataset", "digits", "--steps", str(total), "--no-progress", "--train.sample_every", "0",
            "--train.checkpoint_every", "1"]
    out, loaded, mid_write, last_step, done = work / "killed", 0, 0, 0, 0
    for attempt in range(kills):
        args = base + ["--out", "killed"] if attempt == 0 else ["train", "--resume", "killed", "--steps", str(total),
                                                                  "--no-progress"]
        p = subprocess.Popen([sys.executable, "-m", "gankit", *args], cwd=work, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=ENV)
        t0, log = time.monotonic(), out / "log.csv"
        size0 = log.stat().st_size if log.exists() else 0
        # wait until this process trains (its log grows) and the run has a checkpoint (a kill before the first one
        # leaves nothing to resume, by design), so the kill lands in training, not in start-up
        ckpt = out / "checkpoints" / "last.pt"
        while ((not log.exists() or log.stat().st_size <= size0 or not ckpt.exists()) and p.poll() is None
               and time.monotonic() - t0 < 120):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.5))
        if p.poll() is not None:  # it finished (or failed) before the kill: the campaign ends here
            break
        p.kill()
        p.wait()
        done += 1
        mid_write += bool(list(out.rglob(".*.tmp")))
        state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)  # never torn
        loaded += state["step"] >= last_step
        last_step = state["step"]
    code, err = gankit(["train", "--resume", "killed", "--steps", str(total), "--no-progress"], work)
    ref_code, _ = gankit(base + ["--out", "ref"], work)
    a = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(work / "ref" / "checkpoints" / "last.pt", weights_only=True)
    same = (code == ref_code == 0 and all(torch.equal(a[k][n], b[k][n]) for k in ("G", "D") for n in a[k])
            and (out / "log.csv").read_text() == (work / "ref" / "log.csv").read_text()
            and sorted(p.name for p in (out / "checkpoints").iterdir())
            == sorted(p.name for p in (work / "ref" / "checkpoints").iterdir()))
    note = (f"{loaded} of {done} kills left a loadable last.pt; {mid_write} interrupted a write (a temporary "
            f"file left); after the last resume: {'bit-identical' if same else 'DIFFERENT'} to an uninterrupted "
            f"run (weights, log, every epoch checkpoint present)")
    return code, err, note, done


def full_disk_case(work: Path):
    mnt = work / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mnt)], capture_output=True).returncode:
        return None
    try:
        code, err = gankit(["train", "--dataset", "digits", "--steps", "3000", "--out", str(mnt / "r"), "--no-progress",
                            "--train.checkpoint_every", "1"], work)
        step = torch.load(mnt / "r" / "checkpoints" / "last.pt", weights_only=True)["step"]
        return code, err, f"last.pt intact (step {step})"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _kept(before: dict[str, str], after: dict[str, str]) -> str:
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in before if after.get(k) != before[k])
    if not new and not changed:
        return "yes"
    what = [f"new {new[0]}" + (f" (+{len(new) - 1})" if len(new) > 1 else "")] if new else []
    what += [f"changed {changed[0]}" + (f" (+{len(changed) - 1})" if len(changed) > 1 else "")] if changed else []
    return "NO: " + ", ".join(what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "RELIABILITY.md"))
    ap.add_argument("--kills", type=int, default=50, help="kill -9s of the kill campaign (default 50)")
    ap.add_argument("--only", help="run only the cases whose name contains this text (and write nothing)")
    args = ap.parse_args()
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        setup(work)
        for title, cases in SECTIONS:
            rows = []
            for name, cmd in cases:
                if args.only and args.only not in name:
                    continue
                before = tree_digest(work)
                code, err = gankit(cmd, work)
                after = tree_digest(work)
                for p in set(after) - set(before):  # undo what a failed case created, for the next case
                    shutil.rmtree(work / p, ignore_errors=True) if (work / p).is_dir() else (work / p).unlink(True)
                kept = _kept(before, after)
                msg = (err[-1] if err else "").replace(f"{work}/", "")
                rows.append((name, "gankit " + " ".join(cmd), code, len(err), msg, kept))
                print(f"{'ok ' if _clean(rows[-1]) else 'BAD'} {rows[-1][:4]} {msg[:150]}", file=sys.stderr)
            sections.append((title, rows))
        if args.only:
            return
        faults = []
        code, err, note = sigint_case(work)
        faults.append(("Ctrl-C (SIGINT) mid-run", "gankit train ... then SIGINT", code, len(err), err[-1], note))
        code, err, note, done = kill_campaign(work, args.kills)
        faults.append((f"kill -9 at random moments, {done} times, then resume", "gankit train ... then SIGKILL",
                       code, len(err), err[-1] if err else "(finished)", note))
        fd = full_disk_case(work)
        if fd:
            faults.append(("full disk (1.2 MB tmpfs)", "gankit train --out disk/r ...", fd[0], len(fd[1]),
                           fd[1][-1].replace(f"{work}/", ""), fd[2]))
    Path(args.out).write_text(render(sections, faults))
    print(f"wrote {args.out}")


def _clean(row) -> bool:
    return row[2] == 2 and row[3] == 1 and row[5] == "yes"


def render(sections, faults) -> str:
    rows = [r for _, rs in sections for r in rs]
    clean = sum(map(_clean, rows))
    lines = ["# Reliability: faults and bad input", "",
             "Generated by `python scripts/reliability_table.py` — every row is a real run of the CLI in a work "
             "folder holding a finished run, crafted checkpoints and damaged datasets. 'Lines' counts the lines "
             "on stderr; 'files kept' checks that every file in the work folder is byte-identical afterwards and "
             "that nothing new was created. A case is clean when it exits 2 with one line and keeps every file. The "
             "cases run with `GANKIT_MEMORY_LIMIT=8G`, as on an 8 GB machine, so the table is the same everywhere "
             f"(and, as a safety net, with a {ADDRESS_SPACE_CAP // 2**30} GB address-space limit).", "",
             f"**{len(rows)} bad inputs tried: {clean} clean, {len(rows) - clean} not** "
             f"(exit 2: {sum(r[2] == 2 for r in rows)}, one line: {sum(r[3] == 1 for r in rows)}, "
             f"files kept: {sum(r[5] == 'yes' for r in rows)}); plus {len(faults)} faults below.", ""]
    for title, rs in sections:
        lines += [f"## {title} ({sum(map(_clean, rs))} of {len(rs)} clean)", "",
                  "| case | command | exit | lines | what the user sees (last stderr line) | files kept |",
                  "|---|---|---|---|---|---|"]
        for name, cmd, code, n, msg, kept in rs:
            msg = msg.replace("|", "\\|").replace(str(ROOT), ".")
            msg = msg if len(msg) < 300 else msg[:297] + "..."
            cmd = cmd if len(cmd) < 160 else cmd[:157] + "..."
            lines.append(f"| {name} | `{cmd}` | {code} | {n} | {msg} | {kept} |")
        lines.append("")
    lines += ["## Faults", "", "| fault | command | exit | lines | what the user sees (last stderr line) | state |",
              "|---|---|---|---|---|---|"]
    for name, cmd, code, n, msg, note in faults:
        lines.append(f"| {name} | `{cmd}` | {code} | {n} | {msg.replace('|', chr(92) + '|')} | {note} |")
    lines += ["", "Covered by tests rather than this table (they need many runs or exact timing):", "",
              "| fault | what happens | test |", "|---|---|---|",
              "| kill -9 at random moments, five times, incl. during checkpoint writes | the last checkpoint always "
              "loads; resuming ends bit-identical to an uninterrupted run | tests/train/test_resume.py |",
              "| N steps + resume + N steps vs 2N steps (before, at and after an epoch boundary) | bit-identical "
              "parameters, optimizer state and log | tests/train/test_resume.py |",
              "| the same 400-step Fashion-MNIST run quiet and next to a busy process; 200 + resume + 200 under "
              "load vs 400 | bit-identical weights and log with default settings (the thread count is fixed "
              "for the run, recorded, restored on resume) | tests/train/test_threads.py |",
              "| NaN loss mid-run; an update that breaks the weights at a log flush; two failures before a good "
              "flush | rolled back to the last finite state; the rates are the configured ones x 2^-k after k "
              "rollbacks | tests/train/test_nonfinite.py |",
              "| a step that fails every time | after `train.nonfinite_retries`, the finite state step S starts "
              "from is kept as `nonfinite_step_S.pt` and the run stops in one line; no NaN state is ever saved "
              "(also on Ctrl-C); sampling a NaN checkpoint is refused | tests/train/test_nonfinite.py |",
              "| a second `gankit train` into a folder in use; a kill -9 leaving the lock file | refused in one "
              "line naming the holder; the stale lock blocks nothing | tests/train/test_rundir.py |",
              "| `--overwrite` with foreign files; `--resume` of a bare checkpoint, another preset or another "
              "model's checkpoint; a kill between `epoch_N.pt` and `last.pt` | refused in one line before "
              "anything is deleted; no epoch checkpoint lost | tests/train/test_rundir.py |",
              "| random bytes / mutated IDX files, random config overrides (hypothesis) | only one-line errors | "
              "tests/data/test_idx.py, tests/test_config_fuzz.py |",
              "| interrupted or corrupted downloads, all mirrors down | no partial file; each mirror's failure "
              "listed | tests/data/test_sources.py |", "",
              "## Determinism", "",
              "On CPU, the same seed and config on the same machine give bit-identical losses, weights and samples, "
              "whatever else the machine runs (tested at MNIST size next to a busy process): results depend on "
              "the thread count, so `train.threads 0` takes the process's count once, and the manifest and every "
              "checkpoint record it for `--resume`. Only `train.adaptive_threads true` (off by default) makes a run "
              "depend on the machine's load. On GPU, cuBLAS/cuDNN may pick kernels whose reductions differ run to run; "
              "`gankit train --deterministic` calls `torch.use_deterministic_algorithms(True)`, sets "
              "`CUBLAS_WORKSPACE_CONFIG=:4096:8` and turns off cuDNN autotuning, at some cost in speed. "
              "Results still differ across GPU models, drivers and torch versions.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
