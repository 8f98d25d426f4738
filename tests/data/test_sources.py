"""Finding dataset files (search order, file-name variants) and downloading them from a local HTTP server:
checksums, mirrors tried in turn, atomic moves, no partial files; and the real Fashion-MNIST files."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import socket
import sys
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.config import DataConfig
from gankit.data import load_dataset, sources
from gankit.data.idx import write_idx
from gankit.data.sources import RemoteDataset, RemoteFile, UnavailableError
from gankit.errors import GankitError

NAMES = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
         "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}
ROLES = ["train_images", "train_labels"]


def write_mnist_like(folder: Path, n: int, seed: int = 0, gz: bool = True) -> dict[str, np.ndarray]:
    """Four MNIST-format files with ``n`` train and ``n // 2 + 1`` test images of 28x28; returns the arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for role, name in NAMES.items():
        m = n if role.startswith("train") else n // 2 + 1
        arr = (rng.integers(0, 256, (m, 28, 28), dtype=np.uint8) if role.endswith("images")
               else rng.integers(0, 10, m, dtype=np.uint8))
        write_idx(folder / (name if gz else name[:-3]), arr, compress=gz)
        arrays[role] = arr
    return arrays


def spec_for(folder: Path, name: str = "toy", corrupt: bool = False, mirrors=()) -> RemoteDataset:
    """A RemoteDataset whose SHA-256 digests match the files in ``folder`` (or all miss, ``corrupt``)."""
    files = {}
    for role, fname in NAMES.items():
        digest = hashlib.sha256((folder / fname).read_bytes()).hexdigest()
        files[role] = RemoteFile(fname, sha256=("0" * 64 if corrupt else digest))
    return RemoteDataset(name=name, mirrors=tuple(mirrors), files=files, how_to_get="get it somehow")


class _Server:
    """http.server on 127.0.0.1 in a thread, serving ``root``; records the paths requested."""

    def __init__(self, root: Path, truncate: bool = False):
        requests = self.requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                requests.append(self.path)
                if truncate:  # promise the whole file, send half of it, hang up
                    body = (root / self.path.lstrip("/")).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path):
    """A folder ``www/files`` of MNIST-format files served at ``<url>files/``; yields (folder, server)."""
    root = tmp_path / "www"
    write_mnist_like(root / "files", n=12, seed=3)
    server = _Server(root)
    yield root / "files", server
    server.close()


def dead_url() -> str:
    """An http URL on a local port that nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# ---------------------------------------------------------------------------------------------
# downloads

def test_download_with_correct_checksum(served, tmp_path):
    folder, server = served
    spec = spec_for(folder)
    dest = tmp_path / "cache"
    lines = []
    got = sources.download(spec, ROLES, dest, mirrors=[server.url + "files/"], progress=False, log=lines.append)
    assert set(got) == set(ROLES)
    for role in ROLES:
        assert got[role] == dest / NAMES[role]
        assert got[role].read_bytes() == (folder / NAMES[role]).read_bytes()
    assert sorted(os.listdir(dest)) == sorted(NAMES[r] for r in ROLES)  # no .part files left behind
    assert lines == [f"downloading {server.url}files/{NAMES[r]}" for r in ROLES]
    # a second call finds the verified files and asks the server for nothing
    before = len(server.requests)
    assert sources.download(spec, ROLES, dest, mirrors=[server.url + "files/"], progress=False) == got
    assert len(server.requests) == before


def test_download_goes_to_the_cache_by_default(served, isolated_data_env):
    folder, server = served
    got = sources.download(spec_for(folder), ["test_labels"], mirrors=[server.url + "files"], progress=False,
                           log=lambda *_: None)
    assert got["test_labels"] == isolated_data_env / "toy" / NAMES["test_labels"]


def test_download_with_wrong_checksum_leaves_nothing(served, tmp_path):
    folder, server = served
    dest = tmp_path / "cache"
    with pytest.raises(UnavailableError, match=r"could not download toy file train-images-idx3-ubyte\.gz "
                                               r"\(http://127\.0\.0\.1:\d+/files/train-images-idx3-ubyte\.gz: "
                                               r"checksum mismatch\); get it somehow") as e:
        sources.download(spec_for(folder, corrupt=True), ROLES, dest, mirrors=[server.url + "files/"],
                         progress=False, log=lambda *_: None)
    assert "\n" not in str(e.value)
    assert os.listdir(dest) == []
    assert server.requests == ["/files/train-images-idx3-ubyte.gz"]


def test_mirrors_are_tried_in_turn(served, tmp_path):
    folder, server = served
    dest = tmp_path / "cache"
    lines = []
    mirrors = [server.url + "missing/", dead_url(), server.url + "files/"]  # 404, refused, good
    got = sources.download(spec_for(folder), ["train_images"], dest, mirrors=mirrors, progress=False,
                           log=lines.append)
    assert got["train_images"].read_bytes() == (folder / NAMES["train_images"]).read_bytes()
    assert lines == [f"downloading {m}{NAMES['train_images']}" for m in mirrors]
    assert server.requests == ["/missing/train-images-idx3-ubyte.gz", "/files/train-images-idx3-ubyte.gz"]
    assert os.listdir(dest) == [NAMES["train_images"]]


def test_all_mirrors_failing_lists_each_reason(served, tmp_path):
    folder, server = served
    dest = tmp_path / "cache"
    dead = dead_url()
    with pytest.raises(UnavailableError) as e:
        sources.download(spec_for(folder), ROLES, dest, mirrors=[server.url + "missing", dead], progress=False,
                         log=lambda *_: None)
    assert len(e.value.reasons) == 2
    assert e.value.reasons[0] == f"{server.url}missing/train-images-idx3-ubyte.gz: HTTP 404 File not found"
    assert e.value.reasons[1].startswith(f"{dead}train-images-idx3-ubyte.gz: ")
    assert "refused" in e.value.reasons[1].lower()
    assert "\n" not in str(e.value)
    assert os.listdir(dest) == []


def test_truncated_transfer_leaves_no_partial_file(tmp_path):
    root = tmp_path / "www"
    write_mnist_like(root / "files", n=40)
    server = _Server(root, truncate=True)
    try:
        dest = tmp_path / "cache"
        with pytest.raises(UnavailableError, match=r"train-images-idx3-ubyte\.gz: .*(incomplete|IncompleteRead)"):
            sources.download(spec_for(root / "files"), ROLES, dest, mirrors=[server.url + "files/"],
                             progress=False, log=lambda *_: None)
        assert os.listdir(dest) == []
    finally:
        server.close()


def test_file_appears_only_by_an_atomic_move_of_a_verified_file(served, tmp_path, monkeypatch):
    folder, server = served
    spec = spec_for(folder)
    dest = tmp_path / "cache"
    moves = []
    real_replace = os.replace

    def spy(src, dst):
        src, dst = Path(src), Path(dst)
        assert src.parent == dst.parent == dest and src.name.endswith(".part")  # same folder: a rename
        assert not dst.exists()
        assert sources.verify(src, spec.files["train_images"])
        moves.append(dst.name)
        real_replace(src, dst)

    monkeypatch.setattr(sources.os, "replace", spy)
    sources.download(spec, ["train_images"], dest, mirrors=[server.url + "files/"], progress=False,
                     log=lambda *_: None)
    assert moves == [NAMES["train_images"]]


def test_a_corrupt_cached_file_is_downloaded_again(served, tmp_path):
    folder, server = served
    dest = tmp_path / "cache"
    dest.mkdir()
    (dest / NAMES["train_labels"]).write_bytes(b"garbage")
    got = sources.download(spec_for(folder), ["train_labels"], dest, mirrors=[server.url + "files/"],
                           progress=False, log=lambda *_: None)
    assert got["train_labels"].read_bytes() == (folder / NAMES["train_labels"]).read_bytes()
    assert server.requests == ["/files/train-labels-idx1-ubyte.gz"]


def test_progress_bar_on_a_terminal(served, tmp_path, monkeypatch):
    pytest.importorskip("tqdm")
    folder, server = served

    class FakeTerminal(io.StringIO):
        def isatty(self):
            return True

    term = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    sources.download(spec_for(folder), ["train_images"], tmp_path, mirrors=[server.url + "files/"],
                     log=lambda *_: None)
    shown = term.getvalue()
    assert "train-images-idx3-ubyte.gz:" in shown and "B/s" in shown and ".part" not in shown


def test_no_mirrors_and_the_env_override(monkeypatch):
    ds = RemoteDataset("toy-set", mirrors=("http://a/", "http://b/"), files={"x": RemoteFile("x.gz")})
    monkeypatch.delenv("GANKIT_MIRRORS_TOY_SET", raising=False)
    assert sources.mirrors_for(ds) == ["http://a/", "http://b/"]
    monkeypatch.setenv("GANKIT_MIRRORS_TOY_SET", " http://c/ ,http://d/,")
    assert sources.mirrors_for(ds) == ["http://c/", "http://d/"]
    monkeypatch.setenv("GANKIT_MIRRORS_TOY_SET", "")
    with pytest.raises(UnavailableError, match="no download mirrors configured for toy-set"):
        sources.download(ds, ["x"], progress=False)


def test_load_dataset_downloads_into_the_cache_then_works_offline(served, monkeypatch, isolated_data_env):
    folder, server = served
    spec = spec_for(folder, name="mnist")
    monkeypatch.setattr(sources, "MNIST", spec)
    monkeypatch.setitem(sources.REMOTE_DATASETS, "mnist", spec)
    monkeypatch.setenv("GANKIT_MIRRORS_MNIST", server.url + "files/")
    lines = []
    ds = load_dataset(DataConfig(name="mnist"), log=lines.append)
    assert ds.images.shape == (12, 1, 28, 28) and ds.source == str(isolated_data_env / "mnist")
    assert len(lines) == 2 and all(ln.startswith("downloading ") for ln in lines)
    monkeypatch.setenv("GANKIT_MIRRORS_MNIST", dead_url())  # offline from now on
    again = load_dataset(DataConfig(name="mnist"), log=pytest.fail)
    assert torch.equal(again.images, ds.images) and torch.equal(again.labels, ds.labels)
    with pytest.raises(UnavailableError,
                       match=r"mnist not found in .*, and could not download mnist file t10k-images-idx3-ubyte\.gz"):
        load_dataset(DataConfig(name="mnist", split="test"), log=lambda *_: None)  # never downloaded


# ---------------------------------------------------------------------------------------------
# checksums

def test_verify_by_sha256_md5_and_raw_sha256(tmp_path):
    raw = b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02\x03"
    served = gzip.compress(raw, compresslevel=9, mtime=0)
    recompressed = gzip.compress(raw, compresslevel=1, mtime=12345)  # as a distribution repackages it
    assert served != recompressed
    p = tmp_path / "f.gz"
    p.write_bytes(recompressed)
    sha, md5 = hashlib.sha256(served).hexdigest(), hashlib.md5(served).hexdigest()
    raw_sha = hashlib.sha256(raw).hexdigest()
    assert not sources.verify(p, RemoteFile("f.gz", sha256=sha))
    assert not sources.verify(p, RemoteFile("f.gz", md5=md5))
    assert sources.verify(p, RemoteFile("f.gz", md5=md5, raw_sha256=raw_sha))
    p.write_bytes(served)
    assert sources.verify(p, RemoteFile("f.gz", sha256=sha))
    assert sources.verify(p, RemoteFile("f.gz", md5=md5))
    p.write_bytes(raw)  # an unzipped copy passes on its content digest
    assert sources.verify(p, RemoteFile("f.gz", raw_sha256=raw_sha))
    assert not sources.verify(p, RemoteFile("f.gz"))  # no digest known: nothing passes


def test_verify_of_a_corrupt_gzip_is_false_not_a_crash(tmp_path):
    gz = gzip.compress(bytes(range(256)) * 40)
    p = tmp_path / "bad.gz"
    p.write_bytes(gz[:10] + b"\xff" * 20 + gz[30:])  # zlib.error inside the stream
    assert not sources.verify(p, RemoteFile("bad.gz", raw_sha256="0" * 64))
    p.write_bytes(gz[: len(gz) // 2])  # EOFError
    assert not sources.verify(p, RemoteFile("bad.gz", raw_sha256="0" * 64))


# ---------------------------------------------------------------------------------------------
# search order and file names

def test_search_order_data_dir_env_cache_system(tmp_path, monkeypatch, isolated_data_env):
    dirs = {"data_dir": tmp_path / "given", "env": tmp_path / "env", "cache": isolated_data_env / "mnist",
            "system": tmp_path / "sys" / "mnist"}
    sizes = {"data_dir": 3, "env": 4, "cache": 5, "system": 6}
    for key, d in dirs.items():
        write_mnist_like(d, sizes[key])
    monkeypatch.setenv("GANKIT_DATA", str(dirs["env"]))
    system_dirs = os.pathsep.join([str(tmp_path / "nowhere"), str(tmp_path / "sys")])
    monkeypatch.setenv("GANKIT_SYSTEM_DATA_DIRS", system_dirs)
    assert sources.search_dirs("mnist", str(dirs["data_dir"])) == [
        dirs["data_dir"], dirs["data_dir"] / "mnist", dirs["env"], dirs["env"] / "mnist", dirs["cache"],
        tmp_path / "nowhere" / "mnist", dirs["system"]]
    cfg = DataConfig(name="mnist", dir=str(dirs["data_dir"]), download=False)
    for key in ("data_dir", "env", "cache", "system"):
        ds = load_dataset(cfg, log=pytest.fail)
        assert len(ds) == sizes[key] and ds.source == str(dirs[key]), key
        (dirs[key] / NAMES["train_labels"]).unlink()  # an incomplete folder is passed over
    with pytest.raises(GankitError, match=r"mnist not found in .*given.* and downloads are off"):
        load_dataset(cfg)


def test_name_subfolder_and_file_name_variants(tmp_path):
    # DIR/<name>/ with unzipped files under the 'train-images.idx3-ubyte' spelling
    sub = tmp_path / "fashion-mnist"
    write_mnist_like(sub, 7, gz=False)
    for role in ROLES:
        raw = sub / NAMES[role][:-3]
        raw.rename(sub / raw.name.replace("-idx", ".idx"))
    found = sources.locate(sources.FASHION_MNIST, ROLES, str(tmp_path))
    assert found == {"train_images": sub / "train-images.idx3-ubyte", "train_labels": sub / "train-labels.idx1-ubyte"}
    ds = load_dataset(DataConfig(name="fashion-mnist", dir=str(tmp_path), download=False))
    assert ds.images.shape == (7, 1, 28, 28) and ds.labels.shape == (7,)
    assert sources.file_variants("a-idx3-ubyte.gz") == ["a-idx3-ubyte.gz", "a-idx3-ubyte", "a.idx3-ubyte",
                                                        "a.idx3-ubyte.gz"]


def test_images_and_labels_must_share_a_folder(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "a", 3)
    write_mnist_like(tmp_path / "b", 3)
    (tmp_path / "a" / NAMES["train_labels"]).unlink()
    (tmp_path / "b" / NAMES["train_images"]).unlink()
    monkeypatch.setenv("GANKIT_DATA", str(tmp_path / "b"))
    assert sources.locate(sources.MNIST, ROLES, str(tmp_path / "a")) is None


def test_corrupt_found_file_is_an_error_naming_it(tmp_path):
    write_mnist_like(tmp_path, 5)
    bad = tmp_path / NAMES["train_labels"]
    write_idx(bad, np.zeros(4, np.uint8))
    with pytest.raises(GankitError, match=rf"{bad}: 4 labels for 5 images in train-images-idx3-ubyte\.gz"):
        load_dataset(DataConfig(name="mnist", dir=str(tmp_path)))


# ---------------------------------------------------------------------------------------------
# the real Fashion-MNIST files as Debian ships them

def test_real_fashion_mnist(fashion_dir, monkeypatch):
    for role, spec in sources.FASHION_MNIST.files.items():
        path = fashion_dir / spec.name
        assert sources.verify(path, spec), path
        # Debian recompressed the files: they pass on the content digest, not on the authors' MD5
        assert sources.verify(path, RemoteFile(spec.name, raw_sha256=spec.raw_sha256))
        assert not sources.verify(path, RemoteFile(spec.name, md5=spec.md5))
    monkeypatch.setenv("GANKIT_SYSTEM_DATA_DIRS", str(fashion_dir.parent))
    ds = load_dataset(DataConfig(name="fashion-mnist", download=False), log=pytest.fail)
    assert ds.images.shape == (60000, 1, 28, 28) and ds.images.dtype.is_floating_point is False
    assert ds.source == str(fashion_dir) and ds.num_classes == 10
    assert np.bincount(ds.labels.numpy()).tolist() == [6000] * 10
    test = load_dataset(DataConfig(name="fashion-mnist", split="test", download=False))
    assert test.images.shape == (10000, 1, 28, 28)
    assert np.bincount(test.labels.numpy()).tolist() == [1000] * 10


def test_a_missing_folder_is_named_as_the_caller_spells_it(tmp_path, capsys):
    """From Python the messages say data.dir; from the command line --data-dir (errors.option)."""
    from gankit.cli import main
    from gankit.config import DataConfig
    from gankit.data import load_dataset
    from gankit.errors import GankitError

    for cfg, want in ((DataConfig(name="idx"), "pass data.dir=DIR"),
                      (DataConfig(name="idx", dir=str(tmp_path / "nope")), "data.dir ")):
        with pytest.raises(GankitError) as e:
            load_dataset(cfg, log=lambda *_: None)
        assert want in str(e.value) and "--data-dir" not in str(e.value)
    assert main(["train", "--dataset", "idx", "--steps", "1", "--out", str(tmp_path / "r")]) == 2
    assert "pass --data-dir DIR" in capsys.readouterr().err
