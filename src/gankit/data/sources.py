"""Finding dataset files on disk and downloading them, offline-first.

Search order for a named dataset (first folder holding all files wins):
1. ``data.dir`` (``--data-dir``), and ``DIR/<name>`` below it;
2. ``$GANKIT_DATA`` and ``$GANKIT_DATA/<name>``;
3. the user cache ``$GANKIT_CACHE/<name>`` (default ``~/.cache/gankit/<name>``, honouring ``XDG_CACHE_HOME``);
4. system folders ``/usr/share/datasets/<name>`` (Debian's ``dataset-fashion-mnist`` package installs there)
   and ``/usr/local/share/datasets/<name>``; override the list with ``$GANKIT_SYSTEM_DATA_DIRS``
   (``os.pathsep``-separated; empty disables it);
5. a download from the dataset's mirrors, tried in turn (``$GANKIT_MIRRORS_<NAME>`` overrides them, comma-
   separated), each file verified against a known digest (see :class:`RemoteFile`: MNIST by SHA-256,
   Fashion-MNIST by its authors' MD5 or the SHA-256 of the unzipped content, CIFAR-10's archive by its MD5)
   and moved atomically into the cache.

Files found on disk in steps 1-4 are not checked against digests; their parsers reject corrupt or truncated files.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GankitError, option


def spelt(text: str) -> str:
    """``text`` with the CLI's ``--data-dir DIR`` spelt as the caller spells it (``data.dir=DIR`` from Python)."""
    return text.replace("--data-dir DIR", option("--data-dir DIR", "data.dir=DIR"))


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset. A downloaded file passes when any known digest matches.

    ``sha256``: digest of the file as served (gzipped); ``raw_sha256``: digest of its decompressed content,
    which survives re-compression (Debian's package recompresses Fashion-MNIST); ``md5``: the served file's
    MD5 as published by the authors, where no SHA-256 was published.
    """

    name: str
    sha256: str | None = None
    raw_sha256: str | None = None
    md5: str | None = None


@dataclass(frozen=True)
class RemoteDataset:
    name: str
    mirrors: tuple[str, ...]
    files: dict[str, RemoteFile] = field(default_factory=dict)  # role -> file
    how_to_get: str = ""  # "--data-dir DIR" is spelt data.dir for the Python API (see spelt_how)


MNIST = RemoteDataset(
    name="mnist",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    files={
        "train_images": RemoteFile("train-images-idx3-ubyte.gz",
                                   sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train_labels": RemoteFile("train-labels-idx1-ubyte.gz",
                                   sha256="3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "test_images": RemoteFile("t10k-images-idx3-ubyte.gz",
                                  sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "test_labels": RemoteFile("t10k-labels-idx1-ubyte.gz",
                                  sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
    how_to_get="put the four MNIST IDX files in ~/.cache/gankit/mnist or pass --data-dir DIR",
)

FASHION_MNIST = RemoteDataset(
    name="fashion-mnist",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    files={
        "train_images": RemoteFile("train-images-idx3-ubyte.gz", md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                   raw_sha256="c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train_labels": RemoteFile("train-labels-idx1-ubyte.gz", md5="25c81989df183df01b3e8a0aad5dffbe",
                                   raw_sha256="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "test_images": RemoteFile("t10k-images-idx3-ubyte.gz", md5="bef4ecab320f06d8554ea6380940ec79",
                                  raw_sha256="5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "test_labels": RemoteFile("t10k-labels-idx1-ubyte.gz", md5="bb300cfdad3c16e7a12a480ee83cd310",
                                  raw_sha256="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
    how_to_get="install Debian's dataset-fashion-mnist package, or put the IDX files in "
               "~/.cache/gankit/fashion-mnist, or pass --data-dir DIR",
)

REMOTE_DATASETS = {d.name: d for d in (MNIST, FASHION_MNIST)}


class UnavailableError(GankitError):
    """A dataset is neither on disk nor downloadable; ``reasons``: one line per failed attempt (``url: why``)."""

    def __init__(self, message: str, reasons: list[str]):
        super().__init__(message)
        self.reasons = reasons


def cache_root() -> Path:
    if os.environ.get("GANKIT_CACHE"):
        return Path(os.environ["GANKIT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gankit"


def system_dirs() -> list[Path]:
    env = os.environ.get("GANKIT_SYSTEM_DATA_DIRS")
    if env is not None:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [Path("/usr/share/datasets"), Path("/usr/local/share/datasets")]


def search_dirs(name: str, data_dir: str | None) -> list[Path]:
    """Folders searched for dataset ``name``, in order."""
    out: list[Path] = []
    if data_dir:
        out += [Path(data_dir).expanduser(), Path(data_dir).expanduser() / name]
    if os.environ.get("GANKIT_DATA"):
        env = Path(os.environ["GANKIT_DATA"]).expanduser()
        out += [env, env / name]
    out.append(cache_root() / name)
    out += [d / name for d in system_dirs()]
    return out


def file_variants(gz_name: str) -> list[str]:
    """Names a file may have on disk: gzipped, unzipped, and the common ``images.idx3`` spelling."""
    raw = gz_name[:-3] if gz_name.endswith(".gz") else gz_name
    dotted = raw.replace("-idx", ".idx")
    return [gz_name, raw, dotted, dotted + ".gz"]


def find_in(folder: Path, gz_name: str) -> Path | None:
    for v in file_variants(gz_name):
        p = folder / v
        try:
            if p.is_file():
                return p
        except OSError:  # e.g. a search folder we may not enter: it holds nothing for us
            return None
    return None


def locate(ds: RemoteDataset, roles: list[str], data_dir: str | None) -> dict[str, Path] | None:
    """The first searched folder that holds every file of ``roles``, as role -> path; None if none does."""
    for folder in search_dirs(ds.name, data_dir):
        found = {r: find_in(folder, ds.files[r].name) for r in roles}
        if all(found.values()):
            return found  # type: ignore[return-value]
    return None


def mirrors_for(ds: RemoteDataset) -> list[str]:
    env = os.environ.get("GANKIT_MIRRORS_" + ds.name.upper().replace("-", "_"))
    if env is not None:
        return [m.strip() for m in env.split(",") if m.strip()]
    return list(ds.mirrors)


def verify(path: Path, spec: RemoteFile) -> bool:
    """True when ``path`` matches any digest known for ``spec`` (see :class:`RemoteFile`)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise GankitError(f"{path}: cannot read ({e.strerror or e})") from None
    if spec.sha256 and hashlib.sha256(data).hexdigest() == spec.sha256:
        return True
    if spec.md5 and hashlib.md5(data, usedforsecurity=False).hexdigest() == spec.md5:
        return True
    if spec.raw_sha256:
        try:
            raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        except (OSError, EOFError, zlib.error):  # a corrupt stream simply does not match
            return False
        return hashlib.sha256(raw).hexdigest() == spec.raw_sha256
    return False


def _fetch(url: str, dest: Path, timeout: float, progress: bool) -> None:
    """Stream ``url`` into ``dest``; a progress bar on stderr when it is a terminal and tqdm is installed."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed https/http mirrors
        total = int(resp.headers.get("Content-Length") or 0)
        bar = None
        if progress and sys.stderr.isatty():
            try:
                from tqdm import tqdm
                bar = tqdm(total=total or None, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                           leave=False)
            except ImportError:
                bar = None
        got = 0
        with open(dest, "wb") as out:
            while True:
                chunk = resp.read(1 << 16)
                if not chunk:
                    break
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
                got += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if bar is not None:
            bar.close()
    if total and got != total:
        raise ValueError(f"incomplete download, {got} of {total} bytes")


def download(ds: RemoteDataset, roles: list[str], dest_dir: Path | None = None, *, mirrors: list[str] | None = None,
             timeout: float = 30.0, progress: bool = True, log=print) -> dict[str, Path]:
    """Download the files of ``roles`` into ``dest_dir`` (default: the cache), verified, atomically.

    Each mirror is tried in turn; a file only appears under its final name once its checksum matched,
    so an interrupted or corrupted download never leaves a file that looks complete.
    Raises :class:`GankitError` listing every mirror's failure when no mirror delivers a valid file.
    """
    dest_dir = Path(dest_dir) if dest_dir is not None else cache_root() / ds.name
    mirrors = mirrors if mirrors is not None else mirrors_for(ds)
    if not mirrors:
        raise UnavailableError(f"no download mirrors configured for {ds.name}; {spelt(ds.how_to_get)}",
                            ["no download mirrors configured"])
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UnavailableError(f"cannot create the data cache {dest_dir}: {e.strerror}",
                            [f"cannot create {dest_dir}: {e.strerror}"]) from None
    out: dict[str, Path] = {}
    for role in roles:
        spec = ds.files[role]
        final = dest_dir / spec.name
        if final.is_file() and verify(final, spec):
            out[role] = final
            continue
        errors = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + spec.name
            tmp = None
            try:
                fd, tmp_name = tempfile.mkstemp(prefix=spec.name + ".", suffix=".part", dir=dest_dir)
                os.close(fd)
                tmp = Path(tmp_name)
                log(f"downloading {url}")
                _fetch(url, tmp, timeout, progress)
                if not verify(tmp, spec):
                    errors.append(f"{url}: checksum mismatch")
                    continue
                os.replace(tmp, final)
                out[role] = final
                break
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
                # URLError: the socket error; IncompleteRead & co: their class name
                reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or str(e) or type(e).__name__
                if isinstance(e, urllib.error.HTTPError):
                    reason = f"HTTP {e.code} {e.reason}"
                errors.append(f"{url}: {reason}")
            finally:
                if tmp is not None and tmp.exists():
                    tmp.unlink()
        if role not in out:
            raise UnavailableError(f"could not download {ds.name} file {spec.name} ({'; '.join(errors)}); "
                                f"{spelt(ds.how_to_get)}", errors)
    return out

