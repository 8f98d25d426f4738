"""IDX reading and writing: round trips, every corruption case, and fuzzing of the parser."""
from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gankit.data.idx import encode_idx, load_idx_pair, parse_idx, read_idx, write_idx
from gankit.errors import GankitError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def idx_header(type_code: int, shape: tuple[int, ...]) -> bytes:
    """The IDX header written by hand from the format description (not by encode_idx)."""
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    return msg


# ---------------------------------------------------------------------------------------------
# round trips

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_write_read_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(0)
    arr = (rng.normal(size=(5, 3, 4)) * 50).astype(dtype)
    path = write_idx(tmp_path / f"a-idx3-ubyte{suffix}", arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, arr)


def test_encoding_matches_the_format_by_hand():
    # MNIST's labels file: magic 0x00000801, count, then one byte per label
    labels = np.array([7, 2, 1, 0], dtype=np.uint8)
    assert encode_idx(labels) == b"\x00\x00\x08\x01\x00\x00\x00\x04" + bytes([7, 2, 1, 0])
    images = np.arange(2 * 3 * 2, dtype=np.uint8).reshape(2, 3, 2)
    assert encode_idx(images) == idx_header(0x08, (2, 3, 2)) + bytes(range(12))
    # multi-byte types are big-endian on disk
    assert encode_idx(np.array([1, -2], dtype=np.int16)) == idx_header(0x0B, (2,)) + b"\x00\x01\xff\xfe"
    assert encode_idx(np.array([1.5], dtype=np.float32)) == idx_header(0x0D, (1,)) + struct.pack(">f", 1.5)


def test_gzip_is_detected_by_content_not_name(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    plain_named_gz = write_idx(tmp_path / "plain.gz", arr, compress=False)
    gz_named_plain = write_idx(tmp_path / "zipped-idx3-ubyte", arr, compress=True)
    np.testing.assert_array_equal(read_idx(plain_named_gz), arr)
    np.testing.assert_array_equal(read_idx(gz_named_plain), arr)


def test_load_idx_pair_reads_images_and_labels(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 9], dtype=np.uint8)
    ip = write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    lp = write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    x, y = load_idx_pair(ip, lp)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    x, y = load_idx_pair(ip, None)
    assert y is None and x.shape == (6, 28, 28)


@pytest.mark.parametrize("arr, what", [
    (np.zeros(3, dtype=np.int64), "cannot write dtype int64"),
    (np.zeros(3, dtype=bool), "cannot write dtype bool"),
    (np.zeros(3, dtype=np.complex64), "cannot write dtype complex64"),
    (np.array(5, dtype=np.uint8), "0-dimensional"),
    (np.zeros((1,) * 40, dtype=np.uint8), "40-dimensional"),
])
def test_encode_refuses_what_idx_cannot_hold(arr, what):
    with pytest.raises(GankitError, match=what):
        encode_idx(arr)


# ---------------------------------------------------------------------------------------------
# each corruption case -> a one-line error naming the file and the problem

VALID = idx_header(0x08, (2, 2, 2)) + bytes(range(8))

CORRUPT = {
    "empty": (b"", r"too short to be an IDX file \(0 bytes\)"),
    "short": (b"\x00\x00", r"too short to be an IDX file \(2 bytes\)"),
    "png_magic": (b"\x89PNG\r\n\x1a\n" + bytes(16), r"bad magic number 0x89504e47 \(not an IDX file\)"),
    "unknown_type": (b"\x00\x00\x07\x01" + bytes(8), r"bad magic number 0x00000701 \(not an IDX file\)"),
    "zero_dims": (b"\x00\x00\x08\x00", r"bad magic number 0x00000800 \(zero dimensions\)"),
    "too_many_dims": (b"\x00\x00\x08\x64" + b"\x00\x00\x00\x01" * 100 + b"\x05",
                      r"bad magic number 0x00000864 \(100 dimensions, at most 32\)"),
    "truncated_header": (b"\x00\x00\x08\x03\x00\x00\x00\x02", r"truncated header \(8 bytes, need 16\)"),
    "truncated_data": (VALID[:-3], r"truncated data: header says \(2, 2, 2\) \(24 bytes\), file has 21"),
    "trailing_bytes": (VALID + b"\x00\x01", r"2 unexpected trailing bytes after \(2, 2, 2\) data"),
    "absurd_size": (idx_header(0x08, (2**32 - 1, 2**32 - 1, 2**32 - 1)), r"header claims an absurd size"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
@pytest.mark.parametrize("compress", [False, True])
def test_each_corruption_is_named(tmp_path, case, compress):
    data, message = CORRUPT[case]
    path = tmp_path / f"{case}-idx3-ubyte"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(GankitError, match=message) as e:
        read_idx(path)
    assert one_line(e).startswith(f"{path}: ")


def test_corrupt_and_truncated_gzip(tmp_path):
    gz = gzip.compress(VALID + bytes(1000))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(GankitError, match=r"cut\.gz: corrupt or truncated gzip stream") as e:
        read_idx(cut)
    one_line(e)
    mangled = tmp_path / "mangled.gz"
    mangled.write_bytes(gz[:10] + b"\xff" * 20 + gz[30:])
    with pytest.raises(GankitError, match=r"mangled\.gz: corrupt or truncated gzip stream"):
        read_idx(mangled)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(GankitError, match=r"nothere-idx3-ubyte: file not found"):
        read_idx(tmp_path / "nothere-idx3-ubyte")
    with pytest.raises(GankitError, match=r": is a folder, not an IDX file"):
        read_idx(tmp_path)


def _pair(tmp_path, images, labels):
    ip = tmp_path / "train-images-idx3-ubyte"
    ip.write_bytes(encode_idx(images))
    lp = tmp_path / "train-labels-idx1-ubyte"
    lp.write_bytes(encode_idx(labels))
    return ip, lp


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((3, 4, 4), np.uint8), np.zeros(2, np.uint8),
     r"train-labels-idx1-ubyte: 2 labels for 3 images in train-images-idx3-ubyte"),
    (np.zeros((3, 4, 4), np.uint8), np.zeros((3, 1), np.uint8),
     r"train-labels-idx1-ubyte: expected labels of shape \(N,\), got \(3, 1\)"),
    (np.zeros((3, 4, 4), np.uint8), np.zeros(3, np.float32),
     r"train-labels-idx1-ubyte: labels must be non-negative integers, got float32"),
    (np.zeros((3, 4, 4), np.uint8), np.array([0, -1, 2], np.int8),
     r"train-labels-idx1-ubyte: labels must be non-negative integers, got int8"),
    (np.zeros((3, 4, 4), np.float32), np.zeros(3, np.uint8),
     r"train-images-idx3-ubyte: expected uint8 images .* got float32 \(3, 4, 4\)"),
    (np.zeros((3, 16), np.uint8), np.zeros(3, np.uint8),
     r"train-images-idx3-ubyte: expected uint8 images .* got uint8 \(3, 16\)"),
    (np.zeros((0, 4, 4), np.uint8), np.zeros(0, np.uint8), r"train-images-idx3-ubyte: holds no images"),
    (np.zeros((3, 0, 4), np.uint8), np.zeros(3, np.uint8),
     r"train-images-idx3-ubyte: images of shape \(0, 4\) hold no pixels"),
])
def test_mismatched_pairs(tmp_path, images, labels, message):
    ip, lp = _pair(tmp_path, images, labels)
    with pytest.raises(GankitError, match=message) as e:
        load_idx_pair(ip, lp)
    one_line(e)


# ---------------------------------------------------------------------------------------------
# property-based: valid arrays round-trip, and no input makes the reader raise anything but GankitError

idx_arrays = st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)))


@settings(max_examples=150, deadline=None)
@given(arr=idx_arrays, compress=st.booleans())
def test_property_round_trip(arr, compress):
    data = encode_idx(arr)
    if compress:
        data = gzip.compress(data)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x-idx"
        path.write_bytes(data)
        back = read_idx(path)
    assert back.shape == arr.shape and back.dtype == arr.dtype
    np.testing.assert_array_equal(back, arr)  # NaNs compare equal here


def _parse_or_gankit_error(buf: bytes) -> None:
    try:
        out = parse_idx(buf, "fuzz")
    except GankitError as e:
        assert str(e).startswith("fuzz: ") and "\n" not in str(e)
        return
    # whatever parses must re-encode to exactly the same bytes (IDX has one encoding per array)
    assert isinstance(out, np.ndarray) and encode_idx(out) == buf


@settings(max_examples=400, deadline=None)
@given(buf=st.binary(max_size=64))
def test_property_random_bytes(buf):
    _parse_or_gankit_error(buf)


@settings(max_examples=300, deadline=None)
@given(head=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x01, 0xFF]), ndim=st.integers(0, 255),
       dims=st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 4), max_size=8), pad=st.booleans(),
       tail=st.binary(max_size=40))
def test_property_random_headers(head, ndim, dims, pad, tail):
    if pad:  # complete the header with sizes of 1, so that headers of many dimensions get parsed
        dims = dims + [1] * (ndim - len(dims))
    buf = bytes([0, 0, head, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + tail
    _parse_or_gankit_error(buf)


mutations = st.lists(st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "delete"]),
                               st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4)


def _mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, pos, val in ops:
        i = pos % (len(b) + 1)
        if op == "flip" and i < len(b):
            b[i] ^= 1 << (val % 8)
        elif op == "set" and i < len(b):
            b[i] = val
        elif op == "cut":
            del b[i:]
        elif op == "insert":
            b[i:i] = bytes([val])
        elif op == "delete" and i < len(b):
            del b[i]
    return bytes(b)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arr=idx_arrays, ops=mutations, compress=st.booleans(), mutate_after_gzip=st.booleans())
def test_property_mutated_files_give_gankit_error_or_data(arr, ops, compress, mutate_after_gzip):
    data = encode_idx(arr)
    if compress and not mutate_after_gzip:
        data = gzip.compress(_mutate(data, ops))
    elif compress:
        data = _mutate(gzip.compress(data), ops)
    else:
        data = _mutate(data, ops)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m-idx3-ubyte"
        path.write_bytes(data)
        try:
            out = read_idx(path)
        except GankitError as e:
            assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
            return
    assert isinstance(out, np.ndarray) and out.ndim >= 1


def test_zero_sized_header_with_a_huge_dimension_is_refused():
    # found by hypothesis: (0, 2**32 - 1, 5, 2**32 - 1) holds no elements, yet numpy cannot even shape it
    head = bytes([0, 0, 8, 4]) + b"".join(int(d).to_bytes(4, "big") for d in (0, 2**32 - 1, 5, 2**32 - 1))
    with pytest.raises(GankitError, match="absurd size"):
        parse_idx(head)


def test_a_gzipped_file_is_sized_from_its_header_before_it_is_unpacked(tmp_path, monkeypatch):
    """A few KB of gzip can unpack to gigabytes: the header is read first and the size checked."""
    p = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(p, np.zeros((20, 256, 256), np.uint8))
    assert p.stat().st_size < 10_000
    monkeypatch.setenv("GANKIT_MEMORY_LIMIT", "2M")
    with pytest.raises(GankitError, match=rf"^{p}: 20x256x256 values of uint8 would need 2\.5 MB, more than the "
                                          r"2\.0 MB of memory set by GANKIT_MEMORY_LIMIT; use a subset of the data$"):
        read_idx(p)
    monkeypatch.setenv("GANKIT_MEMORY_LIMIT", "3M")
    assert read_idx(p).shape == (20, 256, 256)


def test_one_3000x3000_image_is_refused_before_the_run_folder(tmp_path, refused, monkeypatch):
    monkeypatch.setenv("GANKIT_MEMORY_LIMIT", "64G")  # an MLP on it needs 86 GB to train
    d = tmp_path / "idx"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((1, 3000, 3000), np.uint8))
    refused(["train", "--dataset", "idx", "--data-dir", d, "--batch-size", "1", "--steps", "1", "--out",
             tmp_path / "run"], tmp_path, r"training G and D on data of shape \[1, 3000, 3000\] "
                                          r"\(2,313,013,185 weights; [\d,]+ layer outputs per batch of 1\) would need "
                                          r"86\.\d GB")
