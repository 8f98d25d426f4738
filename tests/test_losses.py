"""Every loss against values computed by hand from its definition; G gradients against their closed forms."""
from __future__ import annotations

import math

import pytest
import torch

from gankit.errors import GankitError
from gankit.losses import d_bce, g_minimax, g_nonsaturating, get_loss, list_losses

REAL = torch.tensor([2.0, -1.0], dtype=torch.float64)
FAKE = torch.tensor([0.5, -3.0], dtype=torch.float64)


def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_registry_lists_all_five():
    assert list_losses() == ["hinge", "least_squares", "minimax", "nonsaturating", "wasserstein"]
    with pytest.raises(GankitError, match="unknown loss 'foo'"):
        get_loss("foo")


def test_loss_registry_rejects_unknown_names():
    assert "nonsaturating" in list_losses() and "minimax" in list_losses()
    with pytest.raises(GankitError, match="unknown loss 'hinged'; choose one of"):
        get_loss("hinged")


def test_d_loss_at_half_is_log_4():
    # D(x) = D(G(z)) = 1/2 (logits 0): -V = log 2 + log 2
    z = torch.zeros(10)
    assert d_bce(z, z).item() == pytest.approx(math.log(4), rel=1e-7)


def test_bce_d_loss_by_hand():
    d, _ = get_loss("nonsaturating")
    rt, ft = 0.9, 0.1
    want = 0.0
    for v in REAL.tolist():
        want += -(rt * math.log(_sig(v)) + (1 - rt) * math.log(1 - _sig(v))) / 2
    for v in FAKE.tolist():
        want += -(ft * math.log(_sig(v)) + (1 - ft) * math.log(1 - _sig(v))) / 2
    assert d(REAL, FAKE, real_target=rt, fake_target=ft).item() == pytest.approx(want, rel=1e-12)


def test_g_losses_by_hand():
    want_ns = -(math.log(_sig(0.5)) + math.log(_sig(-3.0))) / 2
    want_mm = (math.log(1 - _sig(0.5)) + math.log(1 - _sig(-3.0))) / 2
    assert get_loss("nonsaturating")[1](FAKE).item() == pytest.approx(want_ns, rel=1e-12)
    assert get_loss("minimax")[1](FAKE).item() == pytest.approx(want_mm, rel=1e-12)


@pytest.mark.parametrize("name", ["minimax", "nonsaturating"])
def test_g_gradient_closed_form(name):
    # d/dl mean(log(1 - σ(l))) = -σ(l)/N;  d/dl -mean(log σ(l)) = -(1 - σ(l))/N
    logits = torch.linspace(-6, 6, 13, dtype=torch.float64, requires_grad=True)
    get_loss(name)[1](logits).backward()
    s = torch.sigmoid(logits.detach())
    want = -s / 13 if name == "minimax" else -(1 - s) / 13
    torch.testing.assert_close(logits.grad, want)
    if name == "minimax":  # saturation: when D rejects fakes (l -> -inf) the minimax gradient vanishes
        assert abs(logits.grad[0].item()) < 1e-3 < abs(logits.grad[-1].item())


def test_minimax_is_stable_for_extreme_logits():
    t = torch.tensor([-100.0, 100.0])
    assert torch.isfinite(g_minimax(t)) and torch.isfinite(g_nonsaturating(t))


def test_least_squares_by_hand():
    d, g = get_loss("least_squares")
    # ½·mean((2-1)², (-1-1)²) + ½·mean((0.5-0)², (-3-0)²) = ½·2.5 + ½·4.625
    assert d(REAL, FAKE, real_target=1.0, fake_target=0.0).item() == pytest.approx(0.5 * 2.5 + 0.5 * 4.625)
    # with targets 0.9/0.1: ½·mean(1.1², 1.9²) + ½·mean(0.4², 3.1²)
    want = 0.5 * (1.21 + 3.61) / 2 + 0.5 * (0.16 + 9.61) / 2
    assert d(REAL, FAKE, real_target=0.9, fake_target=0.1).item() == pytest.approx(want)
    assert g(FAKE).item() == pytest.approx(0.5 * (0.25 + 16.0) / 2)


def test_hinge_by_hand():
    d, g = get_loss("hinge")
    # real: max(0, 1-2)=0, max(0, 1+1)=2 -> 1; fake: max(0, 1.5)=1.5, max(0, -2)=0 -> 0.75
    assert d(REAL, FAKE).item() == pytest.approx(1.75)
    assert g(FAKE).item() == pytest.approx(1.25)


def test_wasserstein_by_hand():
    d, g = get_loss("wasserstein")
    assert d(REAL, FAKE).item() == pytest.approx(-1.25 - 0.5)
    assert g(FAKE).item() == pytest.approx(1.25)
