"""The default dataset: MNIST when present or downloadable, else the bundled digits with one clear line;
an explicitly named dataset never falls back. And the CLI end of a data error."""
from __future__ import annotations

import socket

import numpy as np
import pytest

from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import list_datasets, load_dataset, load_digits
from gankit.data.idx import write_idx
from gankit.errors import GankitError

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")


def write_mnist_like(folder, n=6):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    write_idx(folder / MNIST_FILES[0], images)
    write_idx(folder / MNIST_FILES[1], rng.integers(0, 10, n, dtype=np.uint8))
    return images


def dead_mirror() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


class Log(list):
    def __call__(self, msg):
        self.append(msg)


def test_digits_match_scikit_learn():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    ref = sklearn_datasets.load_digits()
    ds = load_digits()
    assert ds.images.shape == (1797, 1, 8, 8) and ds.num_classes == 10
    np.testing.assert_array_equal(ds.images[:, 0].numpy(), np.rint(ref.images * 255 / 16).astype(np.uint8))
    np.testing.assert_array_equal(ds.labels.numpy(), ref.target)
    test = load_digits("test")
    np.testing.assert_array_equal(test.labels.numpy(), ref.target[-297:])


@pytest.mark.parametrize("how", ["no mirrors", "dead mirror", "downloads off"])
def test_auto_falls_back_to_digits_with_one_line(how, monkeypatch):
    if how == "dead mirror":
        monkeypatch.setenv("GANKIT_MIRRORS_MNIST", dead_mirror())
    log = Log()
    ds = load_dataset(DataConfig(name="auto", download=(how != "downloads off")), log=log)
    assert ds.name == "digits" and ds.images.shape == (1797, 1, 8, 8)
    assert len(log) == 1 and "\n" not in log[0]
    msg = log[0]
    assert msg.startswith("MNIST is not on disk and could not be downloaded (")
    assert "training on the bundled 8x8 'digits' instead" in msg
    assert "To use MNIST, put the four MNIST IDX files in ~/.cache/gankit/mnist or pass data.dir=DIR." in msg
    reason = {"no mirrors": "no download mirrors configured", "dead mirror": "Connection refused",
              "downloads off": "downloads are off (data.download=false)"}[how]
    assert reason in msg


def test_auto_uses_mnist_from_data_dir(tmp_path):
    images = write_mnist_like(tmp_path)
    log = Log()
    ds = load_dataset(DataConfig(name="auto", dir=str(tmp_path)), log=log)
    assert ds.name == "mnist" and ds.source == str(tmp_path) and log == []
    np.testing.assert_array_equal(ds.images[:, 0].numpy(), images)


def test_auto_uses_mnist_from_the_cache(isolated_data_env):
    images = write_mnist_like(isolated_data_env / "mnist", n=9)
    ds = load_dataset(DataConfig(), log=pytest.fail)
    assert ds.name == "mnist"
    np.testing.assert_array_equal(ds.images[:, 0].numpy(), images)


def test_auto_with_corrupt_mnist_is_an_error_not_a_fallback(tmp_path):
    write_mnist_like(tmp_path)
    (tmp_path / MNIST_FILES[0]).write_bytes(b"\x00\x00\x08\x03" + bytes(5))
    with pytest.raises(GankitError, match=r"train-images-idx3-ubyte\.gz: truncated header"):
        load_dataset(DataConfig(name="auto", dir=str(tmp_path)), log=pytest.fail)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("download", [True, False])
def test_explicit_dataset_never_falls_back(name, download, monkeypatch):
    monkeypatch.setenv("GANKIT_MIRRORS_MNIST", dead_mirror())
    log = Log()
    with pytest.raises(GankitError, match=rf"{name}") as e:
        load_dataset(DataConfig(name=name, download=download), log=log)
    assert "\n" not in str(e.value) and "digits" not in str(e.value)
    assert not any("digits" in m for m in log)
    assert "data.dir=DIR" in str(e.value)  # says what to do (as Python spells it)


def test_unknown_dataset_suggests_the_closest_or_lists_the_choices():
    with pytest.raises(GankitError, match=r"unknown dataset 'cifar-99'; did you mean 'cifar10'\?$"):
        load_dataset(DataConfig(name="cifar-99"))
    with pytest.raises(GankitError, match=r"unknown dataset 'svhn'; choose one of: auto, mnist"):
        load_dataset(DataConfig(name="svhn"))
    assert {"auto", "mnist", "fashion-mnist", "digits", "idx", "folder"} <= set(list_datasets())


# ---------------------------------------------------------------------------------------------
# the command line

def test_cli_explicit_mnist_missing(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--dataset", "mnist", "--steps", "1", "--out", str(out)])
    assert rc == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gankit: error: mnist not found in ")
    assert lines[0].endswith("; put the four MNIST IDX files in ~/.cache/gankit/mnist or pass --data-dir DIR")
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_cli_corrupt_data_names_the_file(tmp_path, capsys):
    data = tmp_path / "data"
    write_mnist_like(data)
    write_idx(data / MNIST_FILES[1], np.zeros(2, np.uint8))
    out = tmp_path / "run"
    rc = main(["train", "--dataset", "mnist", "--data-dir", str(data), "--steps", "1", "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"gankit: error: {data / MNIST_FILES[1]}: 2 labels for 6 images in {MNIST_FILES[0]}"]
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_cli_default_trains_on_digits_and_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--steps", "2", "--batch-size", "16", "--out", str(out), "--no-progress",
               "--model.g_hidden", "8", "--model.d_hidden", "8", "--model.z_dim", "4", "--train.grid_size", "4"])
    assert rc == 0
    captured = capsys.readouterr()
    said = [ln for ln in (captured.out + captured.err).splitlines() if "digits" in ln]
    assert len(said) == 1 and said[0].startswith("MNIST is not on disk and could not be downloaded")
    assert (out / "checkpoints" / "last.pt").is_file()
    assert '"name": "digits"' in (out / "manifest.json").read_text()
