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

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = 0, batch_size: int = 1000, z: torch.Tensor | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` samples as float32 (n, C, H, W) in [-1, 1]. The same ``seed`` gives the same samples.

        A conditional G (``model.cond`` not none) takes ``labels``, int64 (n,) in [0, num_classes); without
        them sample i gets class i mod num_classes, or for a self-conditioned G (``data.clusters``) a cluster in
        proportion to its share of the training images (:func:`gankit.data.clusters.spread_labels`)."""
        if z is None:
            _check_count(n)
            check_fits(n * math.prod(self.img_shape) * 9, f"{n:,} samples of shape {list(self.img_shape)}",
                       "ask for fewer samples")  # float32 batches, their concatenation, then uint8 images
            z = latents(n, self.z_dim, seed)
        k = self.config.model.num_classes if self.config.model.cond != "none" else 0
        if k:
            if labels is None:
                labels = (spread_labels(self.label_shares, 0, z.shape[0]) if self.label_shares is not None
                          else torch.arange(z.shape[0]) % k)
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

    def images(self, n: int, seed: int | None = 0) -> np.ndarray:
        """``n`` samples as uint8 numpy: (n, H, W) for grayscale, (n, H, W, C) for colour."""
        if len(self.img_shape) != 3:
            raise GankitError(f"{self.path}: this G draws points of shape {self.img_shape}, not images; use "
                              f"gankit.load(...).sample(n) for the float points")
        x = to_numpy_uint8(self.sample(n, seed))  # (n, C, H, W)
        return x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)

    def save(self, n: int, out: str | os.PathLike, seed: int | None = 0, overwrite: bool = False) -> list[Path]:
        """Write ``n`` samples to ``out``: an ``.npz`` (key ``images``, uint8) plus ``NAME_grid.png`` beside it,
        or a folder of PNGs plus ``FOLDER_grid.png`` beside it (so the folder holds only samples: an image-folder
        dataset); points models write ``points`` (float32) and a scatter plot. Returns the files written."""
        out = Path(out).expanduser()
        if out.exists() and not overwrite and (out.is_file() or any(out.iterdir())):
            raise GankitError(f"{out} already exists; choose another path or pass "
                              f"{option('--overwrite', 'overwrite=True')}")
        if len(self.img_shape) != 3:
            return self._save_points(n, out, seed)
        named = out if out.name not in ("", ".", "..") else out.resolve()
        grid = named.with_name((named.stem if out.suffix == ".npz" else named.name) + "_grid.png")
        if grid.exists() and not overwrite:
            raise GankitError(f"{grid} already exists; choose another path or pass "
                              f"{option('--overwrite', 'overwrite=True')}")
        imgs = self.images(n, seed)
        chw = imgs[:, None] if imgs.ndim == 3 else imgs.transpose(0, 3, 1, 2)
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


    def _save_points(self, n: int, out: Path, seed: int | None) -> list[Path]:
        """A points model (toy mixtures): ``points`` float32 (n, D) in an .npz, and a scatter plot beside it."""
        if out.suffix != ".npz":
            raise GankitError(f"{option(f'--out {out}', f'out={str(out)!r}')}: this G draws points, not images; "
                              f"write them to a .npz file")
        from .data.toy import save_points_png

        pts = self.sample(n, seed)
        return [_write_npz(out, points=pts.reshape(n, -1).numpy().astype(np.float32)),
                save_points_png(pts, out.with_name(out.stem + "_scatter.png"))]


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
