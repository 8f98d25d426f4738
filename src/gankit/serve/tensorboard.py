"""TensorBoard logging as a training callback (``gankit train --tensorboard``).

Writes standard event files (``torch.utils.tensorboard``, which needs the ``tensorboard`` package: the
optional extra ``gankit[tensorboard]``) into ``RUN_DIR/tensorboard``; view them with
``tensorboard --logdir runs``. Scalars: ``loss/D``, ``loss/G``, ``D/real`` (mean D(x)), ``D/fake``
(mean D(G(z))) and ``speed/img_per_s`` at every host sync (``train.log_every`` steps); images: the fixed-z
sample grid at the end of every epoch, the same picture as ``samples/epoch_NNNN.png`` without upscaling.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import GankitError
from ..images import make_grid, to_numpy_uint8

INSTALL_HINT = "--tensorboard needs the tensorboard package: pip install 'gankit[tensorboard]'"
SCALARS = (("loss/D", "d_loss"), ("loss/G", "g_loss"), ("D/real", "d_real"), ("D/fake", "d_fake"),
           ("speed/img_per_s", "img_per_s"))


class TensorBoardLogger:
    """Usage: ``TensorBoardLogger().attach(trainer)`` before ``trainer.fit()``.

    ``log_dir``: where event files go (default ``trainer.run_dir / "tensorboard"``). On resume, events after
    the checkpoint's step are purged, so the curves continue without a fold.
    """

    def __init__(self, log_dir: str | Path | None = None, images: bool = True):
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError:
            raise GankitError(INSTALL_HINT) from None
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.images = images
        self.writer = None

    def attach(self, trainer) -> "TensorBoardLogger":
        from torch.utils.tensorboard import SummaryWriter

        if self.log_dir is None:
            self.log_dir = Path(trainer.run_dir) / "tensorboard"
        # the checkpoint holds the state after step T: events up to T stand, later ones are redone
        purge = trainer.step + 1 if trainer.step > 0 else None
        self.writer = SummaryWriter(str(self.log_dir), purge_step=purge)
        trainer.add_callback("on_log", self.on_log)
        trainer.add_callback("on_epoch_end", self.on_epoch_end)
        trainer.add_callback("on_train_end", self.on_train_end)
        return self

    def on_log(self, trainer) -> None:
        s = trainer.last_stats
        for tag, key in SCALARS:
            if key in s:
                self.writer.add_scalar(tag, float(s[key]), int(s["step"]))

    def on_epoch_end(self, trainer) -> None:
        if not self.images:
            return
        grid = make_grid(to_numpy_uint8(trainer.sample_fixed()))  # (H, W) or (H, W, 3) uint8
        self.writer.add_image("samples/fixed_z", grid, trainer.step, dataformats="HW" if grid.ndim == 2 else "HWC")

    def on_train_end(self, trainer) -> None:
        self.writer.flush()
        self.writer.close()
