"""Figures of the theory report, drawn with matplotlib's Agg backend from the ``curves`` of each experiment.

Each ``plot_*`` function writes its PNG(s) into ``out`` and returns the file names it wrote, in order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

DPI = 80
C_REAL, C_FAKE, C_D, C_MM, C_NS = "tab:blue", "tab:red", "tab:orange", "tab:red", "tab:blue"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, dpi=DPI)  # PNG
    _plt().close(fig)
    return name


def plot_optimal_d(res: dict, out: Path) -> list[str]:
    plt = _plt()
    curves = res["curves"]
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.3), squeeze=False)
    for ax, c, row in zip(axes[0], curves, res["numbers"]["cases"]):
        x = c["x"]
        ax.fill_between(x, c["p_data"], color=C_REAL, alpha=0.15, label="p_data")
        ax.fill_between(x, c["p_g"], color=C_FAKE, alpha=0.15, label="p_g")
        ax.plot(x, c["d_star"], "k-", lw=2, label="D* = p_data/(p_data+p_g)")
        ax.plot(x, np.where(c["mask"], c["d"], np.nan), "--", color=C_D, lw=2, label="trained D")
        ax.plot(x, np.where(c["mask"], np.nan, c["d"]), ":", color=C_D, lw=1)
        ax.set_title(f"p_g = {c['label']}\nmax |D-D*| {row['max_gap']:.3f}, mean {row['mean_gap']:.4f}", fontsize=9)
        ax.set_xlabel("x")
        ax.set_ylim(-0.02, 1.02)
    axes[0, 0].legend(fontsize=7, loc="center left")
    return [_save(fig, out, "s1_optimal_d.png")]


def plot_value(res: dict, out: Path) -> list[str]:
    plt = _plt()
    rows = res["numbers"]["pairs"]
    i = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.axhline(res["numbers"]["minus_log4"], color="grey", ls=":", label="-log 4")
    ax.plot(i, [r["c_from_jsd"] for r in rows], "o", mfc="none", mec="k", ms=14, label="-log 4 + 2 JSD")
    ax.plot(i, [r["c_quadrature"] for r in rows], "kx", ms=9, label="C(G) by quadrature")
    ax.errorbar(i + 0.15, [r["v_trained_d"] for r in rows], yerr=[2 * r["v_trained_d_se"] for r in rows], fmt="o",
                color=C_D, ms=5, capsize=3, label="V(trained D, G), Monte Carlo ± 2 SE")
    ax.set_xticks(i, [f"p_g = {r['p_g']}" for r in rows], fontsize=8)
    ax.set_ylabel("value of the game (nats)")
    ax.set_title(f"p_data = {res['numbers']['p_data']}", fontsize=9)
    ax.legend(fontsize=8)
    return [_save(fig, out, "s2_value.png")]


def plot_dynamics(res: dict, out: Path) -> list[str]:
    plt = _plt()
    tr, n = res["curves"]["trace"], res["numbers"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    v, se = np.array(tr["v"]), np.array(tr["v_se"])
    a.plot(tr["step"], v, "-o", color=C_D, ms=3, label="V(D, G), Monte Carlo")
    a.fill_between(tr["step"], v - 2 * se, v + 2 * se, color=C_D, alpha=0.2)
    a.axhline(n["minus_log4"], color="k", ls="--", label="-log 4")
    a.set_xlabel("step")
    a.set_ylabel("nats")
    a.legend(fontsize=8)
    b.plot(tr["step"], tr["jsd"], "-o", color=C_FAKE, ms=3, label="JSD(p_data ‖ p_g), p_g by KDE")
    b.axhline(n["jsd_kde_floor"], color="grey", ls=":", label="KDE floor (p_g = p_data)")
    b.axhline(0.0, color="k", ls="--", lw=1)
    b.set_yscale("symlog", linthresh=1e-2)
    b.set_ylim(bottom=0)
    b.set_xlabel("step")
    b.legend(fontsize=8)
    files = [_save(fig, out, "s3_dynamics_curves.png")]

    snaps, x = res["curves"]["snaps"], res["curves"]["x"]
    fig, axes = plt.subplots(1, len(snaps), figsize=(3.2 * len(snaps), 2.9), squeeze=False)
    for ax, sn in zip(axes[0], snaps):
        ax.fill_between(x, res["curves"]["p_data"], color=C_REAL, alpha=0.25, label="p_data")
        ax.plot(x, sn["p_g"], color=C_FAKE, lw=1.5, label="p_g (KDE)")
        ax.plot(x, sn["d"], color=C_D, ls="--", lw=1.5, label="D(x)")
        ax.axhline(0.5, color="grey", ls=":", lw=1)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"step {sn['step']}", fontsize=9)
        ax.set_xlabel("x")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    files.append(_save(fig, out, "s3_dynamics_snapshots.png"))
    files.append(_animate_dynamics(res, out, "s3_dynamics.gif"))
    return files


def _animate_dynamics(res: dict, out: Path, name: str) -> str:
    """p_data, p_g (KDE) and D(x) at every evaluation of section 3, as a looping GIF (Pillow)."""
    from PIL import Image

    plt = _plt()
    x, p_data = res["curves"]["x"], res["curves"]["p_data"]
    fig, ax = plt.subplots(figsize=(4.5, 2.6))
    ax.fill_between(x, p_data, color=C_REAL, alpha=0.25, label="p_data")
    (line_g,) = ax.plot(x, np.zeros_like(x), color=C_FAKE, lw=1.5, label="p_g (KDE)")
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
        title.set_text(f"step {fr['step']}: JSD {fr['jsd']:.3f} nats")
        fig.canvas.draw()
        rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
        frames.append(Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=32))
    plt.close(fig)
    durations = [250] * (len(frames) - 1) + [1500]  # hold the last frame
    frames[0].save(out / name, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)
    return name


def plot_saturation(res: dict, out: Path) -> list[str]:
    plt = _plt()
    d = np.linspace(1e-3, 1 - 1e-3, 400)
    grid, ag = res["curves"]["d_grid"], res["curves"]["autograd"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(d, d, color=C_MM, label="minimax: |∂/∂l log(1 - D)| = D")
    a.plot(d, 1 - d, color=C_NS, label="non-saturating: |∂/∂l -log D| = 1 - D")
    a.plot(grid, np.abs(ag["minimax"]), "o", color=C_MM, mfc="none", label="autograd, gankit.losses")
    a.plot(grid, np.abs(ag["nonsaturating"]), "o", color=C_NS, mfc="none")
    a.set_xlabel("D(G(z))")
    a.set_ylabel("|dL_G / d logit|")
    a.legend(fontsize=7)
    b.loglog(d, (1 - d) / d, "k-", label="(1 - D) / D")
    b.loglog(grid, ag["nonsaturating"] / ag["minimax"], "o", color=C_D, label="autograd ratio")
    b.set_xlabel("D(G(z))")
    b.set_ylabel("non-saturating / minimax gradient")
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
        row[0].set_ylabel(f"{dim}: ‖∇ G params‖")
        row[1].set_ylabel("mean D(G(z))")
        row[2].set_ylabel("energy distance to p_data")
        row[1].axhline(res["numbers"]["escape_d_fake"], color="grey", ls=":", lw=1)
        for ax in row:
            ax.set_xlabel("step")
    axes[0, 2].legend(fontsize=7)
    files.append(_save(fig, out, "s4_training.png"))
    return files


def plot_mode_collapse(res: dict, out: Path) -> list[str]:
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
            ax.set_title(f"{r['method']}, step {sn['step']}\n{sn['modes']}/8 modes, "
                         f"{sn['high_quality_pct']:.1f}% HQ, {eff} eff.", fontsize=8)
    return [_save(fig, out, "s5_ring8.png")]


PLOTS = {1: plot_optimal_d, 2: plot_value, 3: plot_dynamics, 4: plot_saturation, 5: plot_mode_collapse}
