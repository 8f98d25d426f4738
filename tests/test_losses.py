"""Every loss against values computed by hand from its definition; G gradients against their closed forms."""
from __future__ import annotations

import math

import pytest
import torch

from gankit.errors import GankitError
from gankit.losses import (G_NEEDS_REAL, TARGETLESS, check_targets, d_bce, d_relativistic, g_minimax,
                           g_needs_real, g_nonsaturating, g_relativistic, get_loss, list_losses)

REAL = torch.tensor([2.0, -1.0], dtype=torch.float64)
FAKE = torch.tensor([0.5, -3.0], dtype=torch.float64)


def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_registry_lists_all_six():
    assert list_losses() == ["hinge", "least_squares", "minimax", "nonsaturating", "relativistic", "wasserstein"]
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
    assert get_loss("nonsaturating")[1](FAKE, REAL).item() == pytest.approx(want_ns, rel=1e-12)
    assert get_loss("minimax")[1](FAKE, REAL).item() == pytest.approx(want_mm, rel=1e-12)


@pytest.mark.parametrize("name", ["minimax", "nonsaturating"])
def test_g_gradient_closed_form(name):
    # d/dl mean(log(1 - σ(l))) = -σ(l)/N;  d/dl -mean(log σ(l)) = -(1 - σ(l))/N
    logits = torch.linspace(-6, 6, 13, dtype=torch.float64, requires_grad=True)
    get_loss(name)[1](logits, None).backward()
    s = torch.sigmoid(logits.detach())
    want = -s / 13 if name == "minimax" else -(1 - s) / 13
    torch.testing.assert_close(logits.grad, want)
    if name == "minimax":  # saturation: when D rejects fakes (l -> -inf) the minimax gradient vanishes
        assert abs(logits.grad[0].item()) < 1e-3 < abs(logits.grad[-1].item())


def test_minimax_is_stable_for_extreme_logits():
    t = torch.tensor([-100.0, 100.0])
    assert torch.isfinite(g_minimax(t, None)) and torch.isfinite(g_nonsaturating(t, None))


def test_least_squares_by_hand():
    d, g = get_loss("least_squares")
    # ½·mean((2-1)², (-1-1)²) + ½·mean((0.5-0)², (-3-0)²) = ½·2.5 + ½·4.625
    assert d(REAL, FAKE, real_target=1.0, fake_target=0.0).item() == pytest.approx(0.5 * 2.5 + 0.5 * 4.625)
    # with targets 0.9/0.1: ½·mean(1.1², 1.9²) + ½·mean(0.4², 3.1²)
    want = 0.5 * (1.21 + 3.61) / 2 + 0.5 * (0.16 + 9.61) / 2
    assert d(REAL, FAKE, real_target=0.9, fake_target=0.1).item() == pytest.approx(want)
    assert g(FAKE, REAL).item() == pytest.approx(0.5 * (0.25 + 16.0) / 2)


def test_hinge_by_hand():
    d, g = get_loss("hinge")
    # real: max(0, 1-2)=0, max(0, 1+1)=2 -> 1; fake: max(0, 1.5)=1.5, max(0, -2)=0 -> 0.75
    assert d(REAL, FAKE).item() == pytest.approx(1.75)
    assert g(FAKE, REAL).item() == pytest.approx(1.25)


def test_wasserstein_by_hand():
    d, g = get_loss("wasserstein")
    assert d(REAL, FAKE).item() == pytest.approx(-1.25 - 0.5)
    assert g(FAKE, REAL).item() == pytest.approx(1.25)


# ---- the G-loss contract: g_loss(fake_logits, real_logits) ----------------------------------------------------
@pytest.mark.parametrize("name", list_losses())
def test_every_g_loss_takes_fake_and_real(name):
    g = get_loss(name)[1]
    other = torch.tensor([-0.7, 4.0], dtype=torch.float64)
    with_real = g(FAKE, REAL)
    assert with_real.shape == () and torch.isfinite(with_real)
    if g_needs_real(name):
        assert g(FAKE, other).item() != pytest.approx(with_real.item())
        with pytest.raises(GankitError, match=f"loss '{name}' needs D's logits on a real batch"):
            g(FAKE, None)
    else:  # the others ignore real_logits: any real batch, or None, gives the same value
        assert g(FAKE, None).item() == with_real.item() == g(FAKE, other).item()


def test_g_needs_real_names_only_known_losses():
    assert G_NEEDS_REAL == {"relativistic"} and G_NEEDS_REAL <= set(list_losses())
    assert [n for n in list_losses() if g_needs_real(n)] == ["relativistic"]
    with pytest.raises(GankitError, match="unknown loss 'rel'"):
        g_needs_real("rel")


# ---- relativistic pairing (RpGAN; the R3GAN loss) ------------------------------------------------------------
def _log1p_exp(t: float) -> float:
    return math.log(1.0 + math.exp(t))  # the logits below stay in |t| < 10: no overflow


def _pair_logits(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return (3 * torch.randn(n, generator=g, dtype=torch.float64),
            3 * torch.randn(n, generator=g, dtype=torch.float64))


def test_relativistic_by_hand():
    real, fake = _pair_logits()
    r, f = real.tolist(), fake.tolist()
    # D: mean_i log(1 + exp(-(r_i - f_i)));  G: mean_i log(1 + exp(-(f_i - r_i)))  (R3GAN's f(t) = softplus(-t))
    want_d = sum(_log1p_exp(-(ri - fi)) for ri, fi in zip(r, f)) / len(r)
    want_g = sum(_log1p_exp(-(fi - ri)) for ri, fi in zip(r, f)) / len(r)
    d, g = get_loss("relativistic")
    assert d is d_relativistic and g is g_relativistic
    assert d(real, fake).item() == pytest.approx(want_d, rel=1e-12)
    assert g(fake, real).item() == pytest.approx(want_g, rel=1e-12)
    # pairs, not batch means: swapping two fakes changes the loss (a batch-average relativistic loss would not)
    assert d(real, fake.flip(0)).item() != pytest.approx(want_d, rel=1e-6)


def test_relativistic_small_values_by_hand():
    # pairs (2, 0.5) and (-1, -3): differences 1.5 and 2
    want_d = (math.log(1 + math.exp(-1.5)) + math.log(1 + math.exp(-2.0))) / 2
    want_g = (math.log(1 + math.exp(1.5)) + math.log(1 + math.exp(2.0))) / 2
    assert d_relativistic(REAL, FAKE).item() == pytest.approx(want_d, rel=1e-12)
    assert g_relativistic(FAKE, REAL).item() == pytest.approx(want_g, rel=1e-12)


def test_relativistic_g_is_d_with_roles_swapped():
    real, fake = _pair_logits()
    assert g_relativistic(fake, real).item() == d_relativistic(fake, real).item()
    assert g_relativistic(real, fake).item() == d_relativistic(real, fake).item()
    # at equal logits D cannot tell real from fake: both losses are log 2
    assert d_relativistic(real, real).item() == pytest.approx(math.log(2), rel=1e-12)


def test_relativistic_gradients_gradcheck():
    real, fake = (t.requires_grad_(True) for t in _pair_logits(6))
    assert torch.autograd.gradcheck(lambda r, f: d_relativistic(r, f), (real, fake))
    assert torch.autograd.gradcheck(lambda f, r: g_relativistic(f, r), (fake, real))


def test_relativistic_gradient_closed_form():
    # d/df_i mean softplus(r - f) = -σ(r_i - f_i)/N: G pushes each fake above its own real, hardest when far below
    real, fake = _pair_logits()
    fake.requires_grad_(True)
    g_relativistic(fake, real).backward()
    torch.testing.assert_close(fake.grad, -torch.sigmoid(real - fake.detach()) / real.numel())


def test_relativistic_is_stable_for_extreme_logits():
    r, f = torch.tensor([100.0, -100.0]), torch.tensor([-100.0, 100.0])
    assert torch.isfinite(d_relativistic(r, f)) and torch.isfinite(g_relativistic(f, r))


def test_relativistic_refuses_unpaired_logits():
    # packing gives B/pack logits per half, still equal; unequal halves have no pairing
    with pytest.raises(GankitError, match=r"pairs real and fake logits one to one, got real \(4,\) and fake \(2,\)"):
        d_relativistic(torch.zeros(4), torch.zeros(2))
    with pytest.raises(GankitError, match="one to one"):
        g_relativistic(torch.zeros(4), torch.zeros(4, 1))


def test_relativistic_has_no_targets():
    assert "relativistic" in TARGETLESS
    check_targets("relativistic", 1.0, 0.0)
    with pytest.raises(GankitError, match="loss 'relativistic' has no targets, but loss.real_target=0.9"):
        check_targets("relativistic", 0.9, 0.0)
    with pytest.raises(GankitError, match="has no targets"):
        check_targets("relativistic", 1.0, 0.1)
