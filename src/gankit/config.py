"""Typed, frozen run configuration, dotted overrides and named presets.

A run is fully described by one :class:`RunConfig`, a tree of frozen dataclasses. Every number of the
seed model is a named field here; presets only set values. Overrides use dotted keys
(``train.batch_size=64`` or ``--train.batch_size 64`` on the command line) and are type-checked;
unknown keys are an error, never ignored.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, Mapping

from .errors import GankitError


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise GankitError(msg)


# Seeds are 32-bit: gankit derives further seeds from them (seed + 2, (seed + 1) * 1_000_003 + rank) that torch
# needs within 64 bits.
MAX_SEED = 2**32 - 1
# train.log_every sizes a (log_every, 4) float32 buffer on the device: a million rows is 16 MB.
MAX_LOG_EVERY = 1_000_000
# train.time_limit and gankit train --time (training/budget.py): at most a year of seconds; more is a typo.
MAX_TIME_LIMIT = 366 * 86400
# data.clusters: one one-hot input per cluster reaches G and (model.cond concat) every pixel of D's input
MAX_CLUSTERS = 1000


def seed_arg(text: str) -> int:
    """The argparse type of a ``--seed`` option: an integer in [0, MAX_SEED]."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected an integer") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed {value} is outside [0, {MAX_SEED}] (32 bits)")
    return value


@dataclass(frozen=True)
class DataConfig:
    """Where the training images come from.

    ``name``: ``auto`` (MNIST if present or downloadable, else ``digits``), ``mnist``, ``fashion-mnist``,
    ``digits``, ``idx`` (any folder of MNIST-format files, needs ``dir``), ``folder`` (images, needs ``dir``),
    ``cifar10`` (the python pickle batches), ``stacked-mnist`` (3 digits of ``base`` per image, generated),
    or the generated mixtures ``ring8``, ``grid25`` (2-D points) and ``mog1d`` (1-D), or ``drawn`` (the points.json
    of a ``gankit lab`` run in ``dir``; a run the lab saved reads its own folder).
    """

    name: str = "auto"
    dir: str | None = None  # a folder holding the files; searched first
    split: str = "train"
    download: bool = True  # allow downloading known datasets into the user cache
    resolution: int | None = None  # image folders: resize to this square size
    channels: int | None = None  # image folders: 1 (grayscale) or 3 (RGB); None = from the first image
    seed: int = 0  # generated datasets (ring8, grid25, mog1d, drawn, stacked-mnist): the sampling seed; data.clusters
    # (> 0): self-conditioning (data/clusters.py): the training labels are the ids of this many k-means clusters of
    # the pixels (seeded by data.seed), read by a conditional model (model.cond, model.num_classes = clusters); fake
    # labels and samples follow the clusters' sizes. No human label is read: the model is unconditional to its user
    clusters: int = 0
    size: int | None = None  # generated datasets: examples (None = protocol's: 100,000 points, 128,000 stacks)
    base: str = "mnist"  # stacked-mnist: its MNIST-format source: mnist, fashion-mnist or idx (with data.dir)

    def __post_init__(self) -> None:
        _check(self.split in ("train", "test"), f"data.split must be 'train' or 'test', got {self.split!r}")
        _check(self.seed >= 0, f"data.seed must be >= 0, got {self.seed}")
        _check(self.size is None or self.size > 0, f"data.size must be positive, got {self.size}")
        _check(0 <= self.clusters <= MAX_CLUSTERS,
               f"data.clusters must be 0 (off) or a number of clusters up to {MAX_CLUSTERS}, got {self.clusters}")
        _check(self.base in ("mnist", "fashion-mnist", "idx"),
               f"data.base must be mnist, fashion-mnist or idx, got {self.base!r}")
        _check(self.resolution is None or 4 <= self.resolution <= 1024,
               f"data.resolution must be between 4 and 1024, got {self.resolution}")
        _check(self.channels in (None, 1, 3), f"data.channels must be 1 or 3, got {self.channels}")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of G and D. The defaults are the seed tutorial's MLPs."""

    arch: str = "mlp"
    z_dim: int = 100  # z ~ N(0, I_z_dim)
    g_hidden: tuple[int, ...] = (128,)  # widths of G's hidden layers
    d_hidden: tuple[int, ...] = (128,)  # widths of D's hidden layers
    leaky_slope: float = 0.2  # tf.nn.leaky_relu's default alpha
    init: str = "glorot_uniform"  # TF1 tf.layers.dense: Glorot-uniform kernels, zero biases; "torch"; or
    # "dcgan": weights N(0, 0.02), norm scales N(1, 0.02), zero biases (Radford et al. 2016)
    g_norm: str = "none"  # none | batch | layer: normalisation after G's hidden layers
    d_norm: str = "none"  # none | batch | layer (batch couples the samples of a batch; avoid it with GP/R1)
    d_dropout: float = 0.0  # dropout after D's hidden activations
    g_channels: int = 64  # conv archs (dcgan, resnet): G's base width
    d_channels: int = 64  # conv archs: D's base width
    g_layers: int = 0  # dcgan G: stride-2 transposed convs; 0 = double up from the smallest start >= 4 (7 at 28)
    d_layers: int = 0  # dcgan D: stride-2 convs; 0 = halve down to >= 4 pixels (2 at 28x28, 3 at 32x32)
    maxout_pieces: int = 5  # toy arch: pieces per maxout unit of D (PacGAN: 5)
    d_spectral_norm: bool = False  # spectral normalization of every D weight (Miyato et al. 2018)
    d_mbstd: int = 0  # mlp D: minibatch standard deviation over groups of this many samples (Karras et al. 2018)
    cond: str = "none"  # none | concat (cGAN, one-hot) | projection (Miyato & Koyama 2018) | acgan
    num_classes: int = 0  # classes of a conditional model; > 0 exactly when cond is not none
    pack: int = 1  # PacGAN (Lin et al. 2018): D judges `pack` samples at once; 1 = no packing
    g_norm_slots: int = 1  # toy G, batch norm: statistics per slot (sample i in slot i mod N); PacGAN's code: pack
    bn_momentum: float = 0.1  # toy nets: batch norm's running-statistics momentum (PyTorch 0.1; PacGAN's code 0.05)
    # r3gan (Huang et al. 2024): stage widths from the image resolution down (lower stages repeat the last),
    # residual blocks per stage, a block's inverted-bottleneck expansion, channels per group of its 3×3 conv
    stage_channels: tuple[int, ...] = (64, 128)  # the paper's 32×32 nets: 768 in every stage
    stage_blocks: int = 1  # the paper: 2
    block_expansion: int = 2  # the paper: 2
    group_channels: int = 16  # the paper: 16 (a block narrower than this is one group)

    def __post_init__(self) -> None:
        _check(self.z_dim > 0, f"model.z_dim must be positive, got {self.z_dim}")
        _check(all(w > 0 for w in self.g_hidden), f"model.g_hidden widths must be positive, got {self.g_hidden}")
        _check(all(w > 0 for w in self.d_hidden), f"model.d_hidden widths must be positive, got {self.d_hidden}")
        _check(0.0 <= self.leaky_slope < 1.0, f"model.leaky_slope must be in [0, 1), got {self.leaky_slope}")
        _check(self.init in ("glorot_uniform", "torch", "dcgan"),
               f"model.init must be 'glorot_uniform', 'torch' or 'dcgan', got {self.init!r}")
        _check(self.g_norm in ("none", "batch", "layer"),
               f"model.g_norm must be one of none, batch, layer; got {self.g_norm!r}")
        _check(self.d_norm in ("none", "batch", "layer"),
               f"model.d_norm must be one of none, batch, layer; got {self.d_norm!r}")
        _check(0.0 <= self.d_dropout < 1.0, f"model.d_dropout must be in [0, 1), got {self.d_dropout}")
        _check(self.d_mbstd >= 0, f"model.d_mbstd must be 0 (off) or a group size >= 1, got {self.d_mbstd}")
        _check(0 <= self.g_layers <= 8, f"model.g_layers must be in [0, 8] (0 = automatic), got {self.g_layers}")
        _check(0 <= self.d_layers <= 8, f"model.d_layers must be in [0, 8] (0 = automatic), got {self.d_layers}")
        _check(self.g_channels > 0 and self.d_channels > 0,
               f"model.g_channels and model.d_channels must be positive, got {self.g_channels}, {self.d_channels}")
        _check(self.maxout_pieces >= 1, f"model.maxout_pieces must be >= 1, got {self.maxout_pieces}")
        _check(self.cond in ("none", "concat", "projection", "acgan"),
               f"model.cond must be one of none, concat, projection, acgan; got {self.cond!r}")
        _check(self.num_classes >= 0, f"model.num_classes must be >= 0, got {self.num_classes}")
        _check(self.pack >= 1, f"model.pack must be >= 1, got {self.pack}")
        _check(self.g_norm_slots >= 1, f"model.g_norm_slots must be >= 1, got {self.g_norm_slots}")
        _check(0.0 < self.bn_momentum <= 1.0, f"model.bn_momentum must be in (0, 1], got {self.bn_momentum}")
        _check(len(self.stage_channels) > 0 and all(w > 0 for w in self.stage_channels),
               f"model.stage_channels needs one or more positive widths, got {self.stage_channels}")
        for key in ("stage_blocks", "block_expansion", "group_channels"):
            _check(getattr(self, key) >= 1, f"model.{key} must be >= 1, got {getattr(self, key)}")
        # (cross-field checks, e.g. cond needs num_classes, run when the models are built: overrides are applied
        # one key at a time)


@dataclass(frozen=True)
class LossConfig:
    """The adversarial objective. ``real_target`` 0.9 is one-sided label smoothing (Salimans et al. 2016)."""

    name: str = "nonsaturating"  # see gankit.losses.list_losses()
    real_target: float = 0.9  # D's target for real images (1.0 = no smoothing)
    fake_target: float = 0.0  # D's target for generated images
    gp_weight: float = 0.0  # λ of the WGAN-GP gradient penalty (Gulrajani et al. 2017 use 10); 0 = off
    r1_gamma: float = 0.0  # γ of the R1 penalty γ/2·E‖∇D(x)‖² on real data (Mescheder et al. 2018); 0 = off
    r2_gamma: float = 0.0  # γ of the R2 penalty γ/2·E‖∇D(x̃)‖² on fakes (Mescheder et al. 2018); 0 = off
    aux_weight: float = 1.0  # model.cond acgan: weight of the auxiliary classification losses
    instance_noise: float = 0.0  # std of Gaussian noise on D's inputs at step 0, decaying linearly to 0
    augment: str = ""  # DiffAugment policy on D's inputs, a comma-separated subset of color,translation,cutout

    def __post_init__(self) -> None:
        _check(0.0 < self.real_target <= 1.0, f"loss.real_target must be in (0, 1], got {self.real_target}")
        _check(0.0 <= self.fake_target < self.real_target,
               f"loss.fake_target must be in [0, real_target), got {self.fake_target}")
        for key in ("gp_weight", "r1_gamma", "r2_gamma", "aux_weight", "instance_noise"):
            _check(getattr(self, key) >= 0, f"loss.{key} must be >= 0, got {getattr(self, key)}")


@dataclass(frozen=True)
class OptimConfig:
    """Adam for G and D; separate learning rates allow two time-scale updates (TTUR)."""

    g_lr: float = 1e-3
    d_lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    lr_schedule: str = "constant"  # constant | linear (both rates decay linearly to 0 at the last step)
    ema_beta: float = 0.0  # G_ema ← β·G_ema + (1-β)·G after every G step; 0 = no G_ema (e.g. 0.999)

    def __post_init__(self) -> None:
        _check(self.lr_schedule in ("constant", "linear"),
               f"optim.lr_schedule must be 'constant' or 'linear', got {self.lr_schedule!r}")
        _check(0.0 <= self.ema_beta < 1.0, f"optim.ema_beta must be in [0, 1), got {self.ema_beta}")
        _check(self.g_lr > 0, f"optim.g_lr must be > 0, got {self.g_lr}")
        _check(self.d_lr > 0, f"optim.d_lr must be > 0, got {self.d_lr}")
        _check(0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0,
               f"optim.beta1 and optim.beta2 must be in [0, 1), got {self.beta1}, {self.beta2}")
        _check(self.eps > 0, f"optim.eps must be > 0, got {self.eps}")


@dataclass(frozen=True)
class TrainConfig:
    """Length of the run, batching, logging and snapshots."""

    batch_size: int = 100
    epochs: int | None = 30  # used when steps is None
    steps: int | None = None  # total optimisation steps (one D and one G update each); overrides epochs
    seed: int = 0
    d_steps: int = 1  # D updates per G update
    # alternating: G's step sees the updated D | simultaneous: both from one D (ALI/PacGAN)
    updates: str = "alternating"
    log_every: int = 50  # steps between host syncs: per-step values are buffered on the device
    sample_every: int = 1  # epochs between fixed-z sample grids (0 = only at the end)
    checkpoint_every: int = 10  # epochs between kept periodic checkpoints (0 = only the last)
    grid_size: int = 64  # number of images in the fixed-z grid (a square number reads best)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # CPU threads for torch; 0 = the machine's default, fixed for the run and kept on --resume (results on
    # CPU depend on the thread count, so it is part of the run: manifest.json and the checkpoints record it)
    threads: int = 0
    # MLP/toy nets on CPU: retune the thread count to the machine's load while training (faster next to busy
    # processes, but NOT reproducible: results then depend on the load; training/threads.py)
    adaptive_threads: bool = False
    progress: bool = True  # show a progress bar
    dist_timeout: float = 300.0  # seconds any collective may wait under torchrun before the run fails
    sync_bn: bool = False  # under torchrun on GPUs: SyncBatchNorm (batch statistics over all ranks)
    # fp32 | bf16 (autocast) | fp16 (autocast + GradScaler, CUDA only) | auto: bf16 where the device has bf16 in
    # hardware (a CUDA GPU from Ampere on, a CPU with avx512_bf16 or AMX), fp32 elsewhere (training/accel.py)
    precision: str = "fp32"
    channels_last: bool = False  # conv models: channels-last memory format (faster convolutions on GPUs)
    compile: bool = False  # torch.compile G and D (measure first: it slowed the seed MLP on CPU)
    fused_step: bool = True  # plain MLP GANs (the seed): hand-derived gradients instead of autograd (training/fused.py)
    cuda_graphs: bool = False  # CUDA: capture the whole step in a CUDA graph and replay it (training/graphs.py)
    tf32: bool = False  # CUDA: float32 matmuls on TF32 tensor cores (faster; inputs rounded to 10-bit mantissas)
    deterministic: bool = False  # torch.use_deterministic_algorithms; CPU runs are deterministic anyway
    nonfinite_retries: int = 3  # on a NaN/inf loss: roll back to the last good state, halve the lrs, retry
    # wall-clock seconds for this invocation (None = no limit; gankit train --time 10m): stop at the first step
    # boundary after it, save, and say how to resume. Schedules stay defined by steps/epochs (training/budget.py)
    time_limit: float | None = None

    def __post_init__(self) -> None:
        _check(self.batch_size > 0, f"train.batch_size must be positive, got {self.batch_size}")
        _check(self.epochs is None or self.epochs > 0, f"train.epochs must be positive, got {self.epochs}")
        _check(self.steps is None or self.steps > 0, f"train.steps must be positive, got {self.steps}")
        _check(self.epochs is not None or self.steps is not None, "set train.epochs or train.steps")
        _check(0 <= self.seed <= MAX_SEED, f"train.seed must be in [0, {MAX_SEED}] (32 bits), got {self.seed}")
        _check(self.d_steps >= 1, f"train.d_steps must be >= 1, got {self.d_steps}")
        _check(self.updates in ("alternating", "simultaneous"),
               f"train.updates must be alternating or simultaneous, got {self.updates!r}")
        _check(1 <= self.log_every <= MAX_LOG_EVERY,
               f"train.log_every must be in [1, {MAX_LOG_EVERY}], got {self.log_every}")
        _check(self.sample_every >= 0, f"train.sample_every must be >= 0, got {self.sample_every}")
        _check(self.checkpoint_every >= 0, f"train.checkpoint_every must be >= 0, got {self.checkpoint_every}")
        _check(1 <= self.grid_size <= 1024, f"train.grid_size must be in [1, 1024], got {self.grid_size}")
        _check(0 <= self.threads <= 1024, f"train.threads must be in [0, 1024], got {self.threads}")
        _check(self.precision in ("fp32", "bf16", "fp16", "auto"),
               f"train.precision must be one of fp32, bf16, fp16, auto; got {self.precision!r}")
        _check(self.dist_timeout > 0, f"train.dist_timeout must be > 0 seconds, got {self.dist_timeout}")
        _check(0 <= self.nonfinite_retries <= 20,
               f"train.nonfinite_retries must be in [0, 20], got {self.nonfinite_retries}")
        _check(self.time_limit is None or 0 < self.time_limit <= MAX_TIME_LIMIT,
               f"train.time_limit must be in (0, {MAX_TIME_LIMIT:.0f}] seconds, got {self.time_limit}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = "seed"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunConfig":
        """Rebuild a config from :meth:`to_dict` output; unknown keys raise :class:`GankitError`."""
        return _from_dict(cls, d, prefix="")

    def with_overrides(self, overrides: Mapping[str, Any]) -> "RunConfig":
        """Return a copy with dotted-key overrides applied (values may be strings, parsed by field type)."""
        cfg = self
        for key, value in overrides.items():
            cfg = _set_dotted(cfg, key, value)
        return cfg


# ----------------------------------------------------------------------------------------------
# Presets: a few named sets of overrides. The seed preset is the defaults, nothing more.

_DCGAN = {"model.arch": "dcgan", "model.g_norm": "batch", "model.d_norm": "batch", "model.init": "dcgan",
          "loss.real_target": 1.0, "optim.g_lr": 2e-4, "optim.d_lr": 2e-4, "optim.beta1": 0.5,
          "train.batch_size": 64}  # Radford et al. 2016: Adam 2e-4, beta1 0.5, BN in G and D, N(0, 0.02) init
_PACGAN = {"model.arch": "toy", "model.z_dim": 2, "model.g_hidden": (400, 400, 400, 400), "model.g_norm": "batch",
           "model.leaky_slope": 0.0, "model.d_hidden": (200, 200, 200), "model.maxout_pieces": 5,
           "model.pack": 4, "model.init": "dcgan", "loss.real_target": 1.0, "optim.g_lr": 1e-4, "optim.d_lr": 1e-4,
           "model.g_norm_slots": 4, "model.bn_momentum": 0.05,
           "optim.beta1": 0.8, "train.batch_size": 400, "train.epochs": 400, "train.updates": "simultaneous",
           "train.sample_every": 50, "train.checkpoint_every": 0}
# PacGAN's 2-D setting (docs/PROTOCOLS.md §1, as in the authors' code): weights N(0, 0.02); 100 packs per D batch.
# The authors' training set holds 100,000 *packs* (each of m points drawn from the 100,000-point sample), so one
# epoch is 1,000 steps whatever m, and 400 epochs are 400,000 steps. PacGAN4 draws 400 points per step
# (train.batch_size counts points), so its presets hold 400,000 points (data.size): 1,000 steps per epoch as well.
# Their training algorithm (ALI's) takes D's and G's gradients from one graph and applies both at once:
# train.updates simultaneous. Their G runs once per pack slot, so its batch norm takes each slot's statistics
# alone (model.g_norm_slots = pack), and moves the population statistics by 0.05 of the slots' mean.
_R3GAN = {"model.arch": "r3gan", "model.z_dim": 64, "model.stage_channels": (64, 128), "model.stage_blocks": 1,
          "model.block_expansion": 2, "model.group_channels": 16, "loss.name": "relativistic",
          "loss.real_target": 1.0, "loss.r1_gamma": 0.05, "loss.r2_gamma": 0.05, "optim.g_lr": 2e-4,
          "optim.d_lr": 2e-4, "optim.beta1": 0.0, "optim.beta2": 0.99, "optim.ema_beta": 0.999,
          "train.batch_size": 64}
# R3GAN (Huang et al. 2024; their code's CIFAR-10 preset): relativistic pairing loss with R1 and R2 at γ 0.05 (their
# start value; they decay it to 0.005, the lr 2e-4 to 5e-5 and raise β2 0.9 -> 0.99 over 20M images), Adam β1 0, z 64,
# G_ema. Their nets are 768 wide with 2 blocks per stage and batch 512; ours (models/r3gan.py) are sized for a CPU.

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "seed": ("the tutorial's MLP GAN exactly: z 100, hidden 128, leaky 0.2, real target 0.9, Adam 1e-3", {}),
    # seed-plus (issue #19; docs/ZOO.md "Ending seed-plus's collapse"): the seed's nets with the fixes that did most
    # in one-change trials at the seed's 18,000 steps (pinned evaluator, 5,000 samples): R1 30 (recall 0.19 against
    # the seed's 0.008; R1 10 0.17, dropout 0.3 0.065, WGAN-GP 0.24 at 4x the cost), G_ema 0.999 (precision 0.78),
    # then Adam's beta1 0.5 (0.25) and two D updates per G update (0.27; both 0.34), for 180 epochs: 54,000 steps of
    # 2 batches, about the time of the 90,000 single steps that the 5 minutes on 2 cores buy (recall 0.38).
    "seed-plus": ("the seed's nets with the cheap fixes that did most against its collapse (docs/ZOO.md): R1 30 on D, "
                  "G_ema 0.999, Adam beta1 0.5, 2 D updates per G update, 180 epochs",
                  {"loss.r1_gamma": 30.0, "optim.ema_beta": 0.999, "optim.beta1": 0.5, "train.d_steps": 2,
                   "train.epochs": 180}),
    "dcgan-mnist": ("DCGAN (Radford et al. 2016) on 28x28 digits: BN, Adam 2e-4/0.5, batch 64, 20 epochs",
                    {**_DCGAN, "train.epochs": 20}),
    # quick-mnist (issue #19, best samples per CPU-minute; docs/ZOO.md "Best samples per CPU-minute"): dcgan-mnist's
    # architecture at half the widths (32: twice the steps per second), Adam 1e-3 instead of 2e-4, bf16 autocast where
    # the CPU has bf16 instructions (precision auto: 1.2-1.4x the fp32 step with avx512_bf16; on an AVX2 CPU bf16 ran
    # ~0.1x, so auto takes fp32 there), G_ema 0.995, and self-conditioning on 30 k-means clusters of the pixels
    # (data.clusters: G takes the cluster's one-hot next to z, D reads it by projection; no human label). Trials on
    # Fashion-MNIST at equal steps (pinned evaluator, 5,000 samples; docs/ZOO.md "How quick-mnist was chosen" lists
    # them): at 3,000 steps lr 2e-4 FD 77, 5e-4 52, 1e-3 47, 2e-3 45; a linear lr decay 113 and G_ema 0.999 106 (too
    # short for them); widths 32 at 6,000 steps (the time of 3,000 at 64) 64 vs 77; batch 32 no better than 64 at equal
    # time; at 18,000 steps (5 minutes on 2 cores) no clusters 26.3; D reading 10 clusters as input planes 10.9 (20
    # collapse: recall 0.25), by projection 10.0, 15 8.3, 20 6.7, 30 5.5, 50 6.0. 150,000 steps outlast --time 30m;
    # the lrs are constant, so a cut run trained at full rate.
    "quick-mnist": ("DCGAN at widths 32 for a CPU time budget, self-conditioned on 30 k-means clusters of the pixels "
                    "(no labels read; projection D): Adam 1e-3 (0.5), bf16 where the device has bf16 units, G_ema "
                    "0.995, batch 64, 150,000 steps; use --time 5m",
                    {**_DCGAN, "model.g_channels": 32, "model.d_channels": 32, "optim.g_lr": 1e-3, "optim.d_lr": 1e-3,
                     "optim.ema_beta": 0.995, "train.precision": "auto", "train.steps": 150_000,
                     "train.epochs": None, "data.clusters": 30, "model.cond": "projection", "model.num_classes": 30}),
    "wgan-gp-mnist": ("WGAN-GP (Gulrajani et al. 2017): DCGAN nets, layer norm in D, lambda 10, 5 critic steps",
                      {**_DCGAN, "model.d_norm": "layer", "loss.name": "wasserstein", "loss.gp_weight": 10.0,
                       "optim.g_lr": 1e-4, "optim.d_lr": 1e-4, "optim.beta1": 0.0, "optim.beta2": 0.9,
                       "train.d_steps": 5, "train.epochs": 50}),
    "cgan-mnist": ("class-conditional DCGAN: one-hot labels concatenated to z and to D's input (10 classes)",
                   {**_DCGAN, "model.cond": "concat", "model.num_classes": 10, "train.epochs": 20}),
    "sngan-cifar10": ("SNGAN (Miyato et al. 2018): ResNet G 256 / D 128 with spectral norm, hinge, 5 D steps, "
                      "Adam 2e-4 (0, 0.9), linear decay",
                      {"data.name": "cifar10", "model.arch": "resnet", "model.z_dim": 128, "model.g_channels": 256,
                       "model.d_channels": 128, "model.g_norm": "batch", "model.d_spectral_norm": True,
                       "model.init": "glorot_uniform", "loss.name": "hinge", "loss.real_target": 1.0,
                       "optim.g_lr": 2e-4, "optim.d_lr": 2e-4, "optim.beta1": 0.0, "optim.beta2": 0.9,
                       "optim.lr_schedule": "linear", "train.batch_size": 64, "train.d_steps": 5,
                       "train.steps": 50_000, "train.epochs": None}),
    "pacgan-ring8": ("PacGAN4 on ring8: G MLP 4x400 BN ReLU (z 2), D 3 maxout layers 200x5 judging 4 samples, "
                     "100 packs per batch, 400,000 steps",
                     {**_PACGAN, "data.name": "ring8", "data.size": 400_000}),
    "pacgan-grid25": ("PacGAN4 on grid25: G MLP 4x400 BN ReLU (z 2), D 3 maxout layers 200x5 judging 4 samples, "
                      "100 packs per batch, 400,000 steps",
                      {**_PACGAN, "data.name": "grid25", "data.size": 400_000}),
    "gan-ring8": ("PacGAN's own GAN baseline on ring8: the pacgan-ring8 networks and training, no packing",
                  {**_PACGAN, "data.name": "ring8", "model.pack": 1, "model.g_norm_slots": 1,
                   "train.batch_size": 100}),
    "gan-grid25": ("PacGAN's own GAN baseline on grid25: the pacgan-grid25 networks and training, no packing",
                   {**_PACGAN, "data.name": "grid25", "model.pack": 1, "model.g_norm_slots": 1,
                    "train.batch_size": 100}),
    "dcgan-stacked-mnist": ("DCGAN on stacked MNIST (1,000 modes, docs/PROTOCOLS.md §2): D convs 64-128-256-512, "
                            "G mirrored (2x2x512 up to 28x28x3), Adam 2e-4/0.5, batch 64, 50 epochs",
                            {**_DCGAN, "data.name": "stacked-mnist", "model.d_layers": 4, "model.g_layers": 4,
                             "train.epochs": 50}),
    "pacgan-stacked-mnist": ("PacDCGAN2 on stacked MNIST: the DCGAN preset with D judging 2 samples at once",
                             {**_DCGAN, "data.name": "stacked-mnist", "model.d_layers": 4, "model.g_layers": 4,
                              "model.pack": 2, "train.epochs": 50}),
    "r3gan-mnist": ("R3GAN (Huang et al. 2024) on 28x28 digits: residual nets without norms, widths 64-128, "
                    "relativistic loss + R1 + R2 (0.05), Adam 2e-4 (0, 0.99), G_ema 0.999, batch 64, 20 epochs",
                    {**_R3GAN, "train.epochs": 20}),
    "r3gan-cifar10": ("R3GAN (Huang et al. 2024) on CIFAR-10: the r3gan-mnist nets and training at 32x32x3, "
                      "50,000 steps",
                      {**_R3GAN, "data.name": "cifar10", "train.steps": 50_000, "train.epochs": None}),
}


def list_presets() -> list[str]:
    return sorted(PRESETS)


def preset_config(name: str) -> RunConfig:
    if name not in PRESETS:
        raise GankitError(f"unknown preset {name!r}; "
                          f"{did_you_mean(name, list_presets()) or 'choose one of: ' + ', '.join(list_presets())}")
    return RunConfig(preset=name).with_overrides(PRESETS[name][1])


# ----------------------------------------------------------------------------------------------
# Dotted keys and type-checked parsing.

def all_keys(cls: type = RunConfig, prefix: str = "") -> list[str]:
    """Every dotted key a RunConfig accepts, e.g. ``train.batch_size``."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        t = hints[f.name]
        if is_dataclass(t):
            keys += all_keys(t, prefix + f.name + ".")
        else:
            keys.append(prefix + f.name)
    return keys


def did_you_mean(word: str, choices: list[str], n: int = 3) -> str | None:
    """``"did you mean 'a' or 'b'?"`` naming the ``choices`` closest to a mistyped ``word`` (case and leading
    dashes ignored), or None when none is close: the one "did you mean" of config keys, presets, datasets and
    command-line options."""
    import difflib

    by_norm = {c.lower().lstrip("-"): c for c in choices}  # '--' in front of every option inflates likeness
    w = word.lower().lstrip("-")
    scored = sorted(((difflib.SequenceMatcher(None, w, c).ratio(), c) for c in by_norm), reverse=True)[:n]
    # difflib's usual cutoff, and only the near-best: 'epoch' is 'epochs', not also 'nproc'
    close = [c for r, c in scored if r >= max(0.6, scored[0][0] - 0.15)]
    return f"did you mean {' or '.join(repr(by_norm[c]) for c in close)}?" if close else None


def unknown_key_error(key: str) -> GankitError:
    """A one-line error for an unknown dotted key, with the closest valid keys."""
    keys = all_keys()
    section = key.split(".")[0]
    same = [k for k in keys if k.startswith(section + ".")]
    hint = did_you_mean(key, keys) or (f"valid {section}.* keys: {', '.join(same)}" if same else
                                       f"sections are {', '.join(sorted({k.split('.')[0] for k in keys}))}")
    return GankitError(f"unknown config key {key!r}; {hint}")


def _set_dotted(obj: Any, key: str, value: Any, full: str | None = None) -> Any:
    full = full or key
    head, _, rest = key.partition(".")
    names = {f.name for f in fields(obj)}
    if head not in names:
        raise unknown_key_error(full)
    hint = typing.get_type_hints(type(obj))[head]
    current = getattr(obj, head)
    if rest:
        if not is_dataclass(current):
            raise unknown_key_error(full)
        return replace(obj, **{head: _set_dotted(current, rest, value, full)})
    if is_dataclass(hint):
        raise GankitError(f"config key {full!r} is a section; set one of its fields, "
                          f"e.g. {full}.{fields(hint)[0].name}")
    return replace(obj, **{head: parse_value(hint, value, full)})


def _from_dict(cls: type, d: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(d, Mapping):
        raise GankitError(f"config section {prefix.rstrip('.') or '<root>'} must be a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(map(str, set(d) - names))  # str: a damaged file may hold non-string keys
    if unknown:
        raise unknown_key_error(prefix + unknown[0])
    kwargs = {}
    for name, value in d.items():
        t = hints[name]
        if is_dataclass(t):
            kwargs[name] = _from_dict(t, value, prefix + name + ".")
        else:
            kwargs[name] = parse_value(t, value, prefix + name)
    return cls(**kwargs)


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_value(hint: Any, value: Any, key: str) -> Any:
    """Coerce ``value`` (a string from the command line, or a JSON value) to the field type ``hint``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            if type(None) in args:
                return None
        return parse_value(non_none[0], value, key)
    if origin is tuple:
        inner = args[0]
        if isinstance(value, str):
            text = value.strip().strip("[]()")
            items = [s for s in (p.strip() for p in text.split(",")) if s]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [value]
        return tuple(parse_value(inner, v, key) for v in items)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError
        if hint is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                return int(value)
            return int(str(value).strip())
        if hint is float:
            if isinstance(value, bool):
                raise ValueError
            out = float(str(value).strip()) if isinstance(value, str) else float(value)
            if out != out or out in (float("inf"), float("-inf")):
                raise ValueError
            return out
        if hint is str:
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError, OverflowError):  # OverflowError: float(10**400)
        name = getattr(hint, "__name__", str(hint))
        raise GankitError(f"config key {key!r} expects {name}, got {value!r}") from None
    raise GankitError(f"config key {key!r} has an unsupported type {hint}")  # pragma: no cover
