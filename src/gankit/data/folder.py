"""A folder of images (PNG/JPEG/BMP/WebP, searched recursively) as one uint8 array."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import GankitError
from ..memory import check_fits

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"}
# what Pillow raises on damaged files while decoding (besides UnidentifiedImageError when opening)
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error)


def load_image_folder(folder: Path, resolution: int | None = None, channels: int | None = None) -> np.ndarray:
    """Read every image below ``folder``; returns uint8 (N, H, W) for grayscale or (N, H, W, 3) for RGB.

    ``resolution``: resize each image to a square of this size (Lanczos); without it all images must share
    one size. ``channels``: 1 or 3; without it the first image decides (grayscale stays grayscale).
    """
    from PIL import Image, UnidentifiedImageError

    if not folder.is_dir():
        raise GankitError(f"{folder}: not a folder")
    # hidden entries are skipped: macOS copies leave '._name.png' metadata files that are not images
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not paths:
        raise GankitError(f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    arrays = []
    size = None
    for p in paths:
        try:
            with Image.open(p) as im:
                im.load()
                if im.mode.startswith("I;16"):  # 16-bit grayscale: keep the high byte (convert("L") clips)
                    im = Image.fromarray((np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8))
                if channels is None:
                    channels = 1 if im.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
                im = im.convert("L" if channels == 1 else "RGB")
                if resolution is not None:
                    im = im.resize((resolution, resolution), Image.Resampling.LANCZOS)
                arr = np.asarray(im, dtype=np.uint8)
        except UnidentifiedImageError:
            raise GankitError(f"{p}: not an image Pillow can read; remove it or move it out of the folder") from None
        except _DECODE_ERRORS + (Image.DecompressionBombError,) as e:
            raise GankitError(f"{p}: cannot read image ({' '.join(str(e).split())}); remove or replace it") from None
        if size is None:
            size = arr.shape
            # the decoded images, then their stacked copy
            check_fits(2 * len(paths) * arr.nbytes, f"{folder}: {len(paths):,} images of {arr.shape[1]}x"
                       f"{arr.shape[0]}", "use fewer images or a smaller --data.resolution")
        elif arr.shape != size:
            raise GankitError(f"{p}: size {arr.shape[1]}x{arr.shape[0]} differs from the first image's "
                              f"{size[1]}x{size[0]}; pass --data.resolution N to resize all images")
        arrays.append(arr)
    return np.stack(arrays)
