"""Memory budgets: what cannot fit is refused in one line before it is allocated, and before a run folder is
made (issue #16): model sizes from the config, sample counts, and the limit itself."""
import os
import resource
import subprocess
import sys

import pytest

import gankit
from gankit import GankitError
from gankit.memory import check_fits, format_bytes, memory_limit, parameter_counts
from gankit.models import build_discriminator, build_generator


def test_limit_comes_from_the_environment_or_the_machine(monkeypatch):
    monkeypatch.delenv("GANKIT_MEMORY_LIMIT", raising=False)
    assert 2**20 < memory_limit() < 2**63
    for text, want in (("8G", 8 * 2**30), ("512m", 512 * 2**20), ("1.5K", 1536), ("1000", 1000)):
        monkeypatch.setenv("GANKIT_MEMORY_LIMIT", text)
        assert memory_limit() == want
    for bad in ("lots", "-1G", "0", "8Q"):
        monkeypatch.setenv("GANKIT_MEMORY_LIMIT", bad)
        with pytest.raises(GankitError, match="^GANKIT_MEMORY_LIMIT="):
            memory_limit()


def test_check_fits_names_the_thing_its_size_and_the_limit(monkeypatch):
    monkeypatch.setenv("GANKIT_MEMORY_LIMIT", "1G")
    check_fits(2**30, "exactly the limit", "never shown")
    with pytest.raises(GankitError, match=r"^the ring8 dataset would need 2\.0 GB, more than the 1\.0 GB of memory "
                                          r"set by GANKIT_MEMORY_LIMIT; lower data\.size$"):
        check_fits(2**31, "the ring8 dataset", "lower data.size")
    assert format_bytes(512) == "512 bytes" and format_bytes(1536) == "1.5 KB" and format_bytes(5 * 2**40) == "5.0 TB"


@pytest.mark.parametrize("preset,shape", [("seed", (1, 28, 28)), ("dcgan-mnist", (1, 28, 28)),
                                          ("cgan-mnist", (1, 28, 28)), ("sngan-cifar10", (3, 32, 32)),
                                          ("pacgan-ring8", (2,)), ("pacgan-stacked-mnist", (3, 28, 28))])
def test_parameter_counts_without_allocating_equal_the_built_models(preset, shape):
    cfg = gankit.preset(preset).model
    want = (sum(p.numel() for p in build_generator(cfg, shape).parameters()),
            sum(p.numel() for p in build_discriminator(cfg, shape).parameters()))
    assert parameter_counts(cfg, shape) == want


@pytest.mark.parametrize("key,value", [("model.z_dim", "1000000000"), ("model.g_hidden", "2000000000"),
                                       ("model.d_hidden", "2000000000"), ("model.g_hidden", ",".join(["50000"] * 10))])
def test_absurd_model_sizes_are_refused_before_the_run_folder(key, value, refused, tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_MEMORY_LIMIT", "64G")  # the same on a machine with a terabyte
    refused(["train", "--dataset", "digits", "--steps", "2", f"--{key}", value, "--out", tmp_path / "run"], tmp_path,
            r"training G and D on data of shape \[1, 8, 8\] \([\d,]+ weights; [\d,]+ layer outputs per batch of 100\) "
            r"would need [\d.]+ [GT]B, more than the 64\.0 GB of memory set by GANKIT_MEMORY_LIMIT; "
            r"lower model\.z_dim, the widths \(model\.\*_hidden, model\.\*_channels\), data\.resolution or "
            r"train\.batch_size$")


def test_conv_channels_and_classes_are_sized_too(refused, tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_MEMORY_LIMIT", "8G")
    for extra in (["--model.arch", "dcgan", "--model.g_channels", "1000000"],
                  ["--model.arch", "dcgan", "--model.d_channels", "1000000"],  # 33 M weights, 4.8 G activations
                  ["--model.cond", "concat", "--model.num_classes", "1000000000"],
                  ["--model.pack", "1000000"]):
        refused(["train", "--dataset", "digits", "--steps", "2", *extra, "--out", tmp_path / "run"], tmp_path,
                "would need .* more than the 8.0 GB of memory set by GANKIT_MEMORY_LIMIT")


def test_resolution_1024_is_refused_where_it_cannot_train(tmp_path):
    """An MLP on 1024x1024 images has 270 M weights and peaks near 11 GB while training: with a 4 GB address
    space (ulimit -v) it is refused before the run folder exists; before the fix it died in the allocator after
    writing the folder."""
    from PIL import Image

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.new("L", (8, 8), i).save(imgs / f"{i}.png")

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))
    r = subprocess.run([sys.executable, "-m", "gankit", "train", "--dataset", "folder", "--data-dir", str(imgs),
                        "--data.resolution", "1024", "--batch-size", "2", "--steps", "1", "--out",
                        str(tmp_path / "run"), "--no-progress"], capture_output=True, text=True, preexec_fn=cap,
                       env={**os.environ, "GANKIT_MEMORY_LIMIT": ""}, timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("gankit: error: training G and D on data of shape "
                                                             "[1, 1024, 1024] (269,497,217 weights; ")
    assert "would need 10.1 GB, more than the 4.0 GB of memory available" in r.stderr
    assert not (tmp_path / "run").exists()


def test_sample_counts_are_sized(tmp_path, monkeypatch):
    cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.steps": 2, "train.progress": False})
    g = gankit.load(gankit.train(cfg, tmp_path / "run", log=lambda *_: None).run_dir)
    monkeypatch.setenv("GANKIT_MEMORY_LIMIT", "1M")
    with pytest.raises(GankitError, match=r"^100,000 samples of shape \[1, 8, 8\] would need 54\.9 MB, more than "
                                          r"the 1\.0 MB"):
        g.sample(100_000)
    assert g.sample(100).shape == (100, 1, 8, 8)


def test_layer_outputs_of_the_seed_mlp_by_hand():
    """G: Dense 128, leaky ReLU, Dense 64, tanh; D: Dense 128, leaky ReLU, Dense 1 (8x8 digits, batch 100)."""
    from gankit.memory import _activations, _meta_models

    cfg = gankit.preset("seed").model
    G, D = _meta_models(cfg, (1, 8, 8))
    assert _activations(G, D, cfg, 100) == 100 * ((128 + 128 + 64 + 64) + (128 + 128 + 1))
