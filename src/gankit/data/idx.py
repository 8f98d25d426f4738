"""Reading and writing the IDX format of MNIST and Fashion-MNIST (gzipped or not).

Format (http://yann.lecun.com/exdb/mnist/): a 4-byte magic ``0x00 0x00 TYPE NDIM``, then NDIM big-endian
uint32 sizes, then the data in C order. MNIST's images are TYPE 0x08 (uint8), NDIM 3; labels NDIM 1.
Every malformed file raises :class:`GankitError` naming the file and what is wrong.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import GankitError
from ..memory import check_fits

# IDX type byte -> big-endian numpy dtype
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("=").str: k for k, v in _DTYPES.items()}
MAX_ELEMENTS = 2**34  # refuse headers that claim absurd sizes before allocating anything
MAX_DIMS = 32  # numpy's limit before 2.0 (64 since); real IDX files have 1 to 4


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise GankitError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise GankitError(f"{path}: is a folder, not an IDX file") from None
    except OSError as e:
        raise GankitError(f"{path}: cannot read ({e.strerror or e})") from None
    if data[:2] != b"\x1f\x8b":
        return data
    _check_unpacked_size(data, path)
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as e:  # BadGzipFile is an OSError; a cut-off stream an EOFError
        raise GankitError(f"{path}: corrupt or truncated gzip stream ({e})") from None


def _check_unpacked_size(gz: bytes, path: Path) -> None:
    """Refuse a gzipped IDX file whose header claims more than the memory holds, before decompressing it (a
    few MB of gzip can unpack to many GB). Damaged streams and headers are left to the full read to report."""
    try:
        head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(gz, 4 + 4 * MAX_DIMS)
        _, shape, dtype, count = _parse_header(head, str(path))
    except (zlib.error, GankitError):
        return
    check_fits(2 * count * dtype.itemsize, f"{path}: {'x'.join(map(str, shape))} values of {dtype.name}",
               "use a subset of the data")


def parse_idx(buf: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into a native-endian numpy array; ``name`` labels error messages."""
    header, shape, dtype, count = _parse_header(buf, name)
    expected = header + count * dtype.itemsize
    if len(buf) < expected:
        raise GankitError(f"{name}: truncated data: header says {shape} ({expected} bytes), file has {len(buf)}")
    if len(buf) > expected:
        raise GankitError(f"{name}: {len(buf) - expected} unexpected trailing bytes after {shape} data")
    check_fits(count * dtype.itemsize, f"{name}: a native-endian copy of {'x'.join(map(str, shape))} values "
               f"of {dtype.name}", "use a subset of the data")
    arr = np.frombuffer(buf, dtype=dtype, count=count, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _parse_header(buf: bytes, name: str) -> tuple[int, tuple[int, ...], np.dtype, int]:
    """(header length, shape, big-endian dtype, element count) of IDX bytes; only the header need be there."""
    if len(buf) < 4:
        raise GankitError(f"{name}: too short to be an IDX file ({len(buf)} bytes)")
    if buf[0] != 0 or buf[1] != 0 or buf[2] not in _DTYPES:
        raise GankitError(f"{name}: bad magic number 0x{buf[:4].hex()} (not an IDX file)")
    ndim = buf[3]
    if ndim == 0:
        raise GankitError(f"{name}: bad magic number 0x{buf[:4].hex()} (zero dimensions)")
    if ndim > MAX_DIMS:
        raise GankitError(f"{name}: bad magic number 0x{buf[:4].hex()} ({ndim} dimensions, at most {MAX_DIMS})")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise GankitError(f"{name}: truncated header ({len(buf)} bytes, need {header})")
    shape = tuple(int.from_bytes(buf[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[buf[2]])
    count, nonzero = 1, 1
    for s in shape:
        count *= s
        nonzero *= max(s, 1)  # numpy refuses shapes like (0, 2**32) too, though they hold nothing
    if count > MAX_ELEMENTS or nonzero > MAX_ELEMENTS:
        raise GankitError(f"{name}: header claims an absurd size {shape}")
    return header, shape, dtype, count


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` detected by content, not name)."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


def encode_idx(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr)
    code = _CODES.get(arr.dtype.newbyteorder("=").str)
    if code is None:
        raise GankitError(f"cannot write dtype {arr.dtype} as IDX; use uint8, int8, int16, int32, float32 or float64")
    if arr.ndim == 0 or arr.ndim > MAX_DIMS:
        raise GankitError(f"cannot write a {arr.ndim}-dimensional array as IDX")
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return head + np.ascontiguousarray(arr, dtype=np.dtype(_DTYPES[code])).tobytes()


def write_idx(path: str | os.PathLike, arr: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``arr`` as IDX; gzip when ``compress`` is True or the name ends in ``.gz``."""
    path = Path(path)
    data = encode_idx(arr)
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def load_idx_pair(images_path: Path, labels_path: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an images file (N, H, W) uint8 and optionally its labels (N,), checking they agree."""
    images = read_idx(images_path)
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise GankitError(f"{images_path}: expected uint8 images of shape (N, H, W) or (N, H, W, C), "
                          f"got {images.dtype} {images.shape}")
    if images.shape[0] == 0:
        raise GankitError(f"{images_path}: holds no images")
    if 0 in images.shape[1:]:
        raise GankitError(f"{images_path}: images of shape {images.shape[1:]} hold no pixels")
    labels = None
    if labels_path is not None:
        labels = read_idx(labels_path)
        if labels.ndim != 1:
            raise GankitError(f"{labels_path}: expected labels of shape (N,), got {labels.shape}")
        if labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
            raise GankitError(f"{labels_path}: labels must be non-negative integers, got {labels.dtype} values")
        if labels.shape[0] != images.shape[0]:
            raise GankitError(f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images in "
                              f"{images_path.name}")
    return images, labels
