"""The seed MLP (models/mlp.py): sizes, TF1 initialisation (models/layers.py), forward shapes and ranges, other
shapes, depths and norms."""
import math

import pytest
import torch

from gankit.config import ModelConfig, preset_config
from gankit.models import build_discriminator, build_generator
from gankit.models.layers import glorot_uniform_


def count(m):
    return sum(p.numel() for p in m.parameters())


def test_seed_parameter_counts_match_the_tutorial():
    cfg = preset_config("seed").model
    G, D = build_generator(cfg, (1, 28, 28)), build_discriminator(cfg, (1, 28, 28))
    # G: 100*128 + 128 + 128*784 + 784; D: 784*128 + 128 + 128 + 1
    assert count(G) == 114_064
    assert count(D) == 100_609
    shapes = [tuple(p.shape) for p in G.parameters()]
    assert shapes == [(128, 100), (128,), (784, 128), (784,)]
    assert [tuple(p.shape) for p in D.parameters()] == [(128, 784), (128,), (1, 128), (1,)]


def test_seed_uses_glorot_uniform_with_zero_biases():
    torch.manual_seed(0)
    G = build_generator(preset_config("seed").model, (1, 28, 28))
    big = G.net[2]  # Linear(128, 784)
    bound = math.sqrt(6 / (128 + 784))
    w = big.weight.detach()
    assert w.abs().max() <= bound
    assert w.abs().max() > 0.99 * bound  # 100k draws reach the edge of U(-a, a)
    # U(-a, a) has variance a^2 / 3; with 100,352 draws the estimate is within 1 %
    assert w.var().item() == pytest.approx(bound**2 / 3, rel=0.02)
    assert w.mean().item() == pytest.approx(0.0, abs=4 * bound / math.sqrt(3 * w.numel()))
    for m in (G.net[0], G.net[2]):
        assert torch.count_nonzero(m.bias) == 0


def test_torch_init_differs_from_tf1_init():
    torch.manual_seed(0)
    lin = torch.nn.Linear(784, 128)
    assert torch.count_nonzero(lin.bias) > 0  # PyTorch's default draws biases
    glorot_uniform_(lin)
    assert torch.count_nonzero(lin.bias) == 0


def test_forward_shapes_and_ranges():
    cfg = preset_config("seed").model
    G, D = build_generator(cfg, (1, 28, 28)), build_discriminator(cfg, (1, 28, 28))
    z = torch.randn(7, 100) * 10  # large inputs saturate tanh but never leave [-1, 1]
    x = G(z)
    assert x.shape == (7, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    logits = D(x)
    assert logits.shape == (7,)


def test_leaky_slope_is_0_2():
    cfg = preset_config("seed").model
    G = build_generator(cfg, (1, 8, 8))
    act = G.net[1]
    v = torch.tensor([-1.0, 2.0])
    assert torch.equal(act(v), torch.tensor([-0.2, 2.0]))


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 28, 28)])
@pytest.mark.parametrize("g_norm", ["none", "batch", "layer"])
def test_mlp_generalises_to_shapes_depths_and_norms(shape, g_norm):
    cfg = ModelConfig(z_dim=16, g_hidden=(32, 64), d_hidden=(64, 32), g_norm=g_norm, d_norm="layer",
                      d_dropout=0.1)
    G, D = build_generator(cfg, shape), build_discriminator(cfg, shape)
    x = G(torch.randn(5, 16))
    assert x.shape == (5, *shape)
    out = D(x)
    out.sum().backward()
    assert all(p.grad is not None for p in G.parameters())
