"""A trained generator rebuilt from a checkpoint (``gankit.load``) and the latent draw every sampler shares.

This module reads checkpoints and builds G; it imports nothing of the trainer, so evaluation, the studio and
sampling load without it.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint, load_state_strict, resolve_checkpoint
from .config import RunConfig
from .data.clusters import spread_labels
from .device import resolve_device
from .errors import GankitError, option
from .images import save_grid, to_numpy_uint8
from .io import atomic_write
from .memory import check_fits, check_sampling_fits
from .models import build_generator, without_unread

MAX_SAMPLES = 1_000_000


class LoadedGenerator:
    """A trained G rebuilt from a checkpoint: samples tensors or images.

    ``G``: the module (eval mode); ``config``: its :class:`RunConfig`; ``img_shape``: (C, H, W).
    """

    def __init__(self, state: dict, path: Path, device: str | torch.device = "cpu"):
        self.path = path
        self.config = RunConfig.from_dict(state["config"])
        self.img_shape = tuple(state["img_shape"])
        self.step = int(state.get("step", 0))
        self.device = resolve_device(device)
        model = without_unread(self.config.model)  # a key its family ignored, in a checkpoint from before the refusal
        check_sampling_fits(model, self.img_shape, str(path), self.device)  # before allocating G
        self.G = build_generator(model, self.img_shape)
        # G_ema (an average of G's weights, kept when optim.ema_beta > 0) samples better than G: prefer it
        self.weights = "G_ema" if "G_ema" in state else "G"
        load_state_strict(self.G, state[self.weights], self.weights, path)
        if not all(torch.isfinite(t).all() for t in self.G.state_dict().values() if t.is_floating_point()):
            raise GankitError(f"{path}: the {self.weights} weights hold NaN/inf (the run diverged); its samples "
                              f"would be blank: use an earlier checkpoint from the run's checkpoints/ folder")
        self.G.to(self.device).eval()
        # data.clusters (self-conditioning): the clusters' shares of the training images, which sampling follows
        shares = state.get("label_shares")
        self.label_shares = torch.tensor(shares, dtype=torch.float64) if shares is not None else None

    @property
    def z_dim(self) -> int:
        return self.config.model.z_dim

    @property
    def num_classes(self) -> int:
        """The classes a conditional G takes (for a self-conditioned run, ``data.clusters``: its k-means
        clusters, 0 the largest); 0 for an unconditional G."""
        return self.config.model.num_classes if self.config.model.cond != "none" else 0

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = 0, batch_size: int = 1000, z: torch.Tensor | None = None,
               labels: int | torch.Tensor | None = None, scale: float = 1.0) -> torch.Tensor:
        """``n`` samples as float32 (n, C, H, W) in [-1, 1]. The same ``seed`` gives the same samples.

        ``scale`` multiplies the latents (truncation towards the mean of z: below 1, more typical and less varied
        samples; the studio's "latent scale"), from 0 to 3. A conditional G (``model.cond`` not none) takes
        ``labels``: one class index for every sample, or int64 (n,) in [0, num_classes); without them sample i
        gets class i mod num_classes, or for a self-conditioned G (``data.clusters``) a cluster in proportion to
        its share of the training images (:func:`gankit.data.clusters.spread_labels`). An unconditional G refuses
        ``labels``."""
        _check_scale(scale)
        if z is None:
            _check_count(n)
            check_fits(n * math.prod(self.img_shape) * 9, f"{n:,} samples of shape {list(self.img_shape)}",
                       "ask for fewer samples")  # float32 batches, their concatenation, then uint8 images
            z = latents(n, self.z_dim, seed)
        if scale != 1.0:
            z = z * scale
        k = self.num_classes
        one_class = isinstance(labels, (int, np.integer))
        if labels is not None and (not k or one_class):
            self._check_label(labels)
        if k:
            if labels is None:
                labels = (spread_labels(self.label_shares, 0, z.shape[0]) if self.label_shares is not None
                          else torch.arange(z.shape[0]) % k)
            elif one_class:
                labels = torch.full((z.shape[0],), int(labels), dtype=torch.long)
            labels = torch.as_tensor(labels).long()
            bad_range = labels.numel() > 0 and not 0 <= int(labels.min()) <= int(labels.max()) < k
            if labels.shape != (z.shape[0],) or bad_range:
                raise GankitError(f"labels must be {z.shape[0]} class indices in [0, {k}), got shape "
                                  f"{tuple(labels.shape)}")
            out = [self.G(zb.to(self.device), yb.to(self.device)).cpu()
                   for zb, yb in zip(z.split(batch_size), labels.split(batch_size))]
        else:
            out = [self.G(zb.to(self.device)).cpu() for zb in z.split(batch_size)]
        return torch.cat(out) if out else torch.empty(0, *self.img_shape)

    def images(self, n: int, seed: int | None = 0, label: int | None = None, scale: float = 1.0) -> np.ndarray:
        """``n`` samples as uint8 numpy: (n, H, W) for grayscale, (n, H, W, C) for colour; ``label`` and
        ``scale`` as in :meth:`sample` (``label``: one class for all)."""
        if len(self.img_shape) != 3:
            raise GankitError(f"{self.path}: this G draws points of shape {self.img_shape}, not images; use "
                              f"gankit.load(...).sample(n) for the float points")
        return _hwc(to_numpy_uint8(self.sample(n, seed, labels=label, scale=scale)))

    def save(self, n: int, out: str | os.PathLike, seed: int | None = 0, overwrite: bool = False,
             label: int | None = None, scale: float = 1.0) -> list[Path]:
        """Write ``n`` samples to ``out``: an ``.npz`` (key ``images``, uint8) plus ``NAME_grid.png`` beside it,
        or a folder of PNGs plus ``FOLDER_grid.png`` beside it (so the folder holds only samples: an image-folder
        dataset); points models write ``points`` (float32) and a scatter plot. ``label`` (one class for all) and
        ``scale`` as in :meth:`sample`. Returns the files written."""
        _check_scale(scale)  # bad options fail before anything is written
        if label is not None:
            self._check_label(label)
        out = Path(out).expanduser()
        if out.exists() and not overwrite and (out.is_file() or any(out.iterdir())):
            raise _exists(out)
        if len(self.img_shape) != 3:
            return self._save_points(n, out, seed, label, scale)
        named = out if out.name not in ("", ".", "..") else out.resolve()
        grid = named.with_name((named.stem if out.suffix == ".npz" else named.name) + "_grid.png")
        if grid.exists() and not overwrite:
            raise _exists(grid)
        imgs = self.images(n, seed, label, scale)
        chw = _chw(imgs)
        grid_n = min(n, 64)
        written = []
        if out.suffix == ".npz":
            written.append(_write_npz(out, images=imgs))
            written.append(save_grid(chw[:grid_n], grid))
        elif out.suffix:
            raise GankitError(f"{option(f'--out {out}', f'out={str(out)!r}')}: use a .npz file or a folder (no suffix)")
        else:
            from .images import png_bytes
            from .io import atomic_write_bytes

            width = len(str(n - 1))
            for i in range(n):
                written.append(atomic_write_bytes(out / f"{i:0{width}d}.png", png_bytes(imgs[i])))
            written.append(save_grid(chw[:grid_n], grid))
        return written


    def interpolate(self, seed_a: int, seed_b: int, steps: int = 10, mode: str = "slerp", scale: float = 1.0,
                    label: int | None = None) -> np.ndarray:
        """``steps`` uint8 images (2 to 1,024, laid out as :meth:`images`) along the latent path from seed_a's
        first latent to seed_b's, both ends included: ``mode`` "slerp" (along the sphere Gaussian latents
        concentrate near, the default) or "lerp" (a straight line). ``scale`` as in :meth:`sample`. A
        conditional G draws every step in class ``label`` (default 0, as the studio's interpolation)."""
        if len(self.img_shape) != 3:
            raise GankitError(f"{self.path}: this G draws points of shape {self.img_shape}, not images: there is "
                              f"no picture of a path between two of them")
        _check_interpolation(steps, mode)
        _check_scale(scale)
        if label is not None or self.num_classes:
            label = 0 if label is None else label
            self._check_label(label)
        z = interpolation_latents(self.z_dim, seed_a, seed_b, steps, scale, mode)
        return _hwc(to_numpy_uint8(self.sample(steps, None, z=z, labels=label)))

    def save_interpolation(self, out: str | os.PathLike, seed_a: int, seed_b: int, steps: int = 10,
                           mode: str = "slerp", scale: float = 1.0, label: int | None = None,
                           frame_ms: int = 100, zoom: int = 1, overwrite: bool = False) -> Path:
        """Write :meth:`interpolate`'s images to ``out``: ``.png``, one strip left to right (the studio's
        ``/api/interp.png``); ``.gif``, a loop that plays there and back, ``frame_ms`` (20 to 2,000) per frame
        (``/api/interp.gif``); both upscaled ``zoom`` (1 to 16) times; ``.npz``, the images (key ``images``,
        uint8)."""
        out = Path(out).expanduser()
        if out.suffix not in (".png", ".gif", ".npz"):
            raise GankitError(f"{option(f'--out {out}', f'out={str(out)!r}')}: an interpolation is written as a "
                              f".png strip, a .gif loop or an .npz of its images")
        if isinstance(frame_ms, bool) or not isinstance(frame_ms, int) or not 20 <= frame_ms <= 2000:
            raise GankitError(f"the frame time must be 20 to 2000 ms, got {frame_ms!r}")
        if isinstance(zoom, bool) or not isinstance(zoom, int) or not 1 <= zoom <= 16:
            raise GankitError(f"the zoom must be a whole number from 1 to 16, got {zoom!r}")
        if out.exists() and not overwrite:
            raise _exists(out)
        imgs = self.interpolate(seed_a, seed_b, steps, mode, scale, label)
        if out.suffix == ".npz":
            return _write_npz(out, images=imgs)
        from .images import gif_bytes, make_grid, png_bytes
        from .io import atomic_write_bytes

        chw = _chw(imgs)
        if out.suffix == ".gif":
            return atomic_write_bytes(out, gif_bytes(chw, zoom, frame_ms))
        return atomic_write_bytes(out, png_bytes(make_grid(chw, steps), scale=zoom))

    def _check_label(self, label: int) -> None:
        k = self.num_classes
        if not k:
            raise GankitError(f"{self.path}: this G is unconditional (model.cond none): it takes no class label")
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < k:
            raise GankitError(f"{self.path}: class {label!r} is out of range: this G takes classes 0 to {k - 1}")

    def _save_points(self, n: int, out: Path, seed: int | None, label: int | None, scale: float) -> list[Path]:
        """A points model (toy mixtures): ``points`` float32 (n, D) in an .npz, and a scatter plot beside it."""
        if out.suffix != ".npz":
            raise GankitError(f"{option(f'--out {out}', f'out={str(out)!r}')}: this G draws points, not images; "
                              f"write them to a .npz file")
        from .data.toy import save_points_png

        pts = self.sample(n, seed, labels=label, scale=scale)
        return [_write_npz(out, points=pts.reshape(n, -1).numpy().astype(np.float32)),
                save_points_png(pts, out.with_name(out.stem + "_scatter.png"))]


def _exists(path: Path) -> GankitError:
    return GankitError(f"{path} already exists; choose another path or pass {option('--overwrite', 'overwrite=True')}")


def _hwc(x: np.ndarray) -> np.ndarray:
    """uint8 (n, C, H, W) -> the layout :meth:`LoadedGenerator.images` returns: (n, H, W) or (n, H, W, C)."""
    return x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)


def _chw(imgs: np.ndarray) -> np.ndarray:
    """:func:`_hwc`'s inverse: (n, H, W) or (n, H, W, C) -> (n, C, H, W), as the grid and GIF writers take."""
    return imgs[:, None] if imgs.ndim == 3 else imgs.transpose(0, 3, 1, 2)


def _write_npz(out: Path, **arrays: np.ndarray) -> Path:
    import io as _io

    def write(f):
        buf = _io.BytesIO()
        np.savez_compressed(buf, **arrays)
        f.write(buf.getvalue())
    return atomic_write(out, write)


LATENT_BLOCK = 64


def latents(n: int, z_dim: int, seed: int | None = 0) -> torch.Tensor:
    """``n`` latent vectors z ~ N(0, I), float32 (n, z_dim), reproducible per sample: the first k of
    ``latents(n, ..., seed)`` equal ``latents(k, ..., seed)`` (drawn in seeded blocks of 64)."""
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    blocks = []
    for j in range((n + LATENT_BLOCK - 1) // LATENT_BLOCK):
        g = torch.Generator().manual_seed((seed * 1_000_003 + j) % (2**63))
        blocks.append(torch.randn(LATENT_BLOCK, z_dim, generator=g))
    return torch.cat(blocks)[:n] if blocks else torch.empty(0, z_dim)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows ``a`` and ``b`` (1, D) at ``t`` (T,) -> (T, D).

    Gaussian latents concentrate near a sphere; a straight line between two of them passes through
    atypically short vectors, the arc does not (White 2016, "Sampling generative networks", Sec. 2.3).
    """
    a64, b64, t64 = a.double(), b.double(), t.double()[:, None]
    cos = (a64 * b64).sum() / (a64.norm() * b64.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:  # (anti)parallel or equal: the arc is the line
        return ((1 - t64) * a64 + t64 * b64).float()
    so = torch.sin(omega)
    return (torch.sin((1 - t64) * omega) / so * a64 + torch.sin(t64 * omega) / so * b64).float()


def interpolation_latents(z_dim: int, seed_a: int, seed_b: int, steps: int, scale: float = 1.0,
                          mode: str = "slerp") -> torch.Tensor:
    """(steps, z_dim) latents from seed_a's first latent to seed_b's, both ends included."""
    a = latents(1, z_dim, seed_a) * scale
    b = latents(1, z_dim, seed_b) * scale
    t = torch.linspace(0.0, 1.0, steps)
    if mode == "lerp":
        return (1 - t)[:, None] * a + t[:, None] * b
    return slerp(a, b, t)


MAX_SCALE = 3.0  # the studio's bound too (serve/params.py)


def _check_scale(scale: float) -> None:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= MAX_SCALE:
        raise GankitError(f"the latent scale must be a number from 0 to {MAX_SCALE:g} (1: untruncated), got {scale!r}")


MAX_INTERPOLATION_STEPS = 1024


def _check_interpolation(steps: int, mode: str) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= MAX_INTERPOLATION_STEPS:
        raise GankitError(f"an interpolation takes 2 to {MAX_INTERPOLATION_STEPS} steps (both ends included), "
                          f"got {steps!r}")
    if mode not in ("slerp", "lerp"):
        raise GankitError(f"interpolation mode {mode!r}: use slerp (along the sphere) or lerp (a straight line)")


def _check_count(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise GankitError(f"the number of samples must be a positive integer, got {n!r}")
    if n > MAX_SAMPLES:
        raise GankitError(f"{n} samples is more than gankit generates at once ({MAX_SAMPLES}); ask for fewer")


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedGenerator:
    """Rebuild the generator of a run folder or checkpoint file (no code is unpickled)."""
    device = resolve_device(device)  # a bad --device fails before the file is read
    p = resolve_checkpoint(path)
    return LoadedGenerator(load_checkpoint(p), p, device)
