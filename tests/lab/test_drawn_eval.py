"""A run the lab saves from drawn points is scored by ``gankit eval`` against its own points (issue #20): the numbers
against reference computations (scipy's sqrtm for FD, brute-force k-NN balls for precision/recall, clusters by
hand) and closed forms (FD of a cloud against itself 0, against a shifted copy the squared shift; KL of a
generator stuck on one cluster the log of the cluster's share), and one-line errors for a missing or corrupt
points file."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.spatial.distance import cdist

from gankit import cli
from gankit.config import DataConfig
from gankit.data.toy import drawn_mixture
from gankit.lab.engine import Lab, LabState

# (0, 0) and (0.1, 0) are 0.1 apart, closer than 6 std = 0.3: one cluster; three clusters of shares 2/4, 1/4, 1/4
POINTS = ((0.0, 0.0), (0.1, 0.0), (1.0, 1.0), (-1.0, 0.5))
SEED = 3
TEST_SEED = SEED + 1  # the real test split's seed (gankit.metrics.points)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("drawn")
    with Lab(LabState(data="drawn", points=POINTS, g_width=32, d_width=32, seed=SEED), root / "work") as lab:
        lab.play(30)
        return lab.save(root / "saved")


def _real(n: int) -> np.ndarray:
    return drawn_mixture(POINTS).sample(n, TEST_SEED)[0].astype(np.float64)


def _fd(x: np.ndarray, y: np.ndarray) -> float:
    """FD by the textbook formula with scipy's general sqrtm (independent of gankit's eigh route)."""
    m1, m2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))


def _precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    def radii(a):
        return np.sort(cdist(a, a), 1)[:, k]  # column 0 is the point itself
    precision = (cdist(fake, real) <= radii(real)[None]).any(1).mean()
    recall = (cdist(real, fake) <= radii(fake)[None]).any(1).mean()
    return float(precision), float(recall)


def test_save_keeps_the_drawn_points_in_the_run_folder(saved):
    doc = json.loads((saved / "points.json").read_text())
    assert doc["std"] == 0.05 and [tuple(p) for p in doc["points"]] == list(POINTS)


def test_gankit_eval_scores_the_run_against_its_own_points(saved, capsys):
    from gankit import load
    from gankit.metrics import generator_sampler

    out = saved / "eval.json"
    assert cli.main(["eval", str(saved), "--metrics", "modes2d,fd2k,pr2k_k3", "--no-floor", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dataset drawn" in text and "evaluator: points:drawn (no classifier)" in text
    assert "note: modes are the 3 clusters of the 4 drawn points" in text
    m = json.loads(out.read_text())["metrics"]
    g = load(saved)
    sample = generator_sampler(g.G, g.z_dim, seed=0)
    fake = torch.cat([sample(500) for _ in range(5)]).double().numpy()  # the CLI's batches of 500
    real = _real(2500)  # the real side holds the largest protocol's count (modes2d: 2,500)
    assert m["fd2k"]["fd"] == pytest.approx(_fd(fake[:2000], real), rel=1e-6, abs=1e-9)
    p, r = _precision_recall(real[:2000], fake[:2000])
    assert (m["pr2k_k3"]["precision"], m["pr2k_k3"]["recall"]) == (p, r)
    # modes by hand: nearest point, within 3 std = 0.15, cluster of that point
    d = cdist(fake, np.array(POINTS))
    hq = d.min(1) < 0.15
    clusters = {(0, 0, 1, 2)[i] for i in d.argmin(1)[hq]}
    assert (m["modes2d"]["modes"], m["modes2d"]["num_modes"]) == (len(clusters), 3)
    assert m["modes2d"]["high_quality"] == pytest.approx(hq.mean())


class Replay(torch.nn.Module):
    """A "generator" returning the rows of ``x`` in order, whatever z: scores of known point clouds."""

    def __init__(self, x: torch.Tensor):
        super().__init__()
        self.x, self.pos = x.float(), 0
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z):
        self.pos += len(z)
        return self.x[self.pos - len(z):self.pos]


def _score(saved, x: np.ndarray, metrics: str) -> dict:
    from gankit.metrics import Scorer

    data = DataConfig(name="drawn", dir=str(saved), seed=SEED)
    return Scorer(metrics, floor=False).score_generator(Replay(torch.from_numpy(x)), 2, data)["metrics"]


def test_the_real_points_against_themselves_and_shifted_give_the_closed_forms(saved):
    real = _real(10_000)
    same = _score(saved, real, "fd10k,pr10k_k3,dc10k_k5,kid10k")
    assert abs(same["fd10k"]["fd"]) < 1e-9
    assert same["pr10k_k3"]["precision"] == same["pr10k_k3"]["recall"] == 1.0
    assert same["dc10k_k5"]["coverage"] == 1.0
    assert abs(same["kid10k"]["kid"]) < 3 * same["kid10k"]["kid_std"]  # unbiased: 0 within its spread
    shift = np.array([0.3, -0.4])
    moved = _score(saved, real + shift, "fd10k,kid10k")
    assert moved["fd10k"]["fd"] == pytest.approx(0.25, rel=1e-6)  # same covariance: FD = |shift|^2
    assert moved["kid10k"]["kid"] > 10 * moved["kid10k"]["kid_std"]


@pytest.mark.parametrize("where,kl", [((1.0, 1.0), math.log(4)), ((0.05, 0.0), math.log(2))])
def test_a_generator_on_one_cluster_scores_one_mode_and_the_log_of_its_share(saved, where, kl):
    res = _score(saved, np.tile(where, (2500, 1)), "modes2d")["modes2d"]
    assert (res["modes"], res["num_modes"], res["high_quality"]) == (1, 3, 1.0)
    assert res["kl"] == pytest.approx(kl, rel=1e-12)


def test_image_metrics_on_drawn_points_are_refused_in_one_line(saved, capsys):
    assert cli.main(["eval", str(saved), "--metrics", "fd2k,is2k"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is: not defined for the points of 'drawn'" in err


@pytest.mark.parametrize("content,match", [
    (None, "points.json is missing"),
    ("{not json", "unreadable drawn points"),
    ('{"std": 0.05, "points": [[1, 2, 3]]}', "points must be a list of 1 to"),
    ('{"std": 0.05, "points": [[1, NaN]]}', "must be finite numbers"),
    ('{"points": [[1, 2]]}', "unreadable drawn points"),
])
def test_a_missing_or_corrupt_points_file_is_a_one_line_error(saved, tmp_path, content, match):
    run = tmp_path / "run"
    shutil.copytree(saved, run)
    if content is None:
        (run / "points.json").unlink()
    else:
        (run / "points.json").write_text(content)
    r = subprocess.run([sys.executable, "-m", "gankit", "eval", str(run), "--metrics", "fd2k", "--no-floor"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gankit: error:") and match in err[0], r.stderr


def test_report_and_studio_show_the_scores(saved, tmp_path):
    from gankit.serve.runs import card, discover

    run = tmp_path / "run"
    shutil.copytree(saved, run)
    assert cli.main(["eval", str(run), "--metrics", "modes2d,fd2k", "--json", str(run / "eval.json")]) == 0
    (r,) = discover(run).values()
    assert "fd2k" in {row["label"] for row in card(r)["evaluations"]}
    assert cli.main(["report", str(run)]) == 0 and "fd2k" in (run / "report.html").read_text()


@pytest.mark.parametrize("data", ["ring8", "grid25", "mog1d"])
def test_runs_of_the_named_mixtures_still_evaluate(tmp_path, data, capsys):
    with Lab(LabState(data=data, g_width=32, d_width=32), tmp_path / "work") as lab:
        lab.play(3)
        out = lab.save(tmp_path / "saved")
    assert not (out / "points.json").exists()
    assert cli.main(["eval", str(out)]) == 0
    text = capsys.readouterr().out
    assert "modes2d" in text and "note:" not in text
