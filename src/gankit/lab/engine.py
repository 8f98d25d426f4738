"""The GAN lab's engine: a real gankit run that trains a few steps at a time (:class:`Lab`) for a lesson's state
(:class:`~gankit.lab.state.LabState`, the page's URL; importable from here too), and the frames the page draws.

A lab step IS a training step: :class:`Lab` builds gankit's own :class:`~gankit.training.loop.Trainer` from the
``gan-ring8`` preset and calls its step object (``trainer.train_step``) on batches gathered exactly as
``Trainer.run_step`` gathers them, advancing ``trainer.step`` and appending the rows of ``log.csv``. The single
updates of the lesson's slow motion (:meth:`Lab.d_step`, :meth:`Lab.g_step`) call the step's two phases alone;
they are not training steps (``step`` does not move) and draw their real batch from a stream of their own.

The grid quantities (``dstar``, the JSD and its bound) use *cell* densities: each density's exact mass in each
of the grid's cells (Gaussian integrals, :func:`cell_masses`) over the cell's area. The modes of ring8 are 0.01
wide and the cells 0.067: densities read at the cell centres would miss them. Cell masses make the grid a
discrete pair of distributions (plus one cell for "outside the plot"), for which D* = P/(P+Q) and
V(D*, G) = -log 4 + 2·JSD(P‖Q) hold exactly, and which tend to the continuous ones as cells shrink.

The frame (:meth:`Lab.frame`; d = 2 for ring8, grid25 and drawn points, 1 for mog1d; floats to 4 digits, NaN
as null; n = 48 cells per axis in 2-D, 200 in 1-D):

- ``step`` (training steps), ``d_updates``, ``g_updates``, ``dim`` (d), ``pack``, ``num_modes`` (K: the
  mixture's modes; for drawn points their clusters, points closer than 6 std = 0.3 counting as one);
- ``extent``: [x0, x1, y0, y1] (1-D: [x0, x1]), the grid's outer cell edges; ``xs`` (n,), ``ys`` (n,) (2-D
  only): the cell centres, where ``heat`` is evaluated;
- ``real`` (500, d): a fixed sample of p_data; ``fake`` (500, d): G on fixed latents (eval mode);
- ``heat`` (n, n), 1-D (n,): D(x) = sigmoid(logit) at the cell centres, ``heat[i][j]`` at (xs[j], ys[i]). With
  pack m > 1, D judges packs of m samples; the heat is D on a pack of m identical copies of x (what D says of a
  generator that put all its mass at x);
- ``dstar`` (same shape): D* = p_data / (p_data + p_g) per sample, from cell densities (above): p_data the
  exact mixture (blobs of std 0.05 for drawn points), p_g a Gaussian KDE of G on 2,000 fixed latents,
  Scott's bandwidth per axis; 1/2 where neither has mass. Packing changes D's optimum, not this formula;
- ``p_data``, ``p_g`` (n,) (1-D only): the two cell densities, for curves;
- ``arrows`` (40, 2d): rows [x, dx] for the first 40 fakes: -∂L_G/∂x (L_G on packs of consecutive fakes, as in
  training), scaled together so that the longest is 8 % of the plot's width;
- ``manifold``: G on a latent grid, (15, 15, d) for z_dim 2 (rows: z1 fixed, z2 from -2 to 2) or (1, 60, d)
  for z_dim 1 (z from -3 to 3);
- ``jsd``: JSD(p_data‖p_g) on the grid, nats;
- ``curves``: columns ``step``, ``d_updates``, ``g_updates``, ``d_loss``, ``g_loss`` (of the latest update; null
  for the phase a single update skipped), ``value`` (V(D, G) on 256 fresh reals and fakes), ``bound``
  (-log 4 + 2·JSD), ``modes`` and ``hq`` (modes captured, of ``num_modes``, and % high-quality samples of the
  2,000 fakes: :class:`gankit.metrics.mixtures.ModeCounter`, PacGAN's protocol, for every data set): one row per
  frame after any update, the last 2,000.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config import RunConfig, preset_config
from ..data import Dataset
from ..data.toy import DRAWN, Mixture, drawn_mixture, get_mixture, write_points
from ..errors import GankitError
from .state import (BLOB_STD, DATA, FLOAT_RANGES, INT_RANGES, LOSSES, MAX_POINTS,  # noqa: F401 (re-exported)
                    POINT_LIMIT, LabState)

LAYERS = 3  # hidden layers of G and D
DATA_SIZE = 50_000  # points in the lab's training set
GRID = 48  # cells per axis of the 2-D grid
GRID_1D = 200  # cells of the 1-D grid (mog1d)
N_SHOW, N_KDE, N_ARROWS, N_FRESH = 500, 2000, 40, 256
ARROW_FRACTION = 0.08  # the longest arrow, as a fraction of the plot's width
MAX_CURVE_ROWS = 2000
EXTENTS = {"ring8": (-1.5, 1.5), "grid25": (-5.5, 5.5), "mog1d": (-5.5, 5.5)}


# ---------------------------------------------------------------------------------------------------------
# The densities on the grid (numpy float64): exact Gaussian cell masses, the KDE of G's samples, D*, JSD, V.

def _ndtr(x: np.ndarray) -> np.ndarray:
    return torch.special.ndtr(torch.from_numpy(x)).numpy()


def _axis_masses(centers: np.ndarray, std: np.ndarray, edges: list[np.ndarray]) -> list[np.ndarray]:
    """Per axis j: (M, n_j) masses of N(centers[:, j], std_j²) in each interval of ``edges[j]``."""
    out = []
    for j, e in enumerate(edges):
        m = np.diff(_ndtr((e[None, :] - centers[:, j:j + 1]) / std[j]), axis=1)
        m[m < 1e-100] = 0.0  # subnormal products made the matmul below 40x slower (a collapsed G: h ~ 1e-3)
        out.append(m)
    return out


def cell_masses(centers: np.ndarray, std: np.ndarray | float, edges: list[np.ndarray]) -> np.ndarray:
    """Mass of the equal-weight mixture of axis-aligned Gaussians N(centers[m], diag(std²)) in each grid cell:
    (n,) for 1-D edges, (n_y, n_x) for 2-D (``[i, j]`` is the cell of y-interval i and x-interval j)."""
    centers = np.asarray(centers, np.float64).reshape(len(centers), -1)
    std = np.broadcast_to(np.asarray(std, np.float64), (centers.shape[1],))
    ax = _axis_masses(centers, std, edges)
    if len(ax) == 1:
        return ax[0].mean(0)
    # (n_y, M) @ (M, n_x): separable kernels. By torch (one thread): numpy's OpenBLAS took 190 ms for this product
    # next to torch's threads on a loaded 2-core machine, torch 0.3 ms
    return (torch.from_numpy(ax[1]).T @ torch.from_numpy(ax[0])).numpy() / len(centers)


def scott_bandwidth(samples: np.ndarray) -> np.ndarray:
    """Scott's rule per axis, h_j = σ_j · n^(-1/(d+4)) (a diagonal kernel, so cell masses stay separable);
    floored at 1e-4 for a generator that collapsed to a point."""
    n, d = samples.shape
    return np.maximum(samples.std(0, ddof=1) * n ** (-1.0 / (d + 4)), 1e-4)


def kde_masses(samples: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Cell masses of the Gaussian kernel density estimate of ``samples`` (n, d), Scott's bandwidth."""
    samples = np.asarray(samples, np.float64)
    return cell_masses(samples, scott_bandwidth(samples), edges)


def _with_outside(p: np.ndarray) -> np.ndarray:
    """The grid's masses and one more cell: the mass outside the plot."""
    flat = p.ravel()
    out = 1.0 - flat.sum()
    return np.append(flat, out if out > 1e-12 else 0.0)  # not a rounding error's 1e-16


def dstar(p_data: np.ndarray, p_g: np.ndarray) -> np.ndarray:
    """D* = p_data / (p_data + p_g) per cell (masses or densities); 0.5 where neither has mass (any D is optimal
    there)."""
    s = p_data + p_g
    return np.where(s > 1e-300, p_data / np.maximum(s, 1e-300), 0.5)


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x * np.log(np.where(x > 0, y, 1.0)), 0.0)


def jsd(p: np.ndarray, q: np.ndarray) -> float:
    """JSD(P‖Q) in nats of two grids of cell masses (each with its outside cell added): 0 for P = Q, log 2 for
    disjoint P and Q."""
    p, q = _with_outside(p), _with_outside(q)
    m = 0.5 * (p + q)
    safe = np.where(m > 0, m, 1.0)
    return float(0.5 * _xlogy(p, p / safe).sum() + 0.5 * _xlogy(q, q / safe).sum())


def value_on_grid(p: np.ndarray, q: np.ndarray, d: np.ndarray, d_outside: float = 0.5) -> float:
    """V(D, G) = Σ P log D + Σ Q log(1 - D) over the cells (D constant per cell; ``d_outside`` outside)."""
    p, q = _with_outside(p), _with_outside(q)
    d = np.append(np.ravel(d), d_outside)
    return float(_xlogy(p, d).sum() + _xlogy(q, 1.0 - d).sum())


def jsd_bound(p: np.ndarray, q: np.ndarray) -> float:
    """-log 4 + 2·JSD(P‖Q): V(D*, G), the value G faces against the best D (Goodfellow et al. 2014, Thm. 1)."""
    return -math.log(4.0) + 2.0 * jsd(p, q)


# ---------------------------------------------------------------------------------------------------------
# The run.

def lab_mixture(state: LabState) -> Mixture:
    """p_data: a gankit mixture, or for drawn points the mixture of their blobs."""
    if state.data == DRAWN:
        return drawn_mixture(state.points, BLOB_STD)
    return get_mixture(state.data)


def lab_config(state: LabState) -> RunConfig:
    """The run a lesson trains: the ``gan-ring8`` preset (toy nets: G MLP with batch norm, D maxout) at the lab's
    widths and rates, alternating updates, no periodic files, one CPU run of (practically) endless steps on one
    thread (these nets are small: a second OpenMP thread made a step 8x slower on a shared 2-core machine).

    ``data.dir`` stays unset: drawn points are the run folder's own ``points.json`` (:meth:`Lab.save` writes it),
    which ``gankit train --resume`` and ``gankit eval`` read there (:func:`gankit.data.run_data`); with the same
    ``data.size`` and ``data.seed`` the resumed run samples the very points the lab trained on."""
    s = state
    return preset_config("gan-ring8").with_overrides({
        "model.g_hidden": (s.g_width,) * LAYERS, "model.d_hidden": (s.d_width,) * LAYERS, "model.z_dim": s.z_dim,
        "model.pack": s.pack, "loss.name": s.loss, "optim.g_lr": s.g_lr, "optim.d_lr": s.d_lr,
        "train.d_steps": s.d_steps, "train.batch_size": s.batch, "train.seed": s.seed, "train.updates": "alternating",
        "train.progress": False, "train.sample_every": 0, "train.checkpoint_every": 0, "train.steps": 10**9,
        "train.epochs": None, "train.device": "cpu", "train.threads": 1, "data.name": s.data, "data.size": DATA_SIZE,
        "data.seed": s.seed})


def lab_dataset(state: LabState) -> Dataset:
    mix = lab_mixture(state)
    x, comp = mix.sample(DATA_SIZE, state.seed)
    return Dataset(state.data, torch.from_numpy(x), torch.from_numpy(comp),
                   f"gankit lab (seed {state.seed}, {DATA_SIZE} points)", mix.num_modes)


def _extent(state: LabState, mix: Mixture) -> list[tuple[float, float]]:
    if state.data in EXTENTS:
        return [EXTENTS[state.data]] * mix.dim
    lo, hi = mix.means.min(0) - 0.5, mix.means.max(0) + 0.5
    c, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 0.5)  # square, at least 1 wide
    return [(float(c[j] - half), float(c[j] + half)) for j in range(mix.dim)]


def _json(a: Any) -> Any:
    """numpy/torch -> nested lists rounded to 4 digits; NaN/inf -> None (JSON has neither)."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.round(np.asarray(a, np.float64), 4)
    if np.isfinite(a).all():
        return a.tolist()
    return np.where(np.isfinite(a), a, None).tolist()


def _num(v: float | None) -> float | None:
    return round(float(v), 4) if v is not None and math.isfinite(v) else None


class Lab:
    """A lesson's GAN: a gankit run in ``workdir/"run"`` trained a step (or one update) at a time.

    ``play(n)``: n training steps (each ``d_steps`` D updates and one G update); ``d_step()`` / ``g_step()``: one
    D / G update alone; ``reset()``: the run from scratch; ``frame()``: what the page draws; ``save(out)``: an
    ordinary gankit run folder. The same state and the same calls give identical frames."""

    def __init__(self, state: LabState, workdir: str | Path):
        from ..metrics.mixtures import ModeCounter

        self.state, self.workdir = state, Path(workdir)
        self.mixture = lab_mixture(state)
        self.modes = ModeCounter(self.mixture)  # fixed per lesson: drawn points' clusters are found once
        self.num_modes = self.modes.compute()["num_modes"]
        self.dim = self.mixture.dim
        self._grid()
        self.trainer: Any = None
        self.reset()

    # -- set-up ---------------------------------------------------------------------------------------
    def _grid(self) -> None:
        n = GRID if self.dim == 2 else GRID_1D
        self.extent = _extent(self.state, self.mixture)
        self.edges = [np.linspace(lo, hi, n + 1) for lo, hi in self.extent]
        self.centers = [(e[:-1] + e[1:]) / 2 for e in self.edges]
        if self.dim == 2:
            xx, yy = np.meshgrid(self.centers[0], self.centers[1])  # [i, j] = (x_j, y_i)
            pts = np.stack([xx.ravel(), yy.ravel()], 1)
        else:
            pts = self.centers[0][:, None]
        self.grid_x = torch.from_numpy(pts.astype(np.float32))  # (cells, d)
        self.cell_area = float(np.prod([e[1] - e[0] for e in self.edges]))
        self.p_data = cell_masses(self.mixture.means, self.mixture.std, self.edges)  # cached: fixed per lesson
        s = self.state
        self.real_show = torch.from_numpy(self.mixture.sample(N_SHOW, s.seed + 7)[0])
        g = torch.Generator().manual_seed(s.seed + 8)
        self.z_kde = torch.randn(N_KDE, s.z_dim, generator=g)  # the first N_SHOW are the fakes shown
        if s.z_dim == 2:
            t = torch.linspace(-2.0, 2.0, 15)
            self.z_manifold = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
        else:
            self.z_manifold = torch.linspace(-3.0, 3.0, 60)[:, None]

    def reset(self) -> None:
        """The run from step 0: new networks from the seed, a fresh run folder."""
        from ..training.loop import Trainer

        if self.trainer is not None:
            self.trainer.close()
        s = self.state
        self.trainer = Trainer(lab_config(s), self.workdir / "run", dataset=lab_dataset(s), overwrite=True,
                               log=lambda *_: None)
        if not hasattr(self.trainer.train_step, "d_phase"):  # the toy nets always take the autograd step
            raise GankitError(f"lab: the {self.trainer.step_kind} step has no separate D and G phases")
        self._perm_epoch, self._perm = -1, torch.empty(0, dtype=torch.long)
        self._single = torch.Generator().manual_seed(s.seed + 5)  # real batches of single updates
        self.d_updates = self.g_updates = 0
        self._last = (float("nan"), float("nan"))  # (d_loss, g_loss) of the latest update
        self._rows: list[dict[str, Any]] = []
        self._recorded = -1

    def close(self) -> None:
        """Give the run folder back (its lock)."""
        if self.trainer is not None:
            self.trainer.close()

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- training -------------------------------------------------------------------------------------
    def _step_batches(self) -> tuple[list[torch.Tensor], int]:
        """The step's ``d_steps`` real batches, as a training run takes them (``Trainer.step_batches``); and the
        step's epoch."""
        t = self.trainer
        epoch, pos = divmod(t.step, t.steps_per_epoch)
        if epoch != self._perm_epoch:
            t.begin_epoch(epoch, pos)
            self._perm_epoch = epoch
        return t.step_batches()[0], epoch

    def _single_batch(self) -> torch.Tensor:
        t = self.trainer
        return torch.index_select(t.data.images, 0,
                                  torch.randint(0, len(t.data), (self.state.batch,), generator=self._single))

    def play(self, n: int = 1) -> None:
        """``n`` training steps; their rows go to the run's log.csv."""
        t, rows = self.trainer, []
        for _ in range(int(n)):
            batches, epoch = self._step_batches()
            stats = t.train_step(batches).tolist()
            t.step += 1
            self.d_updates += self.state.d_steps
            self.g_updates += 1
            rows.append((t.step, epoch + 1, *stats))
        if rows:
            if t.steplog is not None:
                t.steplog.append(rows)
            self._last = (rows[-1][2], rows[-1][3])

    def d_step(self) -> None:
        """One D update (on a real batch and fresh fakes), no G update; not a training step."""
        ctx = self.trainer.train_step.d_phase([self._single_batch()])
        self.d_updates += 1
        self._last = (float(ctx["d_loss"].detach()), float("nan"))

    def g_step(self) -> None:
        """One G update through the current D, no D update; not a training step."""
        step = self.trainer.train_step
        stats = step.g_phase(step.g_inputs(self._single_batch())).tolist()
        self.g_updates += 1
        self._last = (float("nan"), stats[1])

    # -- the frame ------------------------------------------------------------------------------------
    @torch.no_grad()
    def _G(self, z: torch.Tensor) -> torch.Tensor:
        """G in eval mode (batch norm's running statistics), as ``gankit.load`` samples."""
        G = self.trainer.G
        was = G.training
        G.eval()
        x = G(z)
        G.train(was)
        return x.reshape(len(z), self.dim)

    def _D_on_copies(self, x: torch.Tensor) -> torch.Tensor:
        """D's logits at each point of x (N, d): on a pack of ``pack`` identical copies of it."""
        m = self.state.pack
        return self.trainer.D(x.repeat_interleave(m, 0) if m > 1 else x)

    def grid_masses(self, samples: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(P, Q): the cell masses of p_data (exact) and of p_g (KDE of ``samples``, default G on the fixed
        2,000 latents); (48, 48) in 2-D, (200,) in 1-D."""
        if samples is None:
            samples = self._G(self.z_kde).numpy()
        return self.p_data, kde_masses(samples, self.edges)

    def _fresh_value(self) -> float:
        """V(D, G) = E log D(x) + E log(1 - D(G(z))) on 256 fresh reals and fakes (packs of ``pack``)."""
        s, t = self.state, self.trainer
        seed = (s.seed * 1_000_003 + 2 * self.d_updates * 7919 + self.g_updates) % (2**31)
        n = N_FRESH - N_FRESH % s.pack  # whole packs
        real = torch.from_numpy(self.mixture.sample(n, seed)[0])
        fake = self._G(torch.randn(n, s.z_dim, generator=torch.Generator().manual_seed(seed)))
        with torch.no_grad():
            r, f = t.D(real), t.D(fake)
        return float(F.logsigmoid(r).mean() + F.logsigmoid(-f).mean())

    def _arrows(self, fake: torch.Tensor) -> np.ndarray:
        """(40, 2d): the first 40 fakes and -∂L_G/∂x there (L_G on packs of consecutive fakes, as in training),
        scaled so the longest arrow is 8 % of the plot's width."""
        m = self.state.pack
        x = fake[: -(-N_ARROWS // m) * m].clone().requires_grad_(True)  # the packs holding the first 40
        D = self.trainer.D
        D.requires_grad_(False)
        try:
            with torch.enable_grad():
                loss = self.trainer.train_step.g_loss_fn(D(x), None)
                (grad,) = torch.autograd.grad(loss, x)
        finally:
            D.requires_grad_(True)
        v = -grad[:N_ARROWS].numpy().astype(np.float64)
        longest = np.linalg.norm(v, axis=1).max()
        width = self.extent[0][1] - self.extent[0][0]
        if longest > 0 and np.isfinite(longest):
            v *= ARROW_FRACTION * width / longest
        return np.concatenate([fake[:N_ARROWS].numpy(), v], 1)

    def _record(self, p: np.ndarray, q: np.ndarray, fake_kde: torch.Tensor) -> None:
        key = (self.d_updates, self.g_updates)
        if key == self._recorded:
            return
        self._recorded = key
        self.modes.reset()
        self.modes.update(fake_kde)
        res = self.modes.compute()
        modes, hq = res["modes"], 100.0 * res["high_quality"]
        self._rows.append({"step": self.trainer.step, "d_updates": self.d_updates, "g_updates": self.g_updates,
                           "d_loss": _num(self._last[0]), "g_loss": _num(self._last[1]),
                           "value": _num(self._fresh_value()), "bound": _num(jsd_bound(p, q)), "modes": modes,
                           "hq": _num(hq)})
        del self._rows[:-MAX_CURVE_ROWS]

    def frame(self) -> dict[str, Any]:
        """What the page draws, JSON-ready (floats to 4 digits, NaN as null); the schema is the module's docstring."""
        fake_kde = self._G(self.z_kde)  # (2000, d)
        p, q = self.grid_masses(fake_kde.numpy())
        with torch.no_grad():
            heat = torch.sigmoid(self._D_on_copies(self.grid_x)).numpy()
        fake = fake_kde[:N_SHOW]
        self._record(p, q, fake_kde)
        shape = (GRID, GRID) if self.dim == 2 else (GRID_1D,)
        manifold = self._G(self.z_manifold).reshape(*((15, 15) if self.state.z_dim == 2 else (1, 60)), self.dim)
        out: dict[str, Any] = {
            "step": self.trainer.step, "d_updates": self.d_updates, "g_updates": self.g_updates, "dim": self.dim,
            "pack": self.state.pack, "num_modes": self.num_modes,
            "extent": [round(v, 4) for lohi in self.extent for v in lohi],
            "xs": _json(self.centers[0]), "real": _json(self.real_show), "fake": _json(fake),
            "heat": _json(heat.reshape(shape)), "dstar": _json(dstar(p, q)), "arrows": _json(self._arrows(fake)),
            "manifold": _json(manifold), "jsd": _num(jsd(p, q)),
            "curves": {k: [r[k] for r in self._rows] for k in CURVE_KEYS},
        }
        if self.dim == 2:
            out["ys"] = _json(self.centers[1])
        else:  # 1-D: the two densities as curves (cell means)
            out["p_data"] = _json(p / self.cell_area)
            out["p_g"] = _json(q / self.cell_area)
        return out

    # -- saving ---------------------------------------------------------------------------------------
    def save(self, out: str | Path) -> Path:
        """Write the run's checkpoint, final samples, loss plot, config and manifest (and for drawn points
        ``points.json``, the data ``gankit eval`` scores against), then copy the run folder to ``out`` (new or
        empty): ``gankit eval/serve/report out`` read it like any run."""
        from ..lock import LOCK_FILE
        from ..rundir import plot_losses

        out, t = Path(out).expanduser(), self.trainer
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise GankitError(f"lab: {out} exists and is not an empty folder; choose a new folder to save into")
        t.save("last.pt")
        t.write_grid("final.png")
        plot_losses(t.run_dir / "log.csv", t.run_dir / "loss.png")
        t.write_manifest({"step": t.step_kind, "cuda_graphs": False, "lab": self.state.to_query()})
        if self.state.data == DRAWN:  # the run's own data: gankit eval scores it against these points
            write_points(t.run_dir, self.mixture)
        shutil.copytree(t.run_dir, out, ignore=shutil.ignore_patterns(LOCK_FILE, ".*.tmp"), dirs_exist_ok=True)
        return out


CURVE_KEYS = ("step", "d_updates", "g_updates", "d_loss", "g_loss", "value", "bound", "modes", "hq")
