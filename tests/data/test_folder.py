"""Folders of images (PNG/JPEG, grayscale or RGB) and folders of MNIST-format IDX files as datasets."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.data.folder import load_image_folder
from gankit.data.idx import write_idx
from gankit.errors import GankitError


def _gray(seed: int, size=(6, 5)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)  # (H, W)


def _rgb(seed: int, size=(6, 5)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)  # (H, W, 3)


def test_grayscale_png_exact(tmp_path):
    imgs = [_gray(i) for i in range(3)]
    for i, a in enumerate(imgs):
        Image.fromarray(a).save(tmp_path / f"{i}.png")
    out = load_image_folder(tmp_path)
    assert out.dtype == np.uint8 and out.shape == (3, 6, 5)
    np.testing.assert_array_equal(out, np.stack(imgs))  # PNG is lossless, files read in name order


def test_rgb_png_exact_and_nested_folders(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    imgs = [_rgb(i) for i in range(3)]
    Image.fromarray(imgs[0]).save(tmp_path / "0.png")
    Image.fromarray(imgs[1]).save(tmp_path / "a" / "1.PNG")
    Image.fromarray(imgs[2]).save(tmp_path / "a" / "b" / "2.png")
    out = load_image_folder(tmp_path)
    assert out.shape == (3, 6, 5, 3)
    np.testing.assert_array_equal(out, np.stack(imgs))


def test_jpeg_grayscale_and_rgb_close_to_the_original(tmp_path):
    smooth = np.add.outer(np.arange(16), np.arange(16)).astype(np.uint8) * 8  # (16, 16) gradient: JPEG-friendly
    Image.fromarray(smooth).save(tmp_path / "g.jpg", quality=95)
    out = load_image_folder(tmp_path)
    assert out.shape == (1, 16, 16)
    assert np.abs(out[0].astype(int) - smooth).mean() < 3
    rgb_dir = tmp_path / "rgb"
    rgb_dir.mkdir()
    color = np.stack([smooth, smooth[::-1], np.full_like(smooth, 90)], axis=-1)
    Image.fromarray(color).save(rgb_dir / "c.jpeg", quality=95)
    out = load_image_folder(rgb_dir)
    assert out.shape == (1, 16, 16, 3)
    assert np.abs(out[0].astype(int) - color).mean() < 4


def test_channels_option_converts(tmp_path):
    rgb = _rgb(0)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(_gray(1)).save(tmp_path / "b.png")
    out = load_image_folder(tmp_path, channels=1)
    assert out.shape == (2, 6, 5)
    # Pillow's ITU-R 601-2 luma: L = R*299/1000 + G*587/1000 + B*114/1000
    r, g, b = rgb.astype(float).transpose(2, 0, 1)
    luma = (r * 299 + g * 587 + b * 114) / 1000
    assert np.abs(out[0].astype(float) - luma).max() <= 1
    out = load_image_folder(tmp_path)  # the first image (RGB) decides: the grayscale one is replicated
    assert out.shape == (2, 6, 5, 3)
    np.testing.assert_array_equal(out[1, ..., 0], out[1, ..., 2])


def test_resize_option_handles_mixed_sizes(tmp_path):
    Image.fromarray(np.full((10, 10), 200, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((7, 13), 50, np.uint8)).save(tmp_path / "b.png")
    out = load_image_folder(tmp_path, resolution=8)
    assert out.shape == (2, 8, 8)
    np.testing.assert_array_equal(out[0], 200)  # resizing a constant image keeps it constant
    np.testing.assert_array_equal(out[1], 50)


def test_mixed_sizes_without_resize_is_an_error(tmp_path):
    Image.fromarray(_gray(0, (6, 5))).save(tmp_path / "a.png")
    Image.fromarray(_gray(1, (8, 5))).save(tmp_path / "b.png")
    with pytest.raises(GankitError, match=r"b\.png: size 5x8 differs from the first image's 5x6; "
                                          r"pass --data\.resolution N to resize all images"):
        load_image_folder(tmp_path)


def test_empty_folder_and_missing_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(GankitError, match=r"no images found \(looked for .*\.png"):
        load_image_folder(tmp_path)
    with pytest.raises(GankitError, match=r"nothere: not a folder"):
        load_image_folder(tmp_path / "nothere")


def test_junk_with_an_image_suffix_is_named(tmp_path):
    Image.fromarray(_gray(0)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"this is not a PNG at all")
    with pytest.raises(GankitError, match=r"b\.png: not an image Pillow can read") as e:
        load_image_folder(tmp_path)
    assert "\n" not in str(e.value)


def test_truncated_image_is_named(tmp_path):
    Image.fromarray(_rgb(0, (64, 64))).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "a.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(GankitError, match=r"a\.png: cannot read image \(.+\); remove or replace it") as e:
        load_image_folder(tmp_path)
    assert "\n" not in str(e.value)


def test_hidden_files_are_skipped(tmp_path):
    Image.fromarray(_gray(0)).save(tmp_path / "a.png")
    (tmp_path / "._a.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble metadata")
    (tmp_path / ".thumbs").mkdir()
    Image.fromarray(_gray(1, (3, 3))).save(tmp_path / ".thumbs" / "a.png")
    out = load_image_folder(tmp_path)
    np.testing.assert_array_equal(out, _gray(0)[None])


def test_sixteen_bit_grayscale_keeps_its_range(tmp_path):
    a16 = (np.arange(30, dtype=np.uint16).reshape(6, 5) * 2000)
    Image.fromarray(a16).save(tmp_path / "a.png")
    out = load_image_folder(tmp_path)
    np.testing.assert_array_equal(out[0], (a16 >> 8).astype(np.uint8))


def test_folder_dataset_through_load_dataset(tmp_path):
    for i in range(4):
        Image.fromarray(_rgb(i, (9, 9))).save(tmp_path / f"{i}.png")
    ds = load_dataset(DataConfig(name="folder", dir=str(tmp_path), resolution=8, channels=1))
    assert ds.images.shape == (4, 1, 8, 8) and ds.labels is None and ds.num_classes == 0
    ds = load_dataset(DataConfig(name="folder", dir=str(tmp_path)))
    assert ds.images.shape == (4, 3, 9, 9)  # (N, C, H, W)
    np.testing.assert_array_equal(ds.images[2].permute(1, 2, 0).numpy(), _rgb(2, (9, 9)))
    with pytest.raises(GankitError, match=r"dataset 'folder' needs a folder: pass data.dir=DIR"):
        load_dataset(DataConfig(name="folder"))


# ---------------------------------------------------------------------------------------------
# any folder of MNIST-format IDX files: --dataset idx --data-dir DIR

def test_idx_folder_any_names_and_gzip_mix(tmp_path):
    train = np.random.default_rng(0).integers(0, 256, (5, 7, 7), dtype=np.uint8)
    test = np.random.default_rng(1).integers(0, 256, (2, 7, 7), dtype=np.uint8)
    write_idx(tmp_path / "emnist-letters-train-images-idx3-ubyte", train)  # plain images ...
    write_idx(tmp_path / "emnist-letters-train-labels-idx1-ubyte.gz", np.arange(5, dtype=np.uint8))  # gz labels
    write_idx(tmp_path / "emnist-letters-test-images-idx3-ubyte.gz", test)
    (tmp_path / "emnist-letters-mapping.txt").write_text("0 65\n")
    ds = load_dataset(DataConfig(name="idx", dir=str(tmp_path)))
    np.testing.assert_array_equal(ds.images[:, 0].numpy(), train)
    assert ds.labels.tolist() == [0, 1, 2, 3, 4] and ds.num_classes == 5
    ds = load_dataset(DataConfig(name="idx", dir=str(tmp_path), split="test"))
    np.testing.assert_array_equal(ds.images[:, 0].numpy(), test)
    assert ds.labels is None  # no test labels file: an unlabelled dataset


def test_idx_folder_errors(tmp_path):
    with pytest.raises(GankitError, match=r"dataset 'idx' needs a folder: pass data.dir=DIR"):
        load_dataset(DataConfig(name="idx"))
    with pytest.raises(GankitError, match=r"data.dir .*nothere is not a folder"):
        load_dataset(DataConfig(name="idx", dir=str(tmp_path / "nothere")))
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(GankitError, match=r"no IDX images file \(train-images-idx3-ubyte\[\.gz\]\) found"):
        load_dataset(DataConfig(name="idx", dir=str(tmp_path)))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((3, 4, 4), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(2, np.uint8))
    with pytest.raises(GankitError, match=r"train-labels-idx1-ubyte\.gz: 2 labels for 3 images"):
        load_dataset(DataConfig(name="idx", dir=str(tmp_path)))


def test_a_folder_too_large_for_the_memory_is_refused_after_its_first_image(tmp_path, monkeypatch):
    for i in range(20):
        Image.fromarray(_gray(i, (256, 256))).save(tmp_path / f"{i:02d}.png")
    monkeypatch.setenv("GANKIT_MEMORY_LIMIT", "1M")
    with pytest.raises(GankitError, match=rf"^{tmp_path}: 20 images of 256x256 would need 2\.5 MB, more than the "
                                          r"1\.0 MB of memory set by GANKIT_MEMORY_LIMIT; use fewer images"):
        load_image_folder(tmp_path)


def test_a_9000x9000_png_is_refused_before_the_run_folder(tmp_path, refused, monkeypatch):
    """It decodes (81 M pixels, under Pillow's bomb limit), but an MLP on it would have 21 G weights."""
    monkeypatch.setenv("GANKIT_MEMORY_LIMIT", "64G")
    imgs = tmp_path / "big"
    imgs.mkdir()
    Image.new("L", (9000, 9000)).save(imgs / "big.png")
    refused(["train", "--dataset", "folder", "--data-dir", imgs, "--batch-size", "1", "--steps", "1", "--out",
             tmp_path / "run"], tmp_path, r"training G and D on data of shape \[1, 9000, 9000\] "
                                          r"\([\d,]+ weights; [\d,]+ layer outputs per batch of 1\) would need")
