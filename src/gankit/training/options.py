"""One table of what each training path supports, and why not.

A run's config reaches several code paths: every run, the hand-derived MLP step (``train.fused_step``), CUDA-graph
capture (``train.cuda_graphs``), ``--seeds`` ensembles and the adaptive thread tuner. Each row of :data:`RULES`
names a path, the setting that path cannot honour, and the reason; every path reads this table and nothing else,
so an option is honoured or refused in one line, never silently ignored. ``fused`` is the one path that does not
refuse: a run it cannot take uses the autograd step and records why in its manifest.

Per-family ``model.*`` keys are the other half (each family's ``KEYS`` in :mod:`gankit.models`), and the loss's
own rules live with the losses (:func:`gankit.losses.check_targets`). docs/OPTIONS.md is this table, rendered by
:func:`markdown` (a test keeps the two equal).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ..errors import GankitError

# the paths, and how their refusal begins
PATHS = {
    "run": "",
    "fused": "",
    "cuda_graphs": "train.cuda_graphs ",
    "seeds": "training several seeds at once ",
    "adaptive_threads": "train.adaptive_threads retunes the CPU threads of one process, but ",
}
_TAIL = {"adaptive_threads": "; drop it (--train.threads N fixes the count)"}


@dataclass(frozen=True)
class Context:
    """What a rule may need beyond the config: where the run trains, its data and its networks."""

    device: str = "cpu"  # "cpu", "cuda", "mps", ...
    precision: str = ""  # what the run trains in (train.precision, auto resolved); "": resolve it from the config
    distributed: bool = False  # under torchrun
    dataset: str = ""
    images: bool = True  # the data are images (not points of a toy mixture)
    classes: int | None = None  # the dataset's classes; None: it has no labels
    local_batch: int = 0  # this process's share of train.batch_size
    mlp_layers: bool = True  # G and D are MLPs of [Linear, LeakyReLU]* layers (no norm, no dropout)
    matmul_only: bool = True  # G and D hold only Linear layers and pointwise functions


@dataclass(frozen=True)
class Rule:
    path: str
    when: Callable  # (cfg, ctx) -> bool: the path cannot honour this run
    why: str  # str.format template over c (the RunConfig) and x (the Context)


def _precision(c, x: Context) -> str:
    """The precision the run trains in: ``train.precision`` with ``auto`` resolved for the context's device."""
    if x.precision:
        return x.precision
    if c.train.precision != "auto":
        return c.train.precision
    from .accel import auto_precision

    return auto_precision(x.device)


def _penalty(c) -> bool:
    return c.loss.gp_weight > 0 or c.loss.r1_gamma > 0 or c.loss.r2_gamma > 0


def _rules(path: str, *rows: tuple[Callable, str]) -> list[Rule]:
    return [Rule(path, when, why) for when, why in rows]


RULES: list[Rule] = [
    *_rules(
        "run",
        (lambda c, x: bool(c.loss.augment) and not x.images,
         "loss.augment {c.loss.augment!r} needs images, dataset {x.dataset} holds vectors; set --loss.augment ''"),
        (lambda c, x: c.data.clusters > 0 and c.model.cond == "none",
         "data.clusters {c.data.clusters} labels the images for a conditional model; set --model.cond concat (or "
         "projection, acgan) and --model.num_classes {c.data.clusters}"),
        (lambda c, x: c.data.clusters > 0 and c.model.num_classes != c.data.clusters,
         "data.clusters {c.data.clusters} makes {c.data.clusters} classes, model.num_classes is "
         "{c.model.num_classes}; set --model.num_classes {c.data.clusters}"),
        (lambda c, x: c.model.cond != "none" and x.classes is None,
         "model.cond {c.model.cond} needs labels, dataset {x.dataset} has none; use model.cond none"),
        (lambda c, x: c.model.cond != "none" and x.classes is not None and x.classes > c.model.num_classes,
         "dataset {x.dataset} has {x.classes} classes, model.num_classes is {c.model.num_classes}; set "
         "--model.num_classes {x.classes}"),
        (lambda c, x: c.train.batch_size % c.model.pack != 0,
         "train.batch_size {c.train.batch_size} is not a multiple of model.pack {c.model.pack}"),
        (lambda c, x: c.model.d_norm == "batch" and x.local_batch > 0 and x.local_batch // c.model.pack < 2,
         "train.batch_size {c.train.batch_size} (per process {x.local_batch}, model.pack {c.model.pack}) gives D's "
         "batch norm one sample per batch; it needs at least 2: raise --batch-size"),
        (lambda c, x: c.model.g_norm == "batch" and x.local_batch > 0 and x.local_batch // c.model.g_norm_slots < 2,
         "train.batch_size {c.train.batch_size} (per process {x.local_batch}, model.g_norm_slots "
         "{c.model.g_norm_slots}) gives G's batch norm one sample per batch; it needs at least 2: raise --batch-size"),
        (lambda c, x: c.model.d_mbstd > 0 and x.local_batch % c.model.d_mbstd != 0,
         "train.batch_size {c.train.batch_size} (per process {x.local_batch}) is not a multiple of model.d_mbstd "
         "{c.model.d_mbstd}"),
        (lambda c, x: x.local_batch % c.model.g_norm_slots != 0,
         "train.batch_size {c.train.batch_size} (per process {x.local_batch}) is not a multiple of "
         "model.g_norm_slots {c.model.g_norm_slots}"),
        (lambda c, x: c.train.updates == "simultaneous" and c.train.d_steps != 1,
         "train.updates simultaneous needs train.d_steps 1, got {c.train.d_steps}"),
        (lambda c, x: c.train.precision == "fp16" and x.device != "cuda",
         "train.precision fp16 needs CUDA (its GradScaler); use bf16 on CPU"),
        (lambda c, x: c.train.precision == "fp16" and _penalty(c),
         "train.precision fp16 does not combine with gradient penalties (GP/R1/R2); use bf16"),
        (lambda c, x: c.train.tf32 and x.device != "cuda", "train.tf32 needs a CUDA device, this run uses {x.device}"),
        (lambda c, x: c.train.sync_bn and x.distributed and x.device != "cuda",
         "train.sync_bn needs CUDA (SyncBatchNorm does not run on CPU); leave it off to keep per-rank batch "
         "statistics"),
    ),
    # the hand-derived step computes the seed's update only: anything else takes autograd (not an error)
    *_rules(
        "fused",
        (lambda c, x: not c.train.fused_step, "train.fused_step is off"),
        (lambda c, x: c.model.cond != "none" or c.model.pack != 1, "a conditional or packed model"),
        (lambda c, x: bool(c.loss.augment) or c.loss.instance_noise > 0, "augmentation or instance noise"),
        (lambda c, x: _penalty(c), "a gradient penalty (GP/R1/R2)"),
        (lambda c, x: c.optim.ema_beta > 0, "an EMA of G"),
        (lambda c, x: c.optim.lr_schedule != "constant", "lr schedule {c.optim.lr_schedule}"),
        (lambda c, x: c.train.updates != "alternating", "train.updates {c.train.updates}"),
        (lambda c, x: c.model.arch != "mlp", "not an MLP G and D"),
        (lambda c, x: c.loss.name not in ("nonsaturating", "minimax"), "loss {c.loss.name}"),
        (lambda c, x: c.train.precision not in ("fp32", "auto"), "precision {c.train.precision}"),
        (lambda c, x: _precision(c, x) != "fp32", "precision auto (bf16 on this {x.device})"),
        (lambda c, x: c.train.compile, "torch.compile"),
        (lambda c, x: x.distributed, "distributed (DDP reduces autograd's gradients)"),
        (lambda c, x: not x.mlp_layers, "layers other than Linear/LeakyReLU (norm, dropout or minibatch std)"),
    ),
    *_rules(
        "cuda_graphs",
        (lambda c, x: x.device != "cuda", "needs a CUDA device, this run uses {x.device}"),
        (lambda c, x: x.distributed, "does not combine with torchrun/--nproc yet; run one process or leave it off"),
        (lambda c, x: c.train.precision == "fp16",
         "does not combine with train.precision fp16 (its GradScaler syncs with the host each step); use bf16"),
        (lambda c, x: c.train.compile, "does not combine with train.compile (use one or the other)"),
        (lambda c, x: c.optim.lr_schedule != "constant",
         "needs optim.lr_schedule constant, got {c.optim.lr_schedule!r} (a graph keeps the learning rate it was "
         "captured with)"),
        (lambda c, x: bool(c.loss.augment),
         "does not combine with loss.augment (DiffAugment draws random numbers inside the step)"),
        (lambda c, x: c.loss.gp_weight > 0,
         "does not combine with loss.gp_weight (the penalty draws random numbers inside the step)"),
        (lambda c, x: c.loss.instance_noise > 0,
         "does not combine with loss.instance_noise (it draws random numbers inside the step)"),
    ),
    *_rules(
        "seeds",
        (lambda c, x: x.distributed, "runs in one process; drop torchrun/--nproc"),
        (lambda c, x: c.model.cond != "none", "needs an unconditional model (model.cond none)"),
        (lambda c, x: c.train.d_steps != 1, "needs train.d_steps 1, got {c.train.d_steps}"),
        (lambda c, x: c.train.precision not in ("fp32", "auto"),
         "needs train.precision fp32, got {c.train.precision!r}"),
        (lambda c, x: _precision(c, x) != "fp32", "needs train.precision fp32; auto takes bf16 on this {x.device}"),
        (lambda c, x: c.train.compile, "does not combine with train.compile"),
        (lambda c, x: c.optim.ema_beta > 0, "does not keep G_ema yet; set optim.ema_beta 0"),
        (lambda c, x: c.optim.lr_schedule != "constant", "needs optim.lr_schedule constant"),
        (lambda c, x: _penalty(c), "does not combine with loss.gp_weight, loss.r1_gamma or loss.r2_gamma"),
        (lambda c, x: bool(c.loss.augment) or c.loss.instance_noise > 0,
         "does not combine with loss.augment or loss.instance_noise"),
        (lambda c, x: c.model.d_dropout > 0, "does not combine with dropout (model.d_dropout)"),
        (lambda c, x: c.model.d_mbstd > 0, "does not combine with model.d_mbstd"),
        (lambda c, x: c.model.d_spectral_norm, "does not combine with model.d_spectral_norm"),
        (lambda c, x: c.train.adaptive_threads,
         "does not combine with train.adaptive_threads (one loop runs every member)"),
    ),
    *_rules(
        "adaptive_threads",
        (lambda c, x: x.device != "cpu", "this run trains on {x.device}"),
        (lambda c, x: x.distributed, "under torchrun each process keeps its thread count"),
        (lambda c, x: not x.matmul_only, "it tunes only MLP and toy models (Linear layers)"),
    ),
]


def why_not(path: str, cfg, ctx: Context = Context()) -> str | None:
    """The first reason ``path`` cannot take this run, as its one-line message; None when it can."""
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}")
    for rule in RULES:
        if rule.path == path and rule.when(cfg, ctx):
            return PATHS[path] + rule.why.format(c=cfg, x=ctx) + _TAIL.get(path, "")
    return None


def check(path: str, cfg, ctx: Context = Context()) -> None:
    """Raise the one-line :class:`GankitError` of :func:`why_not`, if any."""
    why = why_not(path, cfg, ctx)
    if why is not None:
        raise GankitError(why)


_TITLES = {
    "run": "Every run (refused)",
    "fused": "The fused MLP step (falls back to autograd; the manifest's `step` says why)",
    "cuda_graphs": "`train.cuda_graphs` (refused)",
    "seeds": "`gankit train --seeds` ensembles (refused; `--one-after-another` trains the seeds in turn, any config)",
    "adaptive_threads": "`train.adaptive_threads` (refused)",
}


def markdown() -> str:
    """docs/OPTIONS.md: the table, one section per path."""
    out = ["# Which options each training path takes", "",
           "Generated from `src/gankit/training/options.py` (`python -m gankit.training.options`); a test keeps "
           "this file equal to the table. `…` stands for the run's own value.", ""]
    for path, title in _TITLES.items():
        out += [f"## {title}", ""]
        for rule in RULES:
            if rule.path == path:
                text = re.sub(r"\{[^}]*\}", "…", PATHS[path] + rule.why + _TAIL.get(path, ""))
                out.append(f"- {text}")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown())
