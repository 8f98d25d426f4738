"""ring8/grid25/mog1d parameters, CIFAR-10 pickle batches (tiny fakes in the real format) read from a folder, an
archive and a download from a local HTTP server, stacked MNIST."""
from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import re
import tarfile
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_sources import _Server  # the local HTTP server of the MNIST download tests (tests/data on sys.path)

from gankit.config import DataConfig
from gankit.data import cifar, load_dataset, to_unit_range
from gankit.data.cifar import parse_batch
from gankit.data.idx import write_idx
from gankit.data.sources import RemoteFile
from gankit.data.stacked import stack_digits
from gankit.data.toy import MIXTURES
from gankit.errors import GankitError


def test_ring8_exact_means_and_std():
    ring = MIXTURES["ring8"]
    assert ring.num_modes == 8 and ring.std == 0.01
    for k in range(8):
        np.testing.assert_allclose(ring.means[k], [math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)],
                                   atol=1e-15)
    d = np.linalg.norm(ring.means[:, None] - ring.means[None], axis=-1) + np.eye(8)
    assert d.min() > 0.76  # 8 distinct modes (linspace(0, 2π, 8) would put two at the same place)
    ds = load_dataset(DataConfig(name="ring8", size=40_000, seed=3))
    x, lab = ds.images.numpy().astype(np.float64), ds.labels.numpy()
    assert ds.shape == (2,) and ds.num_classes == 8 and ds.images.dtype == torch.float32
    resid = x - ring.means[lab]
    assert resid.std() == pytest.approx(0.01, rel=0.02)
    assert np.bincount(lab, minlength=8).min() > 40_000 / 8 * 0.9


def test_grid25_means_std_and_seeding():
    grid = MIXTURES["grid25"]
    assert sorted(map(tuple, grid.means.tolist())) == [(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)]
    a = load_dataset(DataConfig(name="grid25", size=20_000, seed=1))
    b = load_dataset(DataConfig(name="grid25", size=20_000, seed=1))
    c = load_dataset(DataConfig(name="grid25", size=20_000, seed=2))
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    resid = a.images.numpy() - grid.means[a.labels.numpy()]
    assert resid.std() == pytest.approx(0.05, rel=0.03)
    assert len(load_dataset(DataConfig(name="grid25"))) == 100_000  # the protocol's training set


def test_mog1d_and_float_passthrough():
    ds = load_dataset(DataConfig(name="mog1d", size=1000))
    assert ds.shape == (1,) and ds.num_classes == 5
    assert torch.equal(to_unit_range(ds.images), ds.images)


def _batch_bytes(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch as CIFAR-10's python pickles hold it (a Python 2 era pickle naming numpy.core)."""
    d = {b"batch_label": b"training batch 1 of 5", b"labels": labels, b"data": data,
         b"filenames": [b"x.png"] * len(labels)}
    return pickle.dumps(d, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def _fake_cifar(rng, n=4):
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return data, [int(v) for v in rng.integers(0, 10, size=n)]


def _fake_batches(seed: int) -> dict[str, tuple[np.ndarray, list[int]]]:
    """data_batch_1..5 of 4 images and a test_batch of 3, as (data (n, 3072) uint8, labels)."""
    rng = np.random.default_rng(seed)
    batches = {f"data_batch_{i}": _fake_cifar(rng) for i in range(1, 6)}
    batches["test_batch"] = _fake_cifar(rng, 3)
    return batches


def _archive_bytes(batches: dict[str, tuple[np.ndarray, list[int]]]) -> bytes:
    """cifar-10-python.tar.gz as published: a folder cifar-10-batches-py with the batches, batches.meta and a
    readme."""
    meta = pickle.dumps({b"num_cases_per_batch": 10000, b"num_vis": 3072,
                         b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                                          b"horse", b"ship", b"truck"]}, protocol=2)
    members = {name: _batch_bytes(d, lab) for name, (d, lab) in batches.items()}
    members.update({"batches.meta": meta, "readme.html": b"<html></html>"})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        folder = tarfile.TarInfo("cifar-10-batches-py")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        for name, raw in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def test_cifar_batch_layout():
    rng = np.random.default_rng(0)
    data, labels = _fake_cifar(rng)
    images, lab = parse_batch(_batch_bytes(data, labels), "b")
    assert images.shape == (4, 3, 32, 32) and lab.tolist() == labels
    # row layout: 1024 red, 1024 green, 1024 blue, each 32×32 row-major
    assert images[2, 1, 5, 7] == data[2, 1024 + 5 * 32 + 7]
    assert images[3, 2, 31, 0] == data[3, 2048 + 31 * 32]


def test_cifar_folder_and_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_MIRRORS_CIFAR10", "")
    batches = _fake_batches(1)
    folder = tmp_path / "dir" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, (d, lab) in batches.items():
        (folder / name).write_bytes(_batch_bytes(d, lab))
    train = load_dataset(DataConfig(name="cifar10", dir=str(tmp_path / "dir")))
    assert train.images.shape == (20, 3, 32, 32) and train.num_classes == 10
    assert train.images[4].flatten().tolist() == batches["data_batch_2"][0][0].tolist()
    test = load_dataset(DataConfig(name="cifar10", dir=str(tmp_path / "dir"), split="test"))
    assert len(test) == 3
    arch = tmp_path / "arch"
    arch.mkdir()
    (arch / "cifar-10-python.tar.gz").write_bytes(_archive_bytes(batches))
    from_tar = load_dataset(DataConfig(name="cifar10", dir=str(arch)))
    assert torch.equal(from_tar.images, train.images) and torch.equal(from_tar.labels, train.labels)
    with pytest.raises(GankitError, match="no download mirrors configured for cifar10"):
        load_dataset(DataConfig(name="cifar10", dir=str(tmp_path / "empty")))


def test_cifar_rejects_code_in_pickles():
    evil = pickle.dumps({b"data": print}, protocol=2)
    with pytest.raises(GankitError, match="not a CIFAR-10 python batch"):
        parse_batch(evil, "evil")
    with pytest.raises(GankitError, match="uint8 array"):
        parse_batch(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}), "short")


# ---------------------------------------------------------------------------------------------
# downloading CIFAR-10 from a mirror (a local HTTP server named in $GANKIT_MIRRORS_CIFAR10, as a user would)

@pytest.fixture
def cifar_mirror(tmp_path, monkeypatch):
    """A mirror at ``<url>cifar/`` serving a tiny archive whose MD5 the checksum check expects; returns
    (folder served, archive bytes, batches, server). The expected MD5 is the one thing swapped: the published one
    belongs to the real 163 MB archive; mirrors, download, verification and cache are the code users run."""
    batches = _fake_batches(7)
    archive = _archive_bytes(batches)
    folder = tmp_path / "www" / "cifar"
    folder.mkdir(parents=True)
    (folder / cifar.ARCHIVE).write_bytes(archive)
    md5 = hashlib.md5(archive).hexdigest()
    monkeypatch.setattr(cifar, "CIFAR10", replace(cifar.CIFAR10, files={"archive": RemoteFile(cifar.ARCHIVE, md5=md5)}))
    server = _Server(tmp_path / "www")
    monkeypatch.setenv("GANKIT_MIRRORS_CIFAR10", server.url + "cifar/")
    yield folder, archive, batches, server
    server.close()


def _expected(batches, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    names = cifar.BATCHES[split]
    images = np.concatenate([batches[n][0] for n in names]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([batches[n][1] for n in names]).astype(np.int64)
    return torch.from_numpy(images), torch.from_numpy(labels)


def test_cifar_download_into_the_cache_then_offline(cifar_mirror, isolated_data_env):
    _, archive, batches, server = cifar_mirror
    lines = []
    train = load_dataset(DataConfig(name="cifar10"), log=lines.append)
    cached = isolated_data_env / "cifar10" / cifar.ARCHIVE
    assert lines == [f"downloading {server.url}cifar/{cifar.ARCHIVE}"]
    assert server.requests == [f"/cifar/{cifar.ARCHIVE}"]
    assert os.listdir(cached.parent) == [cifar.ARCHIVE] and cached.read_bytes() == archive
    images, labels = _expected(batches, "train")
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8 and train.num_classes == 10
    assert torch.equal(train.images, images) and torch.equal(train.labels, labels)
    assert train.source == str(cached)
    server.close()  # offline from now on: the mirror refuses connections
    test = load_dataset(DataConfig(name="cifar10", split="test"), log=pytest.fail)
    images, labels = _expected(batches, "test")
    assert torch.equal(test.images, images) and torch.equal(test.labels, labels) and test.source == str(cached)
    again = load_dataset(DataConfig(name="cifar10", download=False), log=pytest.fail)
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)


def test_cifar_download_with_wrong_checksum_leaves_nothing_then_succeeds(cifar_mirror, isolated_data_env):
    folder, archive, batches, _ = cifar_mirror
    (folder / cifar.ARCHIVE).write_bytes(_archive_bytes(_fake_batches(8)))  # a valid archive, but not the one
    with pytest.raises(GankitError, match=r"^could not download cifar10 file cifar-10-python\.tar\.gz "
                                          r"\(http://127\.0\.0\.1:\d+/cifar/cifar-10-python\.tar\.gz: checksum "
                                          r"mismatch\); put cifar-10-python\.tar\.gz .* or pass data\.dir=DIR$") as e:
        load_dataset(DataConfig(name="cifar10"), log=lambda *_: None)
    assert "\n" not in str(e.value)
    assert os.listdir(isolated_data_env / "cifar10") == []  # no partial or unverified file
    (folder / cifar.ARCHIVE).write_bytes(archive)  # the mirror is fixed
    train = load_dataset(DataConfig(name="cifar10"), log=lambda *_: None)
    assert torch.equal(train.images, _expected(batches, "train")[0])
    assert os.listdir(isolated_data_env / "cifar10") == [cifar.ARCHIVE]


def test_cifar_truncated_archive(cifar_mirror, tmp_path, isolated_data_env, monkeypatch):
    archive = cifar_mirror[1]
    # the connection drops half-way through the transfer
    truncating = _Server(tmp_path / "www", truncate=True)
    monkeypatch.setenv("GANKIT_MIRRORS_CIFAR10", truncating.url + "cifar/")
    try:
        with pytest.raises(GankitError, match=r"^could not download cifar10 file cifar-10-python\.tar\.gz "
                                              r"\(\S+: (incomplete download|IncompleteRead)") as e:
            load_dataset(DataConfig(name="cifar10"), log=lambda *_: None)
    finally:
        truncating.close()
    assert "\n" not in str(e.value)
    assert os.listdir(isolated_data_env / "cifar10") == []
    # a damaged archive already on disk (half copied, or bytes flipped) is reported in one line, not a traceback
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    flipped = archive[:200] + bytes(b ^ 0xFF for b in archive[200:260]) + archive[260:]  # zlib: invalid data
    for broken in (archive[: len(archive) // 2], flipped):
        (data_dir / cifar.ARCHIVE).write_bytes(broken)
        where = re.escape(str(data_dir / cifar.ARCHIVE))
        with pytest.raises(GankitError, match=rf"^{where}: not a readable tar\.gz archive \(.+\); delete it to "
                                              r"download it again, or put a good copy there$"):
            load_dataset(DataConfig(name="cifar10", dir=str(data_dir)), log=pytest.fail)


def test_stack_digits_modes():
    images = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8)  # image i is all i
    labels = np.arange(10)
    stacks, modes = stack_digits(images, labels, 5000, seed=0)
    assert stacks.shape == (5000, 3, 2, 2)
    d = stacks[:, :, 0, 0].astype(np.int64)
    np.testing.assert_array_equal(modes, d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2])
    counts = np.bincount(modes, minlength=1000)
    assert (counts > 0).sum() > 990  # 5000 uniform draws over 1,000 modes leave ~7 empty
    s2, m2 = stack_digits(images, labels, 5000, seed=0)
    assert np.array_equal(s2, stacks) and np.array_equal(m2, modes)


def test_stacked_from_idx_source(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))
    cfg = DataConfig(name="stacked-mnist", base="idx", dir=str(tmp_path), size=500, seed=4)
    ds = load_dataset(cfg, log=lambda *_: None)
    assert ds.images.shape == (500, 3, 28, 28) and ds.images.dtype == torch.uint8 and ds.num_classes == 1000
    assert "40 images" in ds.source  # train + test
    assert torch.equal(ds.images, load_dataset(cfg, log=lambda *_: None).images)
    test = load_dataset(DataConfig(name="stacked-mnist", base="idx", dir=str(tmp_path), size=500, seed=4,
                                   split="test"), log=lambda *_: None)
    assert not torch.equal(test.images, ds.images)


def test_stacked_from_fashion(fashion_dir):
    ds = load_dataset(DataConfig(name="stacked-mnist", base="fashion-mnist", dir=str(fashion_dir), size=2000))
    assert ds.images.shape == (2000, 3, 28, 28) and "70000 images" in ds.source
    assert int(ds.labels.max()) < 1000


@pytest.mark.parametrize("name,size", [("ring8", 10**11), ("grid25", 10**10), ("mog1d", 10**11)])
def test_a_mixture_too_large_for_the_memory_is_refused_before_sampling(name, size, refused, tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_MEMORY_LIMIT", "64G")
    refused(["train", "--dataset", name, "--data.size", str(size), "--out", tmp_path / "run"], tmp_path,
            rf"the {name} dataset of {size:,} points \(data\.size\) would need [\d.]+ [GT]B, more than the "
            rf"64\.0 GB of memory set by GANKIT_MEMORY_LIMIT; lower data\.size$")


def test_stacked_mnist_too_large_for_the_memory_is_refused_before_stacking(refused, tmp_path):
    src = tmp_path / "digits"
    src.mkdir()
    write_idx(src / "train-images-idx3-ubyte.gz", np.zeros((10, 28, 28), np.uint8))
    write_idx(src / "train-labels-idx1-ubyte.gz", np.arange(10, dtype=np.uint8))
    refused(["train", "--dataset", "stacked-mnist", "--data.base", "idx", "--data-dir", src, "--data.size",
             str(10**11), "--out", tmp_path / "run"], tmp_path,
            r"stacked-mnist of 100,000,000,000 images \(data\.size\) would need [\d.]+ TB")
