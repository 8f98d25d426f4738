"""Toy nets (models/toy.py): maxout arithmetic against a direct max over pieces; PacGAN's 2-D networks
(docs/PROTOCOLS.md §1) pinned layer by layer and by exact parameter counts."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit.config import preset_config
from gankit.models import build_discriminator, build_generator
from gankit.models.pack import PackedDiscriminator
from gankit.models.toy import Maxout, SlotBatchNorm1d


def test_maxout_hand_weights_closed_form():
    # one input, 2 units × 3 pieces; rows j·pieces .. j·pieces + pieces - 1 of lin are unit j's pieces
    m = Maxout(1, 2, 3).double()
    with torch.no_grad():
        m.lin.weight.copy_(torch.tensor([[1.0], [2.0], [3.0], [-1.0], [-2.0], [-3.0]]))
        m.lin.bias.copy_(torch.tensor([0.0, 0.0, 0.5, 0.0, 1.0, 0.0]))
    x = torch.tensor([[1.0], [-1.0], [0.0]], dtype=torch.float64)
    # unit 0: max(x, 2x, 3x + 0.5); unit 1: max(-x, -2x + 1, -3x)
    want = torch.tensor([[3.5, -1.0], [-1.0, 3.0], [0.5, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(m(x), want, rtol=0, atol=0)


def test_maxout_matches_direct_max_over_pieces():
    g = torch.Generator().manual_seed(0)
    d_in, d_out, pieces = 5, 4, 3
    m = Maxout(d_in, d_out, pieces).double()
    W = torch.randn(d_out * pieces, d_in, dtype=torch.float64, generator=g)
    b = torch.randn(d_out * pieces, dtype=torch.float64, generator=g)
    with torch.no_grad():
        m.lin.weight.copy_(W)
        m.lin.bias.copy_(b)
    x = torch.randn(7, d_in, dtype=torch.float64, generator=g)
    want = torch.empty(7, d_out, dtype=torch.float64)
    for n in range(7):
        for j in range(d_out):
            want[n, j] = max(float(x[n] @ W[j * pieces + k] + b[j * pieces + k]) for k in range(pieces))
    torch.testing.assert_close(m(x), want, rtol=1e-12, atol=1e-12)


def _g_params(z: int, widths: tuple[int, ...], out: int) -> int:
    """Linear layers (weight + bias), each hidden one followed by batch norm (scale + shift), then Linear to out."""
    total, w_in = 0, z
    for h in widths:
        total += w_in * h + h + 2 * h
        w_in = h
    return total + w_in * out + out


def _d_params(d_in: int, units: int, pieces: int, layers: int) -> int:
    """``layers`` maxout layers (a Linear to units·pieces each), then Linear(units, 1)."""
    total, w_in = 0, d_in
    for _ in range(layers):
        total += w_in * units * pieces + units * pieces
        w_in = units
    return total + units + 1


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name,m", [("pacgan-ring8", 4), ("gan-ring8", 1)])
def test_pacgan_networks_match_the_protocol(name, m):
    """docs/PROTOCOLS.md §1: G = MLP 4×400 BN + ReLU, z 2-D, output 2; D = 3 maxout layers 200 × 5, m samples
    packed."""
    cfg = preset_config(name).model
    G, D = build_generator(cfg, (2,)), build_discriminator(cfg, (2,))

    assert G.z_dim == 2
    layers = list(G.net)
    assert len(layers) == 4 * 3 + 1
    bn_type = SlotBatchNorm1d if m > 1 else nn.BatchNorm1d
    for i in range(4):
        lin, bn, act = layers[3 * i: 3 * i + 3]
        assert isinstance(lin, nn.Linear) and (lin.in_features, lin.out_features) == (2 if i == 0 else 400, 400)
        assert type(bn) is bn_type and bn.num_features == 400 and bn.affine
        assert getattr(bn, "slots", 1) == m  # PacGAN's code normalises each pack slot on its own
        assert type(act) is nn.ReLU
    assert isinstance(layers[-1], nn.Linear) and (layers[-1].in_features, layers[-1].out_features) == (400, 2)
    assert _count(G) == _g_params(2, (400,) * 4, 2) == 2 * 400 + 400 + 3 * (400 * 400 + 400) + 4 * 800 + 400 * 2 + 2

    inner = D
    if m > 1:
        assert isinstance(D, PackedDiscriminator) and D.pack == m
        inner = D.inner
    else:
        assert not isinstance(D, PackedDiscriminator)
    feats = list(inner.features)
    assert isinstance(feats[0], nn.Flatten) and len(feats) == 4  # no norm, no dropout between maxouts
    for i, mx in enumerate(feats[1:]):
        assert isinstance(mx, Maxout) and (mx.d_out, mx.pieces) == (200, 5)
        assert (mx.lin.in_features, mx.lin.out_features) == (2 * m if i == 0 else 200, 1000)
    assert (inner.head.in_features, inner.head.out_features) == (200, 1)
    assert _count(D) == _d_params(2 * m, 200, 5, 3) == (2 * m * 1000 + 1000) + 2 * (200 * 1000 + 1000) + 201
    assert D(torch.randn(4 * m, 2)).shape == (4,)
