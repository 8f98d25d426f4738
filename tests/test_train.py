"""Training end to end on the bundled digits: files, determinism, sampling."""
import math

import numpy as np
import pytest
import torch

import gankit
from gankit.errors import GankitError
from gankit.rundir import read_log


def tiny(**kw):
    over = {"data.name": "digits", "train.steps": 200, "train.progress": False, "train.log_every": 25,
            "train.sample_every": 5, "train.checkpoint_every": 5}
    over.update(kw)
    return gankit.preset("seed").with_overrides(over)


@pytest.fixture(scope="module")
def run200(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    return gankit.train(tiny(), out, log=lambda *_: None)


def test_200_steps_on_digits_writes_a_complete_run_folder(run200):
    d = run200.run_dir
    assert run200.step == 200
    for f in ("config.json", "manifest.json", "log.csv", "checkpoints/last.pt", "samples/final.png",
              "samples/epoch_0005.png", "checkpoints/epoch_0005.pt"):
        assert (d / f).is_file(), f
    log = read_log(d / "log.csv")
    assert log["step"] == [float(s) for s in range(1, 201)]
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert all(math.isfinite(v) for v in log[key])
    assert all(0 <= v <= 1 for v in log["d_real"] + log["d_fake"])
    # digits: 1797 // 100 = 17 steps per epoch
    assert log["epoch"][16] == 1 and log["epoch"][17] == 2
    # D learns something: early D loss is near log 4 - smoothing, later lower
    assert np.mean(log["d_loss"][:5]) > np.mean(log["d_loss"][-20:])


def test_first_step_losses_match_a_hand_written_step():
    """Re-do step 1 of a run with plain torch ops and compare the logged numbers."""
    cfg = tiny(**{"train.steps": 1, "train.log_every": 1})
    import tempfile

    from gankit.data import load_digits, to_unit_range
    from gankit.models import build_discriminator, build_generator
    from gankit.training.loop import epoch_permutation

    with tempfile.TemporaryDirectory() as tmp:
        res = gankit.train(cfg, tmp + "/r", log=lambda *_: None)
        d_loss, g_loss = res.history["d_loss"][0], res.history["g_loss"][0]
    data = load_digits()
    torch.manual_seed(0)
    G, D = build_generator(cfg.model, (1, 8, 8)), build_discriminator(cfg.model, (1, 8, 8))
    idx = epoch_permutation(len(data), 0, 0)[:100]
    real = to_unit_range(data.images[idx])
    z = torch.randn(100, 100, generator=torch.Generator().manual_seed(1))
    fake = G(z)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    dr, df = D(real), D(fake.detach())
    ref_d = bce(dr, torch.full_like(dr, 0.9)) + bce(df, torch.zeros_like(df))
    assert d_loss == pytest.approx(ref_d.item(), rel=1e-5)
    opt = torch.optim.Adam(D.parameters(), lr=1e-3)
    ref_d.backward()
    opt.step()
    gl = D(fake)
    ref_g = bce(gl, torch.ones_like(gl))
    assert g_loss == pytest.approx(ref_g.item(), rel=1e-5)


def test_same_seed_gives_identical_losses_and_samples(tmp_path, run200):
    again = gankit.train(tiny(), tmp_path / "again", log=lambda *_: None)
    assert again.history == run200.history
    a = gankit.load(run200.run_dir).images(8, seed=3)
    b = gankit.load(again.run_dir).images(8, seed=3)
    assert np.array_equal(a, b)
    other = gankit.train(tiny(**{"train.seed": 1, "train.steps": 20}), tmp_path / "other", log=lambda *_: None)
    assert other.history["d_loss"][:20] != run200.history["d_loss"][:20]


def test_load_and_sample(run200, tmp_path):
    g = gankit.load(run200.run_dir)
    imgs = g.images(10, seed=0)
    assert imgs.dtype == np.uint8 and imgs.shape == (10, 8, 8)
    x = g.sample(5, seed=0)
    assert x.shape == (5, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(g.images(3, seed=0), imgs[:3])  # same seed, same first samples
    files = g.save(12, tmp_path / "s.npz")
    arr = np.load(files[0])["images"]
    assert arr.shape == (12, 8, 8) and arr.dtype == np.uint8
    assert np.array_equal(arr, g.images(12, seed=0))
    assert (tmp_path / "s_grid.png").is_file()
    with pytest.raises(GankitError, match="already exists"):
        g.save(12, tmp_path / "s.npz")
    with pytest.raises(GankitError, match="positive integer"):
        g.sample(0)


def test_existing_run_folder_is_refused_without_overwrite(run200):
    with pytest.raises(GankitError, match="already holds files"):
        gankit.train(tiny(), run200.run_dir, log=lambda *_: None)


def test_dataset_smaller_than_a_batch_is_an_error(tmp_path):
    with pytest.raises(GankitError, match="fewer than one batch"):
        gankit.train(tiny(**{"train.batch_size": 5000}), tmp_path / "r", log=lambda *_: None)


def test_a_callback_can_end_the_run_early(tmp_path):
    from gankit.training.loop import Trainer

    tr = Trainer(tiny(**{"train.log_every": 10}), tmp_path / "r", log=lambda *_: None)
    asked = []

    def hook(t):
        if t.step >= 30 and not asked:
            asked.append(t.step)
            t.stop()
    tr.add_callback("on_log", hook)
    res = tr.fit()
    assert res.step == asked[0] < 200 and not res.interrupted  # stops right there, as a normal end
    assert (tmp_path / "r" / "samples" / "final.png").is_file()
    assert len((tmp_path / "r" / "log.csv").read_text().splitlines()) == 1 + res.step


def test_overwrite_removes_the_old_runs_files_and_refuses_while_others_are_there(run200, tmp_path):
    import shutil

    d = tmp_path / "r"
    shutil.copytree(run200.run_dir, d)
    (d / "metrics.jsonl").write_text('{"step": 999}\n')  # an old evaluation must not mix into the new run
    (d / "tensorboard").mkdir()
    (d / "tensorboard" / "events.out.tfevents.1.host.2.0").write_text("x")
    (d / "notes.txt").write_text("mine")
    with pytest.raises(GankitError, match=r"holds files gankit did not write \(notes.txt\)"):
        gankit.train(tiny(**{"train.steps": 5}), d, overwrite=True, log=lambda *_: None)
    assert (d / "metrics.jsonl").exists() and (d / "checkpoints" / "epoch_0005.pt").exists()  # nothing deleted
    (d / "notes.txt").unlink()
    gankit.train(tiny(**{"train.steps": 5}), d, overwrite=True, log=lambda *_: None)
    assert not (d / "metrics.jsonl").exists() and not (d / "tensorboard").exists()
    assert read_log(d / "log.csv")["step"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert sorted(p.name for p in (d / "checkpoints").iterdir()) == ["last.pt"]
