"""Drawn points as a data set like the others: the lab's live modes curve counts their clusters (PacGAN's protocol,
checked against ModeCounter and a by-hand count on the same G samples), and a run the lab saved from them
continues with ``gankit train --resume`` on data drawn from its own points.json (the data layer loads ``drawn``)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from gankit.config import DataConfig
from gankit.data import load_dataset, run_data
from gankit.data.toy import BLOB_STD, drawn_mixture
from gankit.errors import GankitError
from gankit.lab.engine import DATA_SIZE, Lab, LabState
from gankit.metrics.mixtures import ModeCounter, count_modes

# three tight clusters of three points each (neighbours 0.05 apart, far below 6 std = 0.3; clusters 1+ apart)
CENTRES = ((-1.0, 0.0), (1.0, 0.0), (0.0, 1.2))
POINTS = tuple((cx + dx, cy + dy) for cx, cy in CENTRES for dx, dy in ((0.0, 0.0), (0.05, 0.0), (0.0, 0.05)))
CLUSTER = np.repeat(np.arange(len(CENTRES)), 3)  # the cluster of each point, by construction
SEED = 2
STATE = LabState(data="drawn", points=POINTS, g_width=32, d_width=32, seed=SEED)


@torch.no_grad()
def _g_samples(lab: Lab) -> torch.Tensor:
    """G in eval mode on the lab's 2,000 fixed latents, computed here (not through the lab)."""
    G = lab.trainer.G
    G.eval()
    x = G(lab.z_kde).reshape(len(lab.z_kde), 2)
    G.train()
    return x


def test_the_modes_curve_counts_the_clusters_of_drawn_points(tmp_path):
    with Lab(STATE, tmp_path / "work") as lab:
        for steps in (0, 40, 40, 300):  # step 0 (nothing captured) to step 380 (G on the clusters)
            lab.play(steps)
            f = lab.frame()
            fake = _g_samples(lab)
            ref = count_modes(fake, drawn_mixture(POINTS, BLOB_STD))
            # by hand: nearest drawn point within 3 std = 0.15 is high quality; its cluster is captured
            d = cdist(fake.double().numpy(), np.array(POINTS))
            hq = d.min(1) < 3 * BLOB_STD
            clusters = set(CLUSTER[d.argmin(1)[hq]].tolist())
            assert f["num_modes"] == ref["num_modes"] == len(CENTRES)
            assert f["curves"]["modes"][-1] == ref["modes"] == len(clusters)
            assert f["curves"]["hq"][-1] == pytest.approx(100 * ref["high_quality"], abs=1e-4)
            assert ref["high_quality"] == pytest.approx(hq.mean(), abs=1e-12)
    assert len(clusters) >= 2 and f["curves"]["hq"][-1] > 20  # not vacuous: the last frame counts captured clusters
    json.dumps(f, allow_nan=False)


def test_a_generator_on_the_drawn_points_captures_every_cluster():
    """The same counter on the perfect generator: all K clusters, ~98.9 % high quality (1 - e^-4.5)."""
    c = ModeCounter(drawn_mixture(POINTS))
    c.update(torch.from_numpy(drawn_mixture(POINTS).sample(2000, 0)[0]))
    res = c.compute()
    assert (res["modes"], res["num_modes"]) == (3, 3) and res["high_quality"] == pytest.approx(0.9889, abs=0.01)


# -- resuming a run saved from drawn points ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("drawn-resume")
    with Lab(STATE, root / "work") as lab:
        lab.play(20)
        return lab.save(root / "saved"), lab.trainer.data.images.clone()


def test_gankit_train_resume_continues_a_drawn_run_on_its_own_points(saved, tmp_path):
    from gankit.checkpoint import load_checkpoint
    from gankit.training.loop import Trainer

    src, lab_data = saved
    run = tmp_path / "moved-run"  # a copied (moved) run folder still finds its points: data.dir stays unset
    shutil.copytree(src, run)
    assert json.loads((run / "config.json").read_text())["data"]["dir"] is None
    r = subprocess.run([sys.executable, "-m", "gankit", "train", "--resume", str(run), "--steps", "25"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(run)["step"] == 25
    rows = (run / "log.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in rows] == list(range(1, 26))
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["dataset"]["name"] == "drawn" and str(run / "points.json") in manifest["dataset"]["source"]
    assert manifest["dataset"]["size"] == DATA_SIZE
    # the data a resumed run trains on: the lab's own sample (same points, data.size and data.seed) ...
    trainer = Trainer(None, run, resume=True, log=lambda *_: None)
    try:
        data = trainer.data.images
    finally:
        trainer.close()
    assert torch.equal(data, lab_data)
    # ... so every training point lies within 6 std of a saved point
    saved_points = np.array(json.loads((run / "points.json").read_text())["points"])
    assert cdist(data.double().numpy(), saved_points).min(1).max() < 6 * BLOB_STD


def test_resume_into_a_new_folder_keeps_the_points_with_the_run(saved, tmp_path):
    import gankit
    from gankit.checkpoint import load_checkpoint
    from gankit.config import RunConfig

    src, _ = saved
    new = tmp_path / "new"
    cfg = RunConfig.from_dict(load_checkpoint(src)["config"])  # the lab's: train.steps practically endless
    result = gankit.train(cfg.with_overrides({"train.steps": 23}), out=new, resume=src, log=lambda *_: None)
    assert result.step == 23 and load_checkpoint(src)["step"] == 20  # the source run is left as it was
    assert (new / "points.json").read_text() == (src / "points.json").read_text()
    again = gankit.train(cfg.with_overrides({"train.steps": 26}), out=new, resume=True, log=lambda *_: None)
    assert again.step == 26


def test_the_data_layer_loads_drawn_points_from_a_folder(saved, tmp_path):
    src, _ = saved
    ds = load_dataset(DataConfig(name="drawn", dir=str(src), size=1000, seed=7))
    ref = drawn_mixture(POINTS).sample(1000, 7)
    assert ds.name == "drawn" and ds.num_classes == len(POINTS)
    assert np.array_equal(ds.images.numpy(), ref[0]) and np.array_equal(ds.labels.numpy(), ref[1])
    ckpt = src / "checkpoints" / "last.pt"
    assert run_data(DataConfig(name="drawn"), ckpt).dir == str(src)
    assert run_data(DataConfig(name="drawn", dir="elsewhere"), ckpt).dir == "elsewhere"
    assert run_data(DataConfig(name="ring8"), ckpt).dir is None


@pytest.mark.parametrize("content,match", [
    (None, "points.json is missing: a run of drawn points trains on"),
    ("{not json", "unreadable drawn points"),
    ('{"std": 0.05, "points": []}', "points must be a list of 1 to"),
])
def test_a_missing_or_corrupt_points_file_stops_a_resume_in_one_line(saved, tmp_path, content, match):
    run = tmp_path / "run"
    shutil.copytree(saved[0], run)
    if content is None:
        (run / "points.json").unlink()
    else:
        (run / "points.json").write_text(content)
    r = subprocess.run([sys.executable, "-m", "gankit", "train", "--resume", str(run), "--steps", "22"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gankit: error:") and match in err[0], r.stderr


def test_drawn_without_a_folder_is_refused_before_training():
    with pytest.raises(GankitError, match=r"dataset 'drawn' needs a folder: pass .*points\.json of a run saved"):
        load_dataset(DataConfig(name="drawn"))
