"""Figures of the theory report, drawn with matplotlib's Agg backend from the ``curves`` of each experiment.

Each ``plot_*`` function writes its PNG(s) into ``out`` and returns the file names it wrote, in order; ``T``
gives its words (``theory.fig.*`` keys, :class:`gankit.theory.report.Text`), formulas stay as they are.
:func:`draw` draws every section's figures in a language: Chinese needs a CJK font (matplotlib's default
DejaVu Sans has no Chinese glyphs and would draw empty boxes), so without one the figures keep English words.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import numpy as np

from .report import Text

DPI = 80
# Fonts with Simplified Chinese glyphs, most likely first (Debian: fonts-wqy-microhei, fonts-noto-cjk).
CJK_FONTS = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
             "Source Han Sans CN", "Droid Sans Fallback", "SimHei", "Microsoft YaHei", "PingFang SC")
# Their files, for a font installed after matplotlib cached its font list (the cache is not rebuilt on its own).
_CJK_FILES = ("wqy", "notosanscjk", "notoserifcjk", "sourcehansans", "droidsansfallback", "simhei", "msyh",
              "pingfang")
EN = Text("en")
C_REAL, C_FAKE, C_D, C_MM, C_NS = "tab:blue", "tab:red", "tab:orange", "tab:red", "tab:blue"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def find_cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs (one of ``CJK_FONTS``), or None."""
    from matplotlib import font_manager

    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in names), None)

    if (name := known()) is not None:
        return name
    listed = {f.fname for f in font_manager.fontManager.ttflist}
    for path in font_manager.findSystemFonts():
        squashed = Path(path).name.lower().replace("-", "").replace("_", "")
        if path not in listed and any(tag in squashed for tag in _CJK_FILES):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):  # an unreadable font file: try the next
                continue
    return known()


def draw(results: dict[int, dict], out: Path, lang: str = "en",
         log: Callable[[str], None] = print) -> dict[int, list[str]]:
    """Every section's figures ``{section: [file, ...]}`` with their words in ``lang``; for "zh" without a CJK
    font, in English, and ``log`` gets a one-line note saying so."""
    font = find_cjk_font() if lang != "en" else None
    if lang != "en" and font is None:
        log(Text(lang)("theory.fig.no_cjk_font"))
        lang = "en"
    T = Text(lang)
    # DejaVu Sans after the CJK font: matplotlib falls back glyph by glyph, for the maths symbols it lacks
    style = {"font.family": "sans-serif", "font.sans-serif": [font, "DejaVu Sans"]} if font else {}
    with _plt().rc_context(style) if style else contextlib.nullcontext():
        return {k: PLOTS[k](res, out, T) for k, res in results.items()}


def _save(fig, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, dpi=DPI)  # PNG
    _plt().close(fig)
    return name


def plot_optimal_d(res: dict, out: Path, T: Text = EN) -> list[str]:
    plt = _plt()
    curves = res["curves"]
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.3), squeeze=False)
    for ax, c, row in zip(axes[0], curves, res["numbers"]["cases"]):
        x = c["x"]
        ax.fill_between(x, c["p_data"], color=C_REAL, alpha=0.15, label="p_data")
        ax.fill_between(x, c["p_g"], color=C_FAKE, alpha=0.15, label="p_g")
        ax.plot(x, c["d_star"], "k-", lw=2, label="D* = p_data/(p_data+p_g)")
        ax.plot(x, np.where(c["mask"], c["d"], np.nan), "--", color=C_D, lw=2, label=T("theory.fig.trained_d"))
        ax.plot(x, np.where(c["mask"], np.nan, c["d"]), ":", color=C_D, lw=1)
        ax.set_title(T("theory.fig.s1.title", p_g=c["label"], max=f"{row['max_gap']:.3f}",
                       mean=f"{row['mean_gap']:.4f}"), fontsize=9)
        ax.set_xlabel("x")
        ax.set_ylim(-0.02, 1.02)
    axes[0, 0].legend(fontsize=7, loc="center left")
    return [_save(fig, out, "s1_optimal_d.png")]


def plot_value(res: dict, out: Path, T: Text = EN) -> list[str]:
    plt = _plt()
    rows = res["numbers"]["pairs"]
    i = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.axhline(res["numbers"]["minus_log4"], color="grey", ls=":", label="-log 4")
    ax.plot(i, [r["c_from_jsd"] for r in rows], "o", mfc="none", mec="k", ms=14, label="-log 4 + 2 JSD")
    ax.plot(i, [r["c_quadrature"] for r in rows], "kx", ms=9, label=T("theory.fig.quadrature"))
    ax.errorbar(i + 0.15, [r["v_trained_d"] for r in rows], yerr=[2 * r["v_trained_d_se"] for r in rows], fmt="o",
                color=C_D, ms=5, capsize=3, label=T("theory.fig.mc_2se"))
    ax.set_xticks(i, [f"p_g = {r['p_g']}" for r in rows], fontsize=8)
    ax.set_ylabel(T("theory.fig.value_nats"))
    ax.set_title(f"p_data = {res['numbers']['p_data']}", fontsize=9)
    ax.legend(fontsize=8)
    return [_save(fig, out, "s2_value.png")]


def plot_dynamics(res: dict, out: Path, T: Text = EN) -> list[str]:
    plt = _plt()
    tr, n = res["curves"]["trace"], res["numbers"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    v, se = np.array(tr["v"]), np.array(tr["v_se"])
    a.plot(tr["step"], v, "-o", color=C_D, ms=3, label=T("theory.fig.v_mc"))
    a.fill_between(tr["step"], v - 2 * se, v + 2 * se, color=C_D, alpha=0.2)
    a.axhline(n["minus_log4"], color="k", ls="--", label="-log 4")
    a.set_xlabel(T("theory.fig.step"))
    a.set_ylabel(T("theory.fig.nats"))
    a.legend(fontsize=8)
    b.plot(tr["step"], tr["jsd"], "-o", color=C_FAKE, ms=3, label=T("theory.fig.jsd_kde"))
    b.axhline(n["jsd_kde_floor"], color="grey", ls=":", label=T("theory.fig.kde_floor"))
    b.axhline(0.0, color="k", ls="--", lw=1)
    b.set_yscale("symlog", linthresh=1e-2)
    b.set_ylim(bottom=0)
    b.set_xlabel(T("theory.fig.step"))
    b.legend(fontsize=8)
    files = [_save(fig, out, "s3_dynamics_curves.png")]

    snaps, x = res["curves"]["snaps"], res["curves"]["x"]
    fig, axes = plt.subplots(1, len(snaps), figsize=(3.2 * len(snaps), 2.9), squeeze=False)
    for ax, sn in zip(axes[0], snaps):
        ax.fill_between(x, res["curves"]["p_data"], color=C_REAL, alpha=0.25, label="p_data")
        ax.plot(x, sn["p_g"], color=C_FAKE, lw=1.5, label=T("theory.fig.p_g_kde"))
        ax.plot(x, sn["d"], color=C_D, ls="--", lw=1.5, label="D(x)")
        ax.axhline(0.5, color="grey", ls=":", lw=1)
        ax.set_ylim(0, 1.05)
        ax.set_title(T("theory.fig.step_n", step=sn["step"]), fontsize=9)
        ax.set_xlabel("x")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    files.append(_save(fig, out, "s3_dynamics_snapshots.png"))
    files.append(_animate_dynamics(res, out, "s3_dynamics.gif", T))
    return files


def _animate_dynamics(res: dict, out: Path, name: str, T: Text = EN) -> str:
    """p_data, p_g (KDE) and D(x) at every evaluation of section 3, as a looping GIF (Pillow)."""
    from PIL import Image

    plt = _plt()
    x, p_data = res["curves"]["x"], res["curves"]["p_data"]
    fig, ax = plt.subplots(figsize=(4.5, 2.6))
    ax.fill_between(x, p_data, color=C_REAL, alpha=0.25, label="p_data")
    (line_g,) = ax.plot(x, np.zeros_like(x), color=C_FAKE, lw=1.5, label=T("theory.fig.p_g_kde"))
    (line_d,) = ax.plot(x, np.zeros_like(x), color=C_D, ls="--", lw=1.5, label="D(x)")
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("x")
    ax.legend(fontsize=7, loc="upper left")
    title = ax.set_title("", fontsize=9)
    fig.tight_layout()
    frames = []
    for fr in res["curves"]["frames"]:
        line_g.set_ydata(fr["p_g"])
        line_d.set_ydata(fr["d"])
        title.set_text(T("theory.fig.step_jsd", step=fr["step"], jsd=f"{fr['jsd']:.3f}"))
        fig.canvas.draw()
        rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
        frames.append(Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=32))
    plt.close(fig)
    durations = [250] * (len(frames) - 1) + [1500]  # hold the last frame
    frames[0].save(out / name, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)
    return name


def plot_saturation(res: dict, out: Path, T: Text = EN) -> list[str]:
    plt = _plt()
    d = np.linspace(1e-3, 1 - 1e-3, 400)
    grid, ag = res["curves"]["d_grid"], res["curves"]["autograd"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(d, d, color=C_MM, label=T("theory.fig.minimax_grad"))
    a.plot(d, 1 - d, color=C_NS, label=T("theory.fig.ns_grad"))
    a.plot(grid, np.abs(ag["minimax"]), "o", color=C_MM, mfc="none", label=T("theory.fig.autograd"))
    a.plot(grid, np.abs(ag["nonsaturating"]), "o", color=C_NS, mfc="none")
    a.set_xlabel("D(G(z))")
    a.set_ylabel("|dL_G / d logit|")
    a.legend(fontsize=7)
    b.loglog(d, (1 - d) / d, "k-", label="(1 - D) / D")
    b.loglog(grid, ag["nonsaturating"] / ag["minimax"], "o", color=C_D, label=T("theory.fig.autograd_ratio"))
    b.set_xlabel("D(G(z))")
    b.set_ylabel(T("theory.fig.grad_ratio"))
    b.legend(fontsize=8)
    files = [_save(fig, out, "s4_gradients.png")]

    runs = res["curves"]["runs"]
    dims = sorted({r["dim"] for r in runs})
    fig, axes = plt.subplots(len(dims), 3, figsize=(12, 3.0 * len(dims)), squeeze=False)
    for row, dim in zip(axes, dims):
        for r in (r for r in runs if r["dim"] == dim):
            style = {"color": C_MM if r["loss"] == "minimax" else C_NS, "ls": "-" if r["opt"] == "sgd" else "--",
                         "lw": 1.2, "label": f"{r['loss']}, {r['opt']}"}
            steps = np.arange(len(r["hist"].g_grad_norm))
            row[0].semilogy(steps, r["hist"].g_grad_norm, **style)
            row[1].semilogy(steps, r["hist"].d_fake, **style)
            row[2].semilogy(r["ed_steps"], r["ed"], **style)
        row[0].set_ylabel(T("theory.fig.grad_norm", dim=dim))
        row[1].set_ylabel(T("theory.fig.mean_d_fake"))
        row[2].set_ylabel(T("theory.fig.energy"))
        row[1].axhline(res["numbers"]["escape_d_fake"], color="grey", ls=":", lw=1)
        for ax in row:
            ax.set_xlabel(T("theory.fig.step"))
    axes[0, 2].legend(fontsize=7)
    files.append(_save(fig, out, "s4_training.png"))
    return files


def plot_mode_collapse(res: dict, out: Path, T: Text = EN) -> list[str]:
    plt = _plt()
    runs, means = res["curves"]["runs"], res["curves"]["means"]
    ncol = max(len(r["snaps"]) for r in runs)
    fig, axes = plt.subplots(len(runs), ncol, figsize=(2.4 * ncol, 2.9 * len(runs)), squeeze=False)
    for row, r in zip(axes, runs):
        for ax, sn in zip(row, r["snaps"]):
            ax.scatter(sn["samples"][:, 0], sn["samples"][:, 1], s=1, alpha=0.3, color=C_FAKE, rasterized=True)
            ax.plot(means[:, 0], means[:, 1], "k+", ms=8)
            ax.set_xlim(-1.6, 1.6)
            ax.set_ylim(-1.6, 1.6)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            eff = "–" if sn["effective_modes"] is None else f"{sn['effective_modes']:.1f}"
            ax.set_title(T("theory.fig.s5.title", method=r["method"], step=sn["step"], modes=sn["modes"],
                           hq=f"{sn['high_quality_pct']:.1f}", eff=eff), fontsize=8)
    return [_save(fig, out, "s5_ring8.png")]


PLOTS = {1: plot_optimal_d, 2: plot_value, 3: plot_dynamics, 4: plot_saturation, 5: plot_mode_collapse}
