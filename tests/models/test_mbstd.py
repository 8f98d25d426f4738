"""model.d_mbstd, the minibatch standard deviation of Karras et al. 2018 in the MLP D: the feature against a numpy
closed form at the seed's sizes, the seed's layer sizes kept, real and fake judged in separate passes, and the paths
that cannot take it refusing it in one line."""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import gankit
from gankit.config import ModelConfig, RunConfig
from gankit.errors import GankitError
from gankit.models import build_discriminator, check_model, has_batch_coupling
from gankit.models.layers import MinibatchStd
from gankit.training import options
from gankit.training.loop import Trainer


def _by_hand(x: np.ndarray, group: int) -> np.ndarray:
    """The appended column: per group (rows j, j + n/g, j + 2n/g, ...), the population std of each column, averaged."""
    n = len(x)
    stride = n // group if n % group == 0 else 1
    col = np.empty(n)
    for j in range(stride):
        col[j::stride] = np.sqrt(x[j::stride].var(axis=0) + 1e-8).mean()
    return col


@pytest.mark.parametrize("n,group", [(100, 4), (100, 100), (64, 8), (6, 4), (5, 1)])
def test_the_feature_is_the_groups_mean_standard_deviation(n, group):
    x = torch.randn(n, 128, generator=torch.Generator().manual_seed(n), dtype=torch.float64) * 3 + 1
    out = MinibatchStd(group)(x)
    assert out.shape == (n, 129) and torch.equal(out[:, :128], x)
    np.testing.assert_allclose(out[:, 128].numpy(), _by_hand(x.numpy(), group), rtol=1e-12)


def test_a_collapsed_batch_shows_and_gradients_are_autograds():
    g = torch.Generator().manual_seed(0)
    same = torch.randn(1, 128, generator=g).repeat(8, 1)
    assert torch.allclose(MinibatchStd(4)(same)[:, -1], torch.full((8,), 1e-4))  # sqrt(eps): no spread at all
    x = torch.randn(8, 6, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(MinibatchStd(4), (x,))


def test_the_seed_d_keeps_its_layer_sizes_and_gets_one_more_input_to_its_head():
    D = build_discriminator(ModelConfig(d_mbstd=4), (1, 28, 28))
    linears = [m for m in D.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 128), (129, 1)]
    assert has_batch_coupling(D) and not has_batch_coupling(build_discriminator(ModelConfig(), (1, 28, 28)))
    x = torch.rand(10, 1, 28, 28) * 2 - 1
    assert D(x).shape == (10,) and D.features(x).shape == (10, 129)


def test_the_step_judges_real_and_fake_batches_apart(tmp_path, fashion_dir):
    cfg = gankit.preset("seed").with_overrides({
        "data.name": "fashion-mnist", "data.dir": str(fashion_dir), "model.d_mbstd": 4, "train.steps": 5, "train.progress": False,
        "train.sample_every": 0, "train.checkpoint_every": 0})
    tr = Trainer(cfg, tmp_path / "r", log=lambda *_: None)
    step = tr.train_step
    assert "minibatch std" in tr.step_kind and step.two_pass
    g = torch.Generator().manual_seed(3)
    real_u8 = tr.data.images[:100]
    z = torch.randn(100, 100, generator=g)
    D0 = copy.deepcopy(tr.D)  # D before this step's update
    ctx = step.d_phase([real_u8], None, [(z, None)])
    real, fake = ctx["real"].view(100, 1, 28, 28), ctx["fake"].detach()
    with torch.no_grad():
        assert torch.allclose(ctx["real_logits"], D0(real), atol=1e-6)
        assert torch.allclose(ctx["fake_logits"], D0(fake), atol=1e-6)
        # one pass on both would put real and fake samples in the same groups, and score the reals otherwise
        assert not torch.allclose(D0(torch.cat([real, fake]))[:100], D0(real), atol=1e-3)


def test_what_cannot_take_it_refuses_it_in_one_line(tmp_path):
    with pytest.raises(GankitError, match="model.d_mbstd must be 0"):
        ModelConfig(d_mbstd=-1)
    with pytest.raises(GankitError, match="d_mbstd") as e:
        check_model(ModelConfig(arch="dcgan", d_mbstd=4))
    assert "\n" not in str(e.value)
    why = options.why_not("seeds", RunConfig().with_overrides({"model.d_mbstd": 4}))
    assert why is not None and "model.d_mbstd" in why
    odd = RunConfig().with_overrides({"model.d_mbstd": 8})  # batch 100
    with pytest.raises(GankitError, match="not a multiple of model.d_mbstd 8"):
        options.check("run", odd, options.Context(local_batch=100))


def test_a_cli_run_with_it_trains_and_resumes(tmp_path):
    run = tmp_path / "r"
    base = [sys.executable, "-m", "gankit", "train", "--preset", "seed", "--dataset", "digits", "--model.d_mbstd",
            "4", "--train.sample_every", "0", "--no-progress", "--out", str(run)]
    p = subprocess.run(base + ["--train.steps", "20"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([sys.executable, "-m", "gankit", "train", "--resume", str(run), "--train.steps", "30",
                        "--no-progress"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["step"].startswith("autograd") and "minibatch std" in manifest["step"]
    g = gankit.load(run)
    assert g.config.model.d_mbstd == 4 and g.step == 30
