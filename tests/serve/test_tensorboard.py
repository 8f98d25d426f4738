"""--tensorboard: the event files read back (TensorBoard's own reader) equal what the run logged."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

from gankit import cli
from gankit.serve.report import read_log_tolerant

pytest.importorskip("tensorboard", reason="TensorBoard logging needs the [tensorboard] extra")


def read_events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_cli_tensorboard_round_trip_across_a_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--dataset", "digits", "--steps", "20", "--train.log_every", "10", "--no-progress",
                     "--tensorboard", "--out", str(out)]) == 0
    assert cli.main(["train", "--resume", str(out), "--steps", "40", "--no-progress", "--tensorboard"]) == 0
    acc = read_events(out / "tensorboard")
    assert {"loss/D", "loss/G", "D/real", "D/fake", "speed/img_per_s"} <= set(acc.Tags()["scalars"])
    log = read_log_tolerant(out / "log.csv")
    # digits: 1797 images / batch 100 = 17 steps per epoch. A host sync (one scalar event) comes after 10
    # buffered steps, at each epoch end (which empties the buffer) and at the last step; the resumed run
    # starts with an empty buffer at step 20, and nothing logged before the checkpoint is purged.
    syncs = [10, 17, 20, 30, 34, 40]
    for tag, col in (("loss/D", "d_loss"), ("loss/G", "g_loss"), ("D/real", "d_real"), ("D/fake", "d_fake")):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == syncs
        expect = [log[col][log["step"].index(s)] for s in syncs]
        np.testing.assert_allclose([e.value for e in events], expect, rtol=1e-5)  # log.csv keeps 6 digits
    images = acc.Images("samples/fixed_z")
    assert [e.step for e in images] == [17, 34]
    for e, epoch in zip(images, (1, 2)):
        tb = np.asarray(Image.open(io.BytesIO(e.encoded_image_string)).convert("L"))
        png = np.asarray(Image.open(out / "samples" / f"epoch_{epoch:04d}.png"))
        scale = png.shape[0] // tb.shape[0]  # the PNG on disk is upscaled by nearest neighbour
        np.testing.assert_array_equal(png[::scale, ::scale], tb)


def test_missing_tensorboard_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    code = cli.main(["train", "--dataset", "digits", "--steps", "5", "--no-progress", "--tensorboard",
                     "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'gankit[tensorboard]'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
