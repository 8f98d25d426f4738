"""The five experiments of ``gankit theory``: each returns JSON-able ``numbers`` and the ``curves`` its figures need.

Every experiment seeds its own models and samplers from ``Settings.seed``, so sections can run alone and a run is
repeatable. The p_data, p_g and network sizes used are named in each function and echoed into the report.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.stats import gaussian_kde

from ..losses import g_minimax, g_nonsaturating
from . import closed_form as cf
from .toy import (
    RING8_MEANS,
    Discriminator,
    GANHistory,
    Generator,
    energy_distance,
    mode_stats,
    ring8_sample,
    train_d_fixed,
    train_gan,
    value_mc,
)

D_HIDDEN = (64, 64)  # D of sections 1 and 2
GAN_HIDDEN = (32, 32)  # G and D of sections 3 and 4
GAN_Z_DIM = 4
RING_G_HIDDEN, RING_D_HIDDEN = (128, 128), (128,)  # section 5
RING_BATCH = 256  # D inputs per step
LR_ADAM = 1e-3
LR_RING = 5e-4


@dataclass(frozen=True)
class Settings:
    """Sizes of the experiments; ``quick`` shrinks them to a smoke test that still writes every figure."""

    quick: bool = False
    seed: int = 0
    d_steps: int = 2000  # steps of D's fit against a fixed p_g (sections 1, 2)
    d_batch: int = 512
    mc_samples: int = 200_000  # Monte Carlo samples per distribution for V(D, G)
    gan_steps: int = 3000  # section 3
    gan_evals: int = 30  # evaluations of V and JSD along section 3
    kde_samples: int = 4096
    sat_steps: int = 400  # section 4
    sat_warmup: int = 300
    ring_steps: int = 3000  # section 5
    ring_pack: int = 2
    ring_snapshots: int = 5

    @staticmethod
    def make(quick: bool, seed: int = 0, ring_pack: int = 2) -> Settings:
        if not quick:
            return Settings(quick=False, seed=seed, ring_pack=ring_pack)
        return Settings(quick=True, seed=seed, d_steps=200, d_batch=256, mc_samples=20_000, gan_steps=200,
                        gan_evals=5, kde_samples=1024, sat_steps=60, sat_warmup=100, ring_steps=150,
                        ring_pack=ring_pack, ring_snapshots=3)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def _d_of(D: Discriminator, x: np.ndarray) -> np.ndarray:
    """D(x) = sigmoid(logit) on a 1-D grid."""
    return torch.sigmoid(D(torch.tensor(x, dtype=torch.float32)[:, None])).double().numpy()


def fit_d(p_data: cf.Mixture1D, p_g: cf.Mixture1D, s: Settings, seed: int) -> Discriminator:
    """An MLP D (1 -> 64 -> 64 -> 1) fitted against fixed p_data and p_g (see toy.train_d_fixed)."""
    torch.manual_seed(seed)
    D = Discriminator(1, D_HIDDEN)
    train_d_fixed(D, p_data.sample, p_g.sample, steps=s.d_steps, batch=s.d_batch, lr=2e-3, generator=_gen(seed))
    return D


def d_gap(D: Discriminator, p_data: cf.Mixture1D, p_g: cf.Mixture1D, x: np.ndarray, min_density: float = 0.01):
    """|D(x) - D*(x)| on the points of grid x where the mixture (p_data + p_g)/2 is at least ``min_density``
    (elsewhere neither distribution has samples and D is unconstrained). Returns (gap, mask)."""
    mask = 0.5 * (p_data.pdf(x) + p_g.pdf(x)) >= min_density
    return np.abs(_d_of(D, x) - cf.d_star(p_data, p_g, x))[mask], mask


SECTION1_CASES = [cf.gaussian(1.0, 1.0), cf.gaussian(0.0, 2.0),
                  cf.Mixture1D((0.5, 0.5), (-2.0, 2.0), (0.5, 0.5), "½N(-2, 0.5²) + ½N(2, 0.5²)")]
S1_TOLERANCE = {"max": 0.1, "mean": 0.03}  # what a full run must meet; the tests check a quick fit


def optimal_d(s: Settings) -> dict:
    """Section 1: D fitted against a fixed p_g approaches D* = p_data / (p_data + p_g)."""
    p_data = cf.P_DATA_REF
    x = np.linspace(-5.0, 5.0, 501)
    rows, curves = [], []
    for i, p_g in enumerate(SECTION1_CASES):
        D = fit_d(p_data, p_g, s, s.seed + 10 + i)
        gap, mask = d_gap(D, p_data, p_g, x)
        rows.append({"p_data": p_data.label, "p_g": p_g.label, "max_gap": float(gap.max()),
                     "mean_gap": float(gap.mean()), "grid_points": int(mask.sum())})
        curves.append({"label": p_g.label, "x": x, "d": _d_of(D, x), "d_star": cf.d_star(p_data, p_g, x),
                       "p_data": p_data.pdf(x), "p_g": p_g.pdf(x), "mask": mask})
    return {"numbers": {"cases": rows, "tolerance": S1_TOLERANCE, "d_steps": s.d_steps, "d_batch": s.d_batch,
                        "grid": "501 points on [-5, 5] where (p_data + p_g)/2 >= 0.01"}, "curves": curves}


def value_of_game(s: Settings) -> dict:
    """Section 2: C(G) by quadrature, V(D_trained, G) by Monte Carlo and -log 4 + 2 JSD, for docs/PROTOCOLS.md §5."""
    p_data = cf.P_DATA_REF
    rows = []
    for i, (p_g, ref_jsd, ref_c) in enumerate(cf.REFERENCE_PAIRS):
        js = cf.jsd(p_data, p_g)
        D = fit_d(p_data, p_g, s, s.seed + 20 + i)
        g = _gen(s.seed + 1000 + i)
        v, se = value_mc(D, p_data.sample(s.mc_samples, g), p_g.sample(s.mc_samples, g))
        rows.append({"p_g": p_g.label, "jsd": js, "c_from_jsd": cf.c_from_jsd(js),
                     "c_quadrature": cf.value_at_d_star(p_data, p_g), "v_trained_d": v, "v_trained_d_se": se,
                     "reference_jsd": ref_jsd, "reference_c": ref_c})
    return {"numbers": {"pairs": rows, "p_data": p_data.label, "mc_samples": s.mc_samples,
                        "minus_log4": -cf.LOG4}, "curves": rows}


S3_P_DATA = cf.Mixture1D((0.5, 0.5), (-2.0, 2.0), (0.5, 0.5), "½N(-2, 0.5²) + ½N(2, 0.5²)")


def _kde_jsd(p_data: cf.Mixture1D, samples: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """JSD(p_data || p_g) with p_g a Gaussian KDE (Scott's bandwidth) of the samples, trapezoid rule on x."""
    kde = gaussian_kde(samples)
    q = kde(x)
    return cf.jsd_on_grid(p_data.pdf(x), q, x), q


def training_dynamics(s: Settings) -> dict:
    """Section 3: a 1-D GAN on a two-mode p_data; V(D, G) -> -log 4 and JSD(p_data || p_g) -> 0."""
    p_data = S3_P_DATA
    x = np.linspace(-5.0, 5.0, 1001)
    torch.manual_seed(s.seed + 30)
    G, D = Generator(GAN_Z_DIM, GAN_HIDDEN, 1), Discriminator(1, GAN_HIDDEN)
    ev = _gen(s.seed + 31)
    every = max(1, s.gan_steps // s.gan_evals)
    snap_at = sorted({0, s.gan_steps // 10, s.gan_steps // 3, s.gan_steps})
    trace = {"step": [], "v": [], "v_se": [], "jsd": []}
    snaps, frames = [], []  # frames: every evaluation, for the animation

    def on_step(step: int, G: Generator, D: Discriminator) -> None:
        if step % every and step not in snap_at:
            return
        fake = G.sample(s.kde_samples, ev)
        js, q = _kde_jsd(p_data, fake.numpy()[:, 0].astype(np.float64), x)
        v, se = value_mc(D, p_data.sample(8192, ev), G.sample(8192, ev))
        for k, val in zip(trace, (step, v, se, js)):
            trace[k].append(val)
        frames.append({"step": step, "p_g": q.astype(np.float32), "d": _d_of(D, x).astype(np.float32), "jsd": js})
        if step in snap_at:
            snaps.append({"step": step, "p_g": q, "d": _d_of(D, x), "samples": fake.numpy()[:, 0]})

    train_gan(G, D, p_data.sample, g_nonsaturating, steps=s.gan_steps, batch=256, lr=LR_ADAM,
              generator=_gen(s.seed), on_step=on_step)
    floor = float(np.mean([_kde_jsd(p_data, p_data.sample(s.kde_samples, ev).numpy()[:, 0].astype(np.float64),
                                    x)[0] for _ in range(5)]))
    tail = max(1, len(trace["jsd"]) // 5)  # the last fifth of the evaluations
    numbers = {"p_data": p_data.label, "steps": s.gan_steps, "g_loss": "non-saturating",
               "optimizer": f"Adam {LR_ADAM:g}, β=(0.5, 0.999)", "batch": 256, "z_dim": GAN_Z_DIM,
               "hidden": list(GAN_HIDDEN),
               "p_g_estimate": f"Gaussian KDE (Scott's bandwidth) of {s.kde_samples} G samples",
               "v_start": trace["v"][0], "v_end": trace["v"][-1],
               "v_last_fifth_mean": float(np.mean(trace["v"][-tail:])),
               "jsd_start": trace["jsd"][0], "jsd_end": trace["jsd"][-1],
               "jsd_last_fifth_mean": float(np.mean(trace["jsd"][-tail:])), "jsd_kde_floor": floor,
               "minus_log4": -cf.LOG4}
    return {"numbers": numbers,
            "curves": {"trace": trace, "snaps": snaps, "frames": frames, "x": x, "p_data": p_data.pdf(x)}}


# ---- section 4 --------------------------------------------------------------------------------------------------
def loss_gradients(d_values: np.ndarray) -> dict:
    """dL/dlogit of gankit.losses.g_minimax and g_nonsaturating by autograd, one fake sample at D(G(z)) = d."""
    out = {"minimax": [], "nonsaturating": []}
    for d in d_values:
        for name, fn in (("minimax", g_minimax), ("nonsaturating", g_nonsaturating)):
            logit = torch.tensor([math.log(d / (1 - d))], dtype=torch.float64, requires_grad=True)
            fn(logit, None).backward()
            out[name].append(float(logit.grad[0]))
    return {k: np.array(v) for k, v in out.items()}


class _Gauss2D:
    """N(mean, std² I) in 2-D, the 2-D twin of section 4's 1-D target."""

    def __init__(self, mean: tuple[float, float], std: float):
        self.mean, self.std = torch.tensor(mean), std
        self.label = f"N(({mean[0]:g}, {mean[1]:g}), {std:g}² I)"

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.mean + self.std * torch.randn(n, 2, generator=generator)


S4_TARGETS = {"1-D": cf.gaussian(3.0, 0.5), "2-D": _Gauss2D((2.0, 2.0), 0.5)}
S4_OPTIMIZERS = {"sgd": {"lr": 0.05, "label": "SGD 0.05, momentum 0.5"},
                 "adam": {"lr": LR_ADAM, "label": "Adam 1e-3, β=(0.5, 0.999)"}}
S4_ESCAPE = 0.1  # G has "escaped" saturation once the batch mean of D(G(z)) reaches this


def _warm_start(dim: int, target, s: Settings) -> tuple[Generator, Discriminator, torch.Generator]:
    """The paper's case: early on G is poor and D rejects its samples confidently. Build G and D and fit D to the
    initial G; every run of section 4 starts from copies of these networks and of this random stream."""
    torch.manual_seed(s.seed + 40)
    G, D = Generator(GAN_Z_DIM, GAN_HIDDEN, dim), Discriminator(dim, GAN_HIDDEN)
    g = _gen(s.seed + 41)
    train_d_fixed(D, target.sample, G.sample, steps=s.sat_warmup, batch=256, lr=3e-3, generator=g)
    return G, D, g


def _saturation_run(start: tuple, target, opt_name: str, g_loss, s: Settings) -> tuple[GANHistory, list, list]:
    G, D = copy.deepcopy(start[0]), copy.deepcopy(start[1])
    g = torch.Generator()
    g.set_state(start[2].get_state())
    ev, ed_steps, eds = _gen(s.seed + 42), [], []
    every = 10 if not s.quick else 5

    def on_step(step: int, G: Generator, D: Discriminator) -> None:
        if step % every == 0 or step == s.sat_steps:
            ed_steps.append(step)
            eds.append(energy_distance(G.sample(1000, ev), target.sample(1000, ev)))

    hist = train_gan(G, D, target.sample, g_loss, steps=s.sat_steps, batch=256, lr=S4_OPTIMIZERS[opt_name]["lr"],
                     generator=g, optimizer=opt_name, on_step=on_step)
    return hist, ed_steps, eds


def saturation(s: Settings) -> dict:
    """Section 4: minimax vs non-saturating G loss from the same seed, starting where D rejects fakes."""
    d_grid = np.array([0.001, 0.01, 0.1, 0.5, 0.9, 0.99])
    autograd = loss_gradients(d_grid)
    runs, curves = [], []
    early = slice(0, min(50, s.sat_steps))
    for dim_name, target in S4_TARGETS.items():
        start = _warm_start(1 if dim_name == "1-D" else 2, target, s)
        for opt_name, opt in S4_OPTIMIZERS.items():
            for loss_name, g_loss in (("minimax", g_minimax), ("nonsaturating", g_nonsaturating)):
                hist, ed_steps, eds = _saturation_run(start, target, opt_name, g_loss, s)
                escaped = next((st for st, d in enumerate(hist.d_fake) if d >= S4_ESCAPE), None)
                ed_50 = eds[max(i for i, st in enumerate(ed_steps) if st <= 50)]
                runs.append({"dim": dim_name, "target": target.label, "optimizer": opt["label"], "g_loss": loss_name,
                             "d_fake_step0": hist.d_fake[0], "g_grad_norm_step0": hist.g_grad_norm[0],
                             "g_grad_norm_first50_mean": float(np.mean(hist.g_grad_norm[early])),
                             "d_fake_first50_mean": float(np.mean(hist.d_fake[early])),
                             "steps_until_d_fake_above_escape": escaped, "energy_distance_start": eds[0],
                             "energy_distance_step50": ed_50, "energy_distance_end": eds[-1]})
                curves.append({"dim": dim_name, "opt": opt_name, "loss": loss_name, "hist": hist,
                               "ed_steps": ed_steps, "ed": eds})
    numbers = {"runs": runs, "warmup_d_steps": s.sat_warmup, "steps": s.sat_steps, "escape_d_fake": S4_ESCAPE,
               "autograd_check": [{"d": float(d), "minimax": float(mm), "nonsaturating": float(ns),
                                   "ratio": float(ns / mm), "ratio_closed_form": float(cf.grad_ratio(d))}
                                  for d, mm, ns in zip(d_grid, autograd["minimax"], autograd["nonsaturating"])]}
    return {"numbers": numbers, "curves": {"runs": curves, "d_grid": d_grid, "autograd": autograd}}


# ---- section 5 --------------------------------------------------------------------------------------------------
def _ring_run(pack: int, snap_at: list[int], s: Settings) -> list[dict]:
    torch.manual_seed(s.seed + 50)
    G, D = Generator(2, RING_G_HIDDEN, 2), Discriminator(2, RING_D_HIDDEN, pack=pack)
    ev, snaps = _gen(s.seed + 51), []

    def on_step(step: int, G: Generator, D: Discriminator) -> None:
        if step in snap_at:
            x = G.sample(2500, ev).numpy()
            snaps.append({"step": step, "samples": x, **mode_stats(x)})

    train_gan(G, D, ring8_sample, g_nonsaturating, steps=s.ring_steps, batch=RING_BATCH, lr=LR_RING,
              generator=_gen(s.seed), on_step=on_step)
    return snaps


def mode_collapse(s: Settings) -> dict:
    """Section 5: a plain GAN and a PacGAN (D judges ``ring_pack`` samples at once) on ring8, same seed."""
    snap_at = sorted({round(k * s.ring_steps / (s.ring_snapshots - 1)) for k in range(s.ring_snapshots)})
    results, curves = [], []
    for pack in (1, s.ring_pack):
        snaps = _ring_run(pack, snap_at, s)
        name = "GAN" if pack == 1 else f"PacGAN{pack}"
        results.append({"method": name, "pack": pack,
                        "snapshots": [{k: v for k, v in sn.items() if k != "samples"} for sn in snaps]})
        curves.append({"method": name, "snaps": snaps})
    numbers = {"steps": s.ring_steps, "batch": RING_BATCH, "z_dim": 2, "g_hidden": list(RING_G_HIDDEN),
               "d_hidden": list(RING_D_HIDDEN), "optimizer": f"Adam {LR_RING:g}, β=(0.5, 0.999)",
               "g_loss": "non-saturating", "eval_samples": 2500, "methods": results}
    return {"numbers": numbers, "curves": {"runs": curves, "means": RING8_MEANS}}


SECTIONS = {1: ("optimal_d", optimal_d), 2: ("value_of_game", value_of_game),
            3: ("training_dynamics", training_dynamics), 4: ("non_saturating", saturation),
            5: ("mode_collapse", mode_collapse)}


def run_sections(s: Settings, which: list[int], log=print) -> dict[int, dict]:
    """Run the chosen sections in order; each result gets ``numbers['seconds']``."""
    out = {}
    for k in which:
        name, fn = SECTIONS[k]
        t0 = time.perf_counter()
        log(f"section {k} ({name}) ...")
        res = fn(s)
        res["numbers"]["seconds"] = round(time.perf_counter() - t0, 2)
        out[k] = res
    return out


def settings_dict(s: Settings) -> dict:
    return asdict(s)

