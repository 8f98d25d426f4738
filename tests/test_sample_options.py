"""`gankit sample --label K --scale S` (and ``images``/``save``/``sample`` with ``label``/``scale``): the samples
against G called by hand on the same latents, at the presets' own sizes, and bad values refused in one line with
nothing written."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import gankit
from gankit import cli
from gankit.checkpoint import save_checkpoint
from gankit.images import to_numpy_uint8
from gankit.models import build_generator


def _checkpoint(path, preset: str, shares: list[float] | None = None) -> None:
    """An untrained G of ``preset`` (its own 28x28 sizes) saved as the trainer saves one."""
    cfg = gankit.preset(preset)
    torch.manual_seed(0)
    G = build_generator(cfg.model, (1, 28, 28))
    state = {"config": cfg.to_dict(), "img_shape": [1, 28, 28], "G": G.state_dict(), "step": 3}
    if shares is not None:
        state["label_shares"] = shares
    save_checkpoint(path, state)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample_options")
    k = gankit.preset("quick-mnist").model.num_classes
    shares = [2.0 ** -(i + 1) for i in range(k - 1)]
    _checkpoint(root / "cgan.pt", "cgan-mnist")
    _checkpoint(root / "quick.pt", "quick-mnist", shares + [1 - math.fsum(shares)])  # clusters, largest first
    _checkpoint(root / "dcgan.pt", "dcgan-mnist")
    return root


def by_hand(g, n: int, seed: int, scale: float, label: int | None) -> np.ndarray:
    z = gankit.api.latents(n, g.z_dim, seed) * scale
    with torch.no_grad():
        x = g.G(z) if label is None else g.G(z, torch.full((n,), label))
    return to_numpy_uint8(x)[:, 0]


@pytest.mark.parametrize("name,label", [("cgan", 7), ("cgan", 0), ("quick", 29), ("quick", 3), ("dcgan", None)])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_label_and_scale_draw_what_g_draws_by_hand(ckpts, name, label, scale):
    g = gankit.load(ckpts / f"{name}.pt")
    got = g.images(70, seed=4, label=label, scale=scale)
    np.testing.assert_array_equal(got, by_hand(g, 70, 4, scale, label))
    if label is not None:  # the label is read: another class draws other images from the same latents
        other = g.images(70, seed=4, label=(label + 1) % g.num_classes, scale=scale)
        assert not np.array_equal(got, other)


def test_scale_zero_draws_g_of_the_mean_latent_for_every_sample(ckpts):
    g = gankit.load(ckpts / "dcgan.pt")
    imgs = g.images(5, seed=11, scale=0.0)
    with torch.no_grad():
        g0 = to_numpy_uint8(g.G(torch.zeros(1, g.z_dim)))[0, 0]
    assert all(np.array_equal(im, g0) for im in imgs)


def test_without_a_label_sampling_is_unchanged(ckpts):
    """The default stays the classes in turn (or a self-conditioned run's clusters by their sizes)."""
    g = gankit.load(ckpts / "cgan.pt")
    z = gankit.api.latents(20, g.z_dim, 2)
    with torch.no_grad():
        ref = to_numpy_uint8(g.G(z, torch.arange(20) % 10))[:, 0]
    np.testing.assert_array_equal(g.images(20, seed=2), ref)


def test_the_cli_writes_what_the_api_draws(ckpts, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sample", str(ckpts / "quick.pt"), "--n", "40", "--label", "3", "--scale", "0.6", "--seed",
                     "5", "--out", "q.npz"]) == 0
    assert "wrote 40 samples of class 3 at latent scale 0.6 to q.npz" in capsys.readouterr().out
    g = gankit.load(ckpts / "quick.pt")
    np.testing.assert_array_equal(np.load("q.npz")["images"], by_hand(g, 40, 5, 0.6, 3))
    assert cli.main(["sample", str(ckpts / "cgan.pt"), "--n", "12", "--label", "2", "--out", "pngs"]) == 0
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == [f"{i:02d}.png" for i in range(12)]


@pytest.mark.parametrize("name,args,msg", [
    ("dcgan", ["--label", "3"], "this G is unconditional (model.cond none): it takes no class label"),
    ("cgan", ["--label", "10"], "class 10 is out of range: this G takes classes 0 to 9"),
    ("cgan", ["--label", "-1"], "class -1 is out of range: this G takes classes 0 to 9"),
    ("quick", ["--label", "30"], "class 30 is out of range: this G takes classes 0 to 29"),
    ("dcgan", ["--scale", "-0.5"], "the latent scale must be a number from 0 to 3 (1: untruncated), got -0.5"),
    ("dcgan", ["--scale", "nan"], "the latent scale must be a number from 0 to 3 (1: untruncated), got nan"),
    ("dcgan", ["--scale", "4"], "the latent scale must be a number from 0 to 3 (1: untruncated), got 4.0"),
    ("dcgan", ["--scale", "x"], "argument --scale: invalid float value: 'x'"),
    ("cgan", ["--label", "2.5"], "argument --label: invalid int value: '2.5'"),
])
@pytest.mark.parametrize("out", ["o.npz", "pngs"])
def test_bad_label_or_scale_is_one_line_and_writes_nothing(ckpts, tmp_path, monkeypatch, capsys, name, args, msg,
                                                           out):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sample", str(ckpts / f"{name}.pt"), "--n", "8", "--out", out, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit: error: ") and "\n" not in err and msg in err
    assert list(tmp_path.iterdir()) == []


def test_the_api_refuses_labels_an_unconditional_g_would_ignore(ckpts):
    """Before, ``sample(n, labels=...)`` on an unconditional G dropped the labels without a word."""
    g = gankit.load(ckpts / "dcgan.pt")
    for labels in (3, torch.zeros(4, dtype=torch.long)):
        with pytest.raises(gankit.GankitError, match="unconditional"):
            g.sample(4, labels=labels)
    with pytest.raises(gankit.GankitError, match="out of range"):
        gankit.load(ckpts / "cgan.pt").images(4, label=True)  # a bool is not a class
    with pytest.raises(gankit.GankitError, match="latent scale"):
        g.sample(4, scale=float("inf"))


def path_by_hand(g, a: int, b: int, steps: int, mode: str, scale: float, label: int | None) -> np.ndarray:
    """G along the latent path written out: lerp (1 - t) z_a + t z_b; slerp on the great circle through them."""
    za, zb = (gankit.api.latents(1, g.z_dim, s).double() * scale for s in (a, b))
    t = torch.linspace(0, 1, steps, dtype=torch.float64)[:, None]
    if mode == "lerp":
        z = (1 - t) * za + t * zb
    else:
        om = torch.arccos((za * zb).sum() / (za.norm() * zb.norm()))
        z = (torch.sin((1 - t) * om) * za + torch.sin(t * om) * zb) / torch.sin(om)
    with torch.no_grad():
        x = g.G(z.float()) if label is None else g.G(z.float(), torch.full((steps,), label))
    return to_numpy_uint8(x)[:, 0]


@pytest.mark.parametrize("name,label", [("dcgan", None), ("cgan", 6), ("quick", 0)])
@pytest.mark.parametrize("mode,scale", [("slerp", 1.0), ("lerp", 0.8)])
def test_interpolation_is_g_along_the_path_between_the_two_seeds(ckpts, name, label, mode, scale):
    g = gankit.load(ckpts / f"{name}.pt")
    got = g.interpolate(3, 8, steps=9, mode=mode, scale=scale, label=label).astype(int)
    ref = path_by_hand(g, 3, 8, 9, mode, scale, label).astype(int)
    assert got.shape == (9, 28, 28) and np.abs(got - ref).max() <= 1  # float32 against float64 paths
    assert np.mean(got != ref) < 0.01
    ends = g.images(1, seed=3, label=label, scale=scale), g.images(1, seed=8, label=label, scale=scale)
    assert np.abs(got[0] - ends[0][0]).max() <= 1 and np.abs(got[-1] - ends[1][0]).max() <= 1


def test_a_conditional_walk_stays_in_class_0_unless_told(ckpts):
    g = gankit.load(ckpts / "cgan.pt")
    np.testing.assert_array_equal(g.interpolate(1, 2, steps=4), g.interpolate(1, 2, steps=4, label=0))
    assert not np.array_equal(g.interpolate(1, 2, steps=4), g.interpolate(1, 2, steps=4, label=5))


def test_the_cli_writes_the_walk_as_strip_loop_or_images(ckpts, tmp_path, monkeypatch, capsys):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    g = gankit.load(ckpts / "cgan.pt")
    walk = g.interpolate(2, 9, steps=5, mode="lerp", scale=0.9, label=4)
    base = ["sample", str(ckpts / "cgan.pt"), "--interpolate", "2", "9", "--steps", "5", "--mode", "lerp",
            "--scale", "0.9", "--label", "4"]
    assert cli.main(base + ["--out", "w.npz"]) == 0
    assert "wrote the interpolation from seed 2 to seed 9 (5 steps of class 4 at latent scale 0.9) to w.npz" in \
        capsys.readouterr().out
    np.testing.assert_array_equal(np.load("w.npz")["images"], walk)
    assert cli.main(base + ["--zoom", "2", "--out", "w.png"]) == 0
    strip = np.asarray(Image.open("w.png"))
    assert strip.shape == (2 * 32, 2 * (5 * 30 + 2))
    for i in range(5):  # image i at column i, 2-pixel gaps, upscaled 2x by nearest neighbour
        np.testing.assert_array_equal(strip[4:60:2, 4 + 60 * i: 60 + 60 * i: 2], walk[i])
    assert cli.main(base + ["--frame-ms", "40", "--out", "w.gif"]) == 0
    gif = Image.open("w.gif")
    frames = []
    for k in range(gif.n_frames):
        gif.seek(k)
        frames.append(np.asarray(gif.convert("L")))
        assert gif.info["duration"] == 40
    assert len(frames) == 8  # there and back: 0 1 2 3 4 3 2 1
    for k, i in enumerate([0, 1, 2, 3, 4, 3, 2, 1]):
        np.testing.assert_array_equal(frames[k], walk[i])


@pytest.mark.parametrize("args,msg", [
    (["--interpolate", "1", "2", "--steps", "1"], "an interpolation takes 2 to 1024 steps (both ends included), "
                                                  "got 1"),
    (["--interpolate", "1", "2", "--steps", "2000"], "takes 2 to 1024 steps"),
    (["--interpolate", "1", "2", "--mode", "cubic"], "argument --mode: invalid choice: 'cubic'"),
    (["--interpolate", "1", "2", "--zoom", "0"], "the zoom must be a whole number from 1 to 16, got 0"),
    (["--interpolate", "1", "2", "--n", "8"], "--interpolate draws its own path"),
    (["--interpolate", "1", "2", "--seed", "3"], "drop --seed"),
    (["--interpolate", "1"], "argument --interpolate: expected 2 arguments"),
    (["--steps", "5"], "--steps applies to --interpolate SEED_A SEED_B only"),
    (["--zoom", "2"], "--zoom applies to --interpolate SEED_A SEED_B only"),
    (["--mode", "lerp"], "--mode applies to --interpolate"),
    (["--frame-ms", "50"], "--frame-ms applies to --interpolate"),
])
@pytest.mark.parametrize("out", ["o.png", "o.gif"])
def test_bad_interpolation_options_are_one_line_and_write_nothing(ckpts, tmp_path, monkeypatch, capsys, args, msg,
                                                                 out):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sample", str(ckpts / "dcgan.pt"), "--out", out, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit: error: ") and "\n" not in err and msg in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out,args,msg", [
    ("w.png", ["--frame-ms", "50"], "--frame-ms times the frames of a .gif loop; --out names no .gif"),
    ("w.npz", ["--frame-ms", "50"], "--frame-ms times the frames of a .gif loop; --out names no .gif"),
    ("w.npz", ["--zoom", "2"], "--zoom upscales a .png strip or a .gif loop; an .npz keeps the images at their size"),
    ("w.gif", ["--frame-ms", "5"], "the frame time must be 20 to 2000 ms, got 5"),
])
def test_an_option_the_output_format_does_not_read_or_a_bad_frame_time_is_refused(ckpts, tmp_path, monkeypatch,
                                                                                  capsys, out, args, msg):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sample", str(ckpts / "dcgan.pt"), "--interpolate", "1", "2", "--out", out, *args]) == 2
    assert capsys.readouterr().err.strip() == f"gankit: error: {msg}"
    assert list(tmp_path.iterdir()) == []


def test_an_interpolation_keeps_an_existing_file_and_names_its_formats(ckpts, tmp_path, capsys):
    g = gankit.load(ckpts / "dcgan.pt")
    (tmp_path / "w.gif").write_bytes(b"mine")
    with pytest.raises(gankit.GankitError, match="already exists"):
        g.save_interpolation(tmp_path / "w.gif", 0, 1)
    assert (tmp_path / "w.gif").read_bytes() == b"mine"
    g.save_interpolation(tmp_path / "w.gif", 0, 1, overwrite=True)
    assert (tmp_path / "w.gif").read_bytes()[:6] == b"GIF89a"
    with pytest.raises(gankit.GankitError, match=r"\.png strip, a \.gif loop or an \.npz"):
        g.save_interpolation(tmp_path / "w.jpg", 0, 1)
    with pytest.raises(gankit.GankitError, match="slerp .* or lerp"):
        g.interpolate(0, 1, mode="cubic")


def test_the_command_line_and_the_studio_take_the_same_ranges():
    from gankit import generator
    from gankit.serve import params

    assert (params.SCALE.lo, params.SCALE.hi) == (0.0, generator.MAX_SCALE)
    interp = params.SPECS["interp_gif"]
    assert (interp["frame_ms"].lo, interp["frame_ms"].hi) == (20, 2000) and interp["zoom"].hi == 16
    assert interp["steps"].hi <= generator.MAX_INTERPOLATION_STEPS  # the page asks for fewer than a script may
    assert interp["mode"].choices == ("slerp", "lerp")
