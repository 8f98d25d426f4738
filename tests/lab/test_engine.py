"""The GAN lab's engine: the URL state, determinism, the D* overlay against its closed form, the JSD bound, the
frame's schema and a saved run that gankit reads like any other."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gankit import GankitError
from gankit.data.toy import get_mixture
from gankit.lab.engine import (GRID, GRID_1D, Lab, LabState, cell_masses, dstar, jsd, jsd_bound, kde_masses,
                               scott_bandwidth, value_on_grid)

SMALL = {"g_width": 32, "d_width": 32}  # tiny nets where the test is about plumbing, not about learning


# -- the URL ----------------------------------------------------------------------------------------------
def test_query_round_trips_exactly():
    pts = ((0.1, -0.2), (1 / 3, 2 / 3), (-2.5e-07, 9.999999999999998), (0.0, -0.0))
    s = LabState(data="drawn", points=pts, loss="minimax", g_lr=3e-4, d_lr=0.1 + 0.2, d_steps=5, pack=4,
                 g_width=8, d_width=512, z_dim=1, batch=64, seed=2**31 - 1, speed=1)
    q = s.to_query()
    back = LabState.from_query(q)
    assert back == s and back.to_query() == q
    assert math.copysign(1, back.points[3][1]) == -1  # -0.0 survives
    assert LabState.from_query("?" + q) == s
    assert LabState.from_query("") == LabState() == LabState.from_query(LabState().to_query())
    assert "points" not in LabState().to_query()
    assert LabState.from_query("g_lr=1e%2B00").g_lr == 1.0  # '+' as a browser escapes it


@pytest.mark.parametrize("query, match", [
    ("pack=9", r"^lab: pack must be an integer in \[1, 8\], got 9$"),
    ("d_steps=0", r"d_steps must be an integer in \[1, 10\]"),
    ("d_steps=2.0", r"d_steps must be an integer in \[1, 10\], got '2.0'"),
    ("g_width=4", r"g_width must be an integer in \[8, 512\]"),
    ("z_dim=3", r"z_dim must be an integer in \[1, 2\]"),
    ("speed=201", r"speed must be an integer in \[1, 200\]"),
    ("g_lr=nan", r"g_lr must be a number in \[1e-06, 1\]"),
    ("d_lr=fast", r"d_lr must be a number in \[1e-06, 1\], got 'fast'"),
    ("data=moons", r"data must be one of ring8, grid25, mog1d, drawn; got 'moons'"),
    ("loss=hinge", r"loss must be one of nonsaturating, minimax"),
    ("colour=red", r"unknown key 'colour'; keys: .*batch"),
    ("seed=1&seed=2", r"key 'seed' given twice"),
    ("data=drawn", r"data=drawn needs points"),
    ("points=1,2,3", r"points must be 'x,y;x,y;\.\.\.'"),
    ("points=1,nan", r"points must be at most 200 .* coordinates in \[-10, 10\]"),
    ("points=" + ";".join(["0,0"] * 201), r"points must be at most 200"),
    ("batch=100&pack=8", r"batch must be a multiple of pack \(8\), got 100"),
])
def test_query_refusals_name_the_key_and_range(query, match):
    with pytest.raises(GankitError, match=match) as e:
        LabState.from_query(query)
    assert "\n" not in str(e.value)


# -- the grid's closed forms ------------------------------------------------------------------------------
EDGES = [np.linspace(-2, 2, GRID + 1)] * 2


def test_jsd_of_equal_and_disjoint_densities():
    p = cell_masses(np.array([[0.0, 0.0]]), 0.4, EDGES)
    assert jsd(p, p) == pytest.approx(0.0, abs=1e-12)
    left, right = np.zeros((GRID, GRID)), np.zeros((GRID, GRID))
    left[:, :10], right[:, 30:] = 1 / (GRID * 10), 1 / (GRID * 18)
    assert jsd(left, right) == pytest.approx(math.log(2), abs=1e-12)
    # mass outside the plot counts as one more cell: two densities that both left it are equal there
    far = cell_masses(np.array([[9.0, 9.0]]), 0.1, EDGES)
    assert far.sum() < 1e-12 and jsd(far, far) == pytest.approx(0.0, abs=1e-12)
    assert jsd(p, far) == pytest.approx(math.log(2), abs=1e-4)  # p has ~1e-5 outside the plot too


def test_bound_is_the_value_against_dstar_and_no_d_beats_it():
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = rng.random((GRID, GRID)) ** 4
        q = rng.random((GRID, GRID)) ** 4
        p, q = 0.9 * p / p.sum(), q / q.sum()  # p leaves 10 % outside the plot
        best = value_on_grid(p, q, dstar(p, q), d_outside=1.0)  # outside, only p has mass: D* = 1
        assert best == pytest.approx(jsd_bound(p, q), abs=1e-12)
        assert -math.log(4) <= best <= 0
        for other in (np.full_like(p, 0.5), np.clip(dstar(p, q) + 0.05 * rng.standard_normal(p.shape), 0.01, 0.99)):
            assert value_on_grid(p, q, other, d_outside=1.0) < best


def test_dstar_of_a_kde_matches_the_formula_for_known_densities():
    """p_data = N((-0.3, 0), 0.5²), p_g = N((0.4, 0.1), 0.5²) known, p_g's KDE from 2,000 samples: D* from the KDE
    equals the formula p_data / (p_data + p_g) within KDE error. Measured over seeds 0-4: mean |difference|
    0.016-0.026 on the cells holding >= 1 % of the peak mass, 0.031-0.039 on those holding >= 0.1 % (a tail cell
    sees few samples); Scott's bias (the KDE estimates N(μ, σ² + h²), h ≈ 0.14) is smaller than that noise."""
    rng = np.random.default_rng(1)
    x = rng.normal((0.4, 0.1), 0.5, size=(2000, 2))
    p = cell_masses(np.array([[-0.3, 0.0]]), 0.5, EDGES)
    q_kde, q = kde_masses(x, EDGES), cell_masses(np.array([[0.4, 0.1]]), 0.5, EDGES)
    assert scott_bandwidth(x) == pytest.approx(0.5 * 2000 ** (-1 / 6), rel=0.05)
    d_kde, d_exact = dstar(p, q_kde), dstar(p, q)
    assert np.allclose(d_exact, p / (p + q))
    mask = p + q > 1e-3 * (p + q).max()
    assert d_exact[mask].min() < 0.05 and d_exact[mask].max() > 0.95  # D* sweeps the range: a real test
    assert np.abs(d_kde - d_exact)[mask].mean() < 0.05
    core = p + q > 1e-2 * (p + q).max()
    assert np.abs(d_kde - d_exact)[core].mean() < 0.035
    # exact cell masses: the densities integrate to 1, and a wide Gaussian's cell mean is its density at the
    # centre up to the curvature term w²/24·(x²/σ⁴ - 1/σ²) per axis (w the cell width: 0.2 % at the centre,
    # 3 % at x = 2)
    assert cell_masses(np.array([[0.0, 0.0]]), 0.3, EDGES).sum() == pytest.approx(1.0, abs=1e-9)
    c = (EDGES[0][:-1] + EDGES[0][1:]) / 2
    dens = np.exp(-(c[None, :] ** 2 + c[:, None] ** 2) / (2 * 0.25)) / (2 * math.pi * 0.25)
    area = (EDGES[0][1] - EDGES[0][0]) ** 2
    assert np.allclose(cell_masses(np.array([[0.0, 0.0]]), 0.5, EDGES) / area, dens, rtol=0.04, atol=0)


def test_lab_dstar_uses_the_exact_mixture_and_the_kde(tmp_path):
    """The lab's D* grid with G's samples replaced by those of a known Gaussian is the formula with the exact
    ring8 density (closed-form cell masses) and that Gaussian."""
    with Lab(LabState(**SMALL), tmp_path) as lab:
        mix = get_mixture("ring8")
        assert np.array_equal(lab.p_data, cell_masses(mix.means, mix.std, lab.edges))
        assert lab.p_data.sum() == pytest.approx(1.0, abs=1e-9)  # every mode inside the plot
        x = np.random.default_rng(2).normal(0.0, 0.6, size=(2000, 2))
        p, q = lab.grid_masses(x)
        exact = dstar(p, cell_masses(np.zeros((1, 2)), 0.6, lab.edges))
        mask = p + q > 1e-2 * (p + q).max()
        assert np.abs(dstar(p, q) - exact)[mask].mean() < 0.035


def test_d_trained_against_a_frozen_g_approaches_dstar(tmp_path):
    """G trained 300 steps (so p_g overlaps the ring and D* takes every value), then frozen: 500 D updates alone
    bring D within 0.05 (mean absolute difference on the cells where p_data + p_g is not negligible) of the D* the
    frame computes from the exact p_data and the KDE of G. The bound: the KDE's own error in D* is up to ~0.04 on
    such cells (test above; here D* is near 0 or 1 on most of them, where the KDE errs least); D's minibatch
    noise at this rate moves the difference by ±0.015 between checks; measured after 400-600 D updates:
    0.007-0.038 over seeds 1-2. A constant D = 1/2 scores ~0.4 against the same D*."""
    with Lab(LabState(seed=1, d_lr=3e-3, g_width=64, d_width=64), tmp_path) as lab:
        lab.play(300)
        G_before = {k: v.clone() for k, v in lab.trainer.G.named_parameters()}
        for _ in range(500):
            lab.d_step()
        assert all(torch.equal(v, G_before[k]) for k, v in lab.trainer.G.named_parameters())  # G frozen
        f = lab.frame()
        p, q = lab.grid_masses()
        mask = p + q > 1e-3 * (p + q).max()
        heat, d_star = np.array(f["heat"]), np.array(f["dstar"])
        assert d_star[mask].min() < 0.1 and d_star[mask].max() > 0.9 and mask.sum() > 200
        assert np.abs(heat - d_star)[mask].mean() < 0.05
        assert np.abs(0.5 - d_star)[mask].mean() > 0.3
        assert f["step"] == 300 and f["d_updates"] == 800 and f["g_updates"] == 300


# -- the run ----------------------------------------------------------------------------------------------
def _calls(lab: Lab) -> list[dict]:
    lab.play(30)
    frames = [lab.frame()]
    lab.d_step()
    lab.g_step()
    lab.play(2)
    frames.append(lab.frame())
    return frames


def test_same_state_and_calls_give_identical_frames(tmp_path):
    s = LabState(**SMALL, seed=3, d_steps=2)
    with Lab(s, tmp_path / "a") as a, Lab(s, tmp_path / "b") as b:
        fa, fb = _calls(a), _calls(b)
        assert fa == fb
        assert fa[1]["step"] == 32 and fa[1]["d_updates"] == 30 * 2 + 1 + 2 * 2 and fa[1]["g_updates"] == 33
        a.reset()
        assert _calls(a) == fa  # reset: the run from scratch, the same again
    with Lab(LabState(**SMALL, seed=4, d_steps=2), tmp_path / "c") as c:
        assert _calls(c)[0]["fake"] != fa[0]["fake"]


def _shape(v):
    return np.array(v, dtype=float).shape


@pytest.mark.parametrize("state, d", [
    (LabState(**SMALL), 2),
    (LabState(**SMALL, data="drawn", points=((0.0, 0.0), (1.0, 0.5), (-0.5, 1.0)), pack=4, z_dim=1), 2),
    (LabState(**SMALL, data="mog1d", z_dim=1, pack=2, loss="minimax"), 1),
])
def test_frame_is_json_and_has_the_documented_shapes(tmp_path, state, d):
    with Lab(state, tmp_path) as lab:
        lab.play(3)
        lab.frame()
        lab.play(2)
        f = lab.frame()
    json.dumps(f, allow_nan=False)
    grid = (GRID, GRID) if d == 2 else (GRID_1D,)
    assert f["dim"] == d and f["pack"] == state.pack and f["step"] == 5
    assert len(f["extent"]) == 2 * d and _shape(f["xs"]) == (grid[-1],)
    assert _shape(f["real"]) == (500, d) and _shape(f["fake"]) == (500, d)
    assert _shape(f["heat"]) == grid and _shape(f["dstar"]) == grid
    assert np.all((np.array(f["heat"]) >= 0) & (np.array(f["heat"]) <= 1))
    assert _shape(f["arrows"]) == (40, 2 * d)
    assert np.allclose(np.array(f["arrows"])[:, :d], np.array(f["fake"])[:40], atol=1e-4)
    longest = np.linalg.norm(np.array(f["arrows"])[:, d:], axis=1).max()
    assert longest == pytest.approx(0.08 * (f["extent"][1] - f["extent"][0]), rel=1e-2)
    assert _shape(f["manifold"]) == ((15, 15, d) if state.z_dim == 2 else (1, 60, d))
    if d == 2:
        assert _shape(f["ys"]) == (GRID,)
    else:
        assert _shape(f["p_data"]) == grid and _shape(f["p_g"]) == grid
    curves = f["curves"]
    assert set(curves) == {"step", "d_updates", "g_updates", "d_loss", "g_loss", "value", "bound", "modes", "hq"}
    assert curves["step"] == [3, 5] and all(len(v) == 2 for v in curves.values())
    assert all(-math.log(4) - 1e-4 <= b <= 1e-4 for b in curves["bound"])  # -log 4 + 2·JSD, JSD in [0, log 2]
    assert f["num_modes"] == {"ring8": 8, "drawn": 3, "mog1d": 5}[state.data]  # drawn: 3 points 0.3+ apart
    assert all(isinstance(m, int) and 0 <= m <= f["num_modes"] for m in curves["modes"])
    assert all(0 <= q <= 100 for q in curves["hq"])


def test_save_writes_a_run_folder_gankit_reads(tmp_path):
    from gankit import cli, load

    with Lab(LabState(**SMALL), tmp_path / "work") as lab:
        lab.play(12)
        lab.d_step()
        out = lab.save(tmp_path / "saved")
        with pytest.raises(GankitError, match="exists and is not an empty folder"):
            lab.save(out)
    for name in ("checkpoints/last.pt", "config.json", "manifest.json", "log.csv", "samples/final.png", "loss.png"):
        assert (out / name).is_file(), name
    assert not (out / ".gankit.lock").exists()
    assert len((out / "log.csv").read_text().splitlines()) == 1 + 12
    G = load(out)
    x = G.sample(100)
    assert tuple(x.shape) == (100, 2) and torch.isfinite(x).all()
    assert cli.main(["report", str(out)]) == 0 and (out / "report.html").is_file()
    assert cli.main(["eval", str(out), "--metrics", "modes2d"]) == 0
    from gankit.serve.runs import card, discover  # what gankit serve lists

    (run,) = discover(out).values()
    assert card(run)["step"] == 12 and card(run)["dataset"] == "ring8"
    manifest = json.loads((out / "manifest.json").read_text())
    assert LabState.from_query(manifest["lab"]) == LabState(**SMALL)
