"""Each studio endpoint over real HTTP: valid input against gankit's own sampling API (the reference), and
invalid input answered with a 4xx and a message, never a 500."""
from __future__ import annotations

import io
import json
import urllib.parse

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import gankit
from gankit.images import make_grid, to_numpy_uint8
from gankit.serve import render


def png(body: bytes) -> np.ndarray:
    im = Image.open(io.BytesIO(body))
    assert im.format == "PNG"
    return np.asarray(im)


def q(**kw) -> str:
    return urllib.parse.urlencode(kw)


def test_runs_lists_every_run_folder_with_its_step(server, runs_root):
    status, runs = server.json("/api/runs")
    assert status == 200
    assert [r["id"] for r in runs] == ["a", "cond", "grp/b"]
    by_id = {r["id"]: r for r in runs}
    assert by_id["a"]["step"] == gankit.load(runs_root / "a").step == 40
    assert by_id["grp/b"]["step"] == 20
    assert by_id["a"]["img_shape"] == [1, 8, 8]
    assert by_id["a"]["conditional"] is False and by_id["cond"] == {**by_id["cond"], "conditional": True,
                                                                     "num_classes": 10}


def test_card_reports_config_manifest_and_metrics(server, runs_root):
    status, c = server.json("/api/card?run=a")
    assert status == 200
    manifest = json.loads((runs_root / "a" / "manifest.json").read_text())
    assert (c["preset"], c["dataset"], c["step"], c["total_steps"]) == ("seed", "digits", 40, 40)
    assert c["dataset_size"] == manifest["dataset"]["size"] == 1797
    assert c["parameters"] == manifest["parameters"]
    assert c["config"] == json.loads((runs_root / "a" / "config.json").read_text())
    assert c["evaluations"] == []
    # an evaluation appears in the card as soon as metrics.jsonl has it (as --eval-every writes it); bad lines
    # are skipped
    rows = [{"step": 20, "epoch": 1, "metrics": {"fd300": {"fd": 12.5, "n_fake": 300, "floor": {"fd": 0.5}}}},
            {"step": 40, "epoch": 2, "metrics": {"fd300": {"fd": 7.25, "n_fake": 300, "floor": {"fd": 0.5}},
                                                 "pr300_k3": {"precision": 0.5, "recall": 0.125, "n_fake": 300}}}]
    (runs_root / "grp" / "b" / "metrics.jsonl").write_text(
        json.dumps(rows[1]) + "\nnot json\n" + json.dumps(rows[0]) + "\n")
    status, c = server.json("/api/card?run=grp/b")
    assert [(r["step"], r["label"], r["value"], r["floor"], r["text"]) for r in c["evaluations"]] == [
        (20, "fd300", 12.5, 0.5, "12.5"), (40, "fd300", 7.25, 0.5, "7.25"),
        (40, "pr300_k3 precision", 0.5, None, "0.5"), (40, "pr300_k3 recall", 0.125, None, "0.125")]
    status, charts = server.json("/api/charts?run=grp/b")
    assert status == 200 and [c["label"] for c in charts] == ["fd300", "pr300_k3 precision", "pr300_k3 recall"]
    assert all(c["svg"].startswith("<svg ") for c in charts) and "real-vs-real floor 0.5" in charts[0]["svg"]
    assert server.json("/api/charts?run=a") == (200, [])


def test_grid_png_equals_gankit_sample(server, runs_root):
    g = gankit.load(runs_root / "a")
    for n, seed in ((1, 0), (7, 3), (64, 12345)):
        status, headers, body = server.get("/api/grid.png?" + q(run="a", n=n, seed=seed))
        assert status == 200 and headers["content-type"] == "image/png"
        expect = make_grid(to_numpy_uint8(g.sample(n, seed)), pad=render.PAD)
        np.testing.assert_array_equal(png(body), expect)
        assert png(body).shape[::-1] == render.grid_shape(n, g.img_shape, None, 1)


@pytest.mark.parametrize("run,extra", [("a", {"scale": "0.5"}), ("cond", {"label": 4}),
                                       ("cond", {"label": 0, "scale": "1.5"})])
def test_grid_png_equals_gankit_sample_with_its_label_and_scale(server, runs_root, tmp_path, monkeypatch, run,
                                                                 extra):
    """The page's latent scale and class picker are `gankit sample --scale` and `--label`: the same images."""
    from gankit.cli import main

    monkeypatch.chdir(tmp_path)
    args = [a for k, v in extra.items() for a in (f"--{k}", str(v))]
    assert main(["sample", str(runs_root / run), "--n", "9", "--seed", "6", "--out", "s.npz", *args]) == 0
    cli_imgs = np.load("s.npz")["images"]
    status, _, body = server.get("/api/grid.png?" + q(run=run, n=9, seed=6, **extra))
    assert status == 200
    np.testing.assert_array_equal(png(body), make_grid(cli_imgs[:, None], pad=render.PAD))


def test_grid_options_zoom_nrow_scale(server, runs_root):
    g = gankit.load(runs_root / "a")
    _, _, body = server.get("/api/grid.png?" + q(run="a", n=6, seed=2, nrow=3, zoom=3))
    base = make_grid(to_numpy_uint8(g.sample(6, 2)), nrow=3, pad=render.PAD)
    np.testing.assert_array_equal(png(body), base.repeat(3, 0).repeat(3, 1))
    assert png(body).shape == (3 * (2 * 10 + 2), 3 * (3 * 10 + 2))
    # scale 0 puts every latent at the origin: all samples equal G(0)
    _, _, body = server.get("/api/grid.png?" + q(run="a", n=4, scale=0, nrow=4))
    cells = [png(body)[2:10, 2 + 10 * i: 10 + 10 * i] for i in range(4)]
    g0 = to_numpy_uint8(g.sample(1, None, z=torch.zeros(1, g.z_dim)))[0, 0]
    for c in cells:
        np.testing.assert_array_equal(c, g0)
    _, _, body = server.get("/api/grid.png?" + q(run="a", n=3, seed=5, scale="0.5"))
    np.testing.assert_array_equal(png(body), make_grid(to_numpy_uint8(
        g.sample(3, None, z=gankit.api.latents(3, g.z_dim, 5) * 0.5)), pad=render.PAD))


def test_conditional_label(server, runs_root):
    g = gankit.load(runs_root / "cond")
    z = gankit.api.latents(5, g.z_dim, 9)
    with torch.no_grad():
        ref = to_numpy_uint8(g.G(z, torch.full((5,), 3)))
    status, _, body = server.get("/api/grid.png?" + q(run="cond", n=5, seed=9, label=3))
    assert status == 200
    np.testing.assert_array_equal(png(body), make_grid(ref, pad=render.PAD))
    status, _, body = server.get("/api/grid.png?" + q(run="cond", n=5, seed=9))  # random labels, seeded
    assert status == 200 and png(body).shape == make_grid(ref, pad=render.PAD).shape
    status, _, body = server.get("/api/grid.png?" + q(run="cond", n=5, label=10))
    assert status == 400 and "between 0 and 9" in json.loads(body)["error"]


def test_interpolation_strip_ends_at_the_two_seeds(server, runs_root):
    g = gankit.load(runs_root / "grp" / "b")
    for mode in ("slerp", "lerp"):
        status, _, body = server.get("/api/interp.png?" + q(run="grp/b", seed_a=4, seed_b=11, steps=6, mode=mode))
        assert status == 200
        strip = png(body).astype(int)
        assert strip.shape == (12, 6 * 10 + 2)
        first, last = strip[2:10, 2:10], strip[2:10, 52:60]
        a = to_numpy_uint8(g.sample(1, 4))[0, 0]
        b = to_numpy_uint8(g.sample(1, 11))[0, 0]
        assert np.abs(first - a).max() <= 1 and np.abs(last - b).max() <= 1  # float rounding at the ends


@pytest.mark.parametrize("run,extra", [("grp/b", {"mode": "lerp", "zoom": 3}), ("cond", {"label": 2, "scale": "0.8"}),
                                       ("cond", {})])
def test_interpolation_equals_gankit_sample_interpolate(server, runs_root, tmp_path, monkeypatch, run, extra):
    """The page's interpolation strip and loop are `gankit sample --interpolate`'s .png and .gif, pixel for pixel
    (a conditional run's walk in class 0 unless a class is picked, on both)."""
    from gankit.cli import main

    monkeypatch.chdir(tmp_path)
    args = [a for k, v in extra.items() for a in (f"--{k}", str(v))]
    for suffix, endpoint in ((".png", "interp.png"), (".gif", "interp.gif")):
        out = f"walk{suffix}"
        assert main(["sample", str(runs_root / run), "--interpolate", "4", "11", "--steps", "6", "--out", out,
                     *args]) == 0
        status, _, body = server.get(f"/api/{endpoint}?" + q(run=run, seed_a=4, seed_b=11, steps=6, **extra))
        assert status == 200
        web, mine = Image.open(io.BytesIO(body)), Image.open(out)
        assert (web.format, web.size, getattr(web, "n_frames", 1)) == (mine.format, mine.size,
                                                                      getattr(mine, "n_frames", 1))
        for k in range(getattr(web, "n_frames", 1)):
            web.seek(k)
            mine.seek(k)
            np.testing.assert_array_equal(np.asarray(web.convert("L")), np.asarray(mine.convert("L")))


def test_interpolation_gif_plays_there_and_back(server):
    status, headers, body = server.get("/api/interp.gif?" + q(run="a", steps=5, zoom=2, frame_ms=50))
    assert status == 200 and headers["content-type"] == "image/gif"
    im = Image.open(io.BytesIO(body))
    assert im.format == "GIF" and im.size == (16, 16)
    assert im.n_frames == 2 * 5 - 2
    frames = []
    for i in range(im.n_frames):
        im.seek(i)
        frames.append(np.asarray(im.convert("L")))
    np.testing.assert_array_equal(frames[1], frames[-1])  # ping-pong: A B C D E D C B


def test_slerp_stays_on_the_arc():
    a, b = torch.randn(1, 32, dtype=torch.float64), torch.randn(1, 32, dtype=torch.float64)
    b = b / b.norm() * a.norm()
    from gankit.generator import slerp

    path = slerp(a, b, torch.linspace(0, 1, 9)).double()
    torch.testing.assert_close(path.norm(dim=1), a.norm().expand(9), rtol=1e-5, atol=1e-5)
    cos = torch.nn.functional.cosine_similarity(path[:-1], path[1:])
    torch.testing.assert_close(cos, cos[:1].expand(8), rtol=1e-5, atol=1e-5)  # equal angular steps
    torch.testing.assert_close(path[[0, -1]], torch.cat([a, b]).float().double(), rtol=1e-5, atol=1e-5)


def test_cache_hits_share_normalised_options_and_support_etags(server):
    path = "/api/grid.png?" + q(run="a", n=9, seed=77)
    _, h1, b1 = server.get(path)
    _, h2, b2 = server.get("/api/grid.png?" + q(seed="077", run="a", n="+9"))
    assert h1["x-gankit-cache"] == "miss" and h2["x-gankit-cache"] == "hit"
    assert b1 == b2 and h1["etag"] == h2["etag"]
    status, _, body = server.get(path, headers={"If-None-Match": h1["etag"]})
    assert status == 304 and body == b""
    _, h3, _ = server.get("/api/grid.png?" + q(run="a", n=9, seed=78))
    assert h3["etag"] != h1["etag"]


def test_new_checkpoint_is_picked_up(server, runs_root, tmp_path):
    """A run that trains on while served: a new last.pt is a new version (reloaded, not served from cache)."""
    import shutil

    ckpt = runs_root / "grp" / "b" / "checkpoints" / "last.pt"
    saved = tmp_path / "last.pt"
    shutil.copy2(ckpt, saved)
    _, h1, b1 = server.get("/api/grid.png?run=grp/b&n=4")
    shutil.copy(runs_root / "a" / "checkpoints" / "last.pt", ckpt)  # same shapes, other weights, new mtime
    try:
        _, h2, b2 = server.get("/api/grid.png?run=grp/b&n=4")
        assert h2["x-gankit-cache"] == "miss" and b1 != b2
        assert server.json("/api/runs")[1][2]["step"] == 40
    finally:
        shutil.copy2(saved, ckpt)


@pytest.mark.parametrize("path, status, message", [
    ("/api/grid.png?run=a&n=1025", 400, "'n' must be between 1 and 1024"),
    ("/api/grid.png?run=a&n=0", 400, "'n' must be between 1 and 1024"),
    ("/api/grid.png?run=a&n=2.5", 400, "'n' must be an integer"),
    ("/api/grid.png?run=a&seed=-1", 400, "'seed' must be between 0"),
    ("/api/grid.png?run=a&seed=99999999999999", 400, "'seed' must be between 0 and 2147483647"),
    ("/api/grid.png?run=a&seed=abc", 400, "'seed' must be an integer"),
    ("/api/grid.png?run=a&scale=nan", 400, "'scale' must be a number"),
    ("/api/grid.png?run=a&scale=inf", 400, "'scale' must be a number"),
    ("/api/grid.png?run=a&scale=1e999", 400, "'scale' must be finite"),
    ("/api/grid.png?run=a&scale=3.5", 400, "'scale' must be between 0 and 3"),
    ("/api/grid.png?run=a&zoom=17", 400, "'zoom' must be between 1 and 16"),
    ("/api/grid.png?run=a&n=4&nrow=5", 400, "'nrow' \\(5\\) must not exceed 'n'"),
    ("/api/grid.png?run=a&n=1024&zoom=16", 400, "more than 16,000,000"),
    ("/api/grid.png?run=a&label=1", 400, "unconditional; drop the 'label'"),
    ("/api/grid.png?run=a&seed=1&seed=2", 400, "'seed' given more than once"),
    ("/api/grid.png?run=a&path=/etc/passwd", 400, "unknown parameter 'path'"),
    ("/api/grid.png?run=a&seed=" + "1" * 300, 400, "longer than 200"),
    ("/api/grid.png?run=../../etc", 404, "no run '../../etc'; runs served: a, cond, grp/b"),
    ("/api/grid.png?run=%2Ftmp", 404, "no run '/tmp'"),
    ("/api/card?run=a/checkpoints", 404, "no run"),
    ("/api/card?run=a&seed=1", 400, "unknown parameter 'seed'"),
    ("/api/runs?x=1", 400, "unknown parameter 'x'; this endpoint takes: lang"),
    ("/api/interp.png?run=a&steps=1", 400, "'steps' must be between 2 and 64"),
    ("/api/interp.png?run=a&steps=65", 400, "'steps' must be between 2 and 64"),
    ("/api/interp.png?run=a&mode=cubic", 400, "'mode' must be one of slerp, lerp"),
    ("/api/interp.gif?run=a&frame_ms=5", 400, "'frame_ms' must be between 20 and 2000"),
    ("/api/interp.png?run=a&frame_ms=50", 400, "unknown parameter 'frame_ms'"),
    ("/api/../../etc/passwd", 404, "no such page"),
    ("/static/../../etc/passwd", 404, "no such page"),
])
def test_bad_requests_get_a_4xx_with_a_message(server, path, status, message):
    import re

    got, headers, body = server.get(path)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert re.search(message, json.loads(body)["error"])


def test_method_and_host_checks(server):
    status, _, body = server.get("/api/runs", method="POST")
    assert status == 405 and "takes GET" in json.loads(body)["error"]
    status, _, _ = server.get("/api/runs", headers={"Host": "attacker.example"})  # DNS rebinding
    assert status == 400
    assert server.get("/api/runs", headers={"Host": f"localhost:{server.port}"})[0] == 200


def test_page_and_api_index(server):
    status, headers, body = server.get("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'id="generate"' in body and "default-src 'none'" in headers["content-security-policy"]
    status, index = server.json("/api")
    assert status == 200 and index["params"]["grid"]["n"]["max"] == 1024


NAMES = ["run", "seed", "n", "scale", "label", "zoom", "nrow", "steps", "mode", "seed_a", "x", ""]
VALUES = st.one_of(st.sampled_from(["a", "cond", "grp/b", "0", "1", "-1", "1e3", "nan", "64", "3", "slerp", ""]),
                   st.integers(-10, 2000).map(str), st.text(max_size=12))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(endpoint=st.sampled_from(["/api/grid.png", "/api/interp.png", "/api/interp.gif", "/api/card", "/api/runs"]),
       items=st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=5))
def test_fuzzed_queries_never_get_a_500(server, endpoint, items):
    status, headers, body = server.get(endpoint + "?" + urllib.parse.urlencode(items))
    assert status in (200, 400, 404), body[:200]
    if status != 200:
        assert json.loads(body)["error"]


def test_a_generator_of_points_gets_a_scatter_plot(tmp_path, make_server):
    """Toy runs (2-D mixtures) generate vectors, not images: the grid is a scatter plot of the samples."""
    from gankit.models import build_generator
    from gankit.serve.app import create_app
    from gankit.serve.runs import discover
    from gankit.checkpoint import save_checkpoint

    cfg = gankit.preset("seed").with_overrides({"model.arch": "toy", "model.z_dim": 2, "model.g_hidden": "16"})
    torch.manual_seed(0)
    G = build_generator(cfg.model, (2,))
    save_checkpoint(tmp_path / "toy.pt", {"config": cfg.to_dict(), "img_shape": [2], "G": G.state_dict()})
    s = make_server(create_app(discover(tmp_path / "toy.pt")))
    status, _, body = s.get("/api/grid.png?n=50&seed=4")
    assert status == 200
    img = png(body)
    assert img.shape == (render.POINTS_SIZE, render.POINTS_SIZE)
    pts = gankit.load(tmp_path / "toy.pt").sample(50, 4).numpy()
    lim = max(1.0, np.abs(pts).max()) * 1.1
    ij = ((pts / lim + 1) / 2 * (render.POINTS_SIZE - 1)).round().astype(int)
    assert (img[render.POINTS_SIZE - 1 - ij[:, 1], ij[:, 0]] == 30).all()  # a dot at every sample
    assert (img == 30).sum() <= 4 * 50
    status, _, body = s.get("/api/interp.png")
    assert status == 400 and "generates points, not images" in json.loads(body)["error"]
    status, _, body = s.get("/api/grid.png?n=50&nrow=5")  # one scatter plot: no grid for nrow to lay out
    assert status == 400 and json.loads(body)["error"].startswith("nrow lays out an image grid")
