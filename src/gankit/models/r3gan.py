"""R3GAN's G and D (Huang, Gokaslan, Kuleshov & Tompkin, NeurIPS 2024, "The GAN is dead; long live the GAN! A
Modern GAN Baseline", Config E), scaled down for 28×28 and 32×32 images on a CPU.

Both nets are residual and have no normalisation layers. Every residual block is an inverted bottleneck,
x + conv1×1(lrelu(gconv3×3(lrelu(conv1×1(x))))): C -> e·C -> e·C (grouped, ``model.group_channels`` per group)
-> C, leaky ReLU 0.2, biases before each activation and none after the last conv.

G: z -> a learned constant basis (w, s0, s0) scaled per channel by Linear(z) (s0 = 7 at 28×28, 4 at 32×32)
   -> stages, each [transition: conv 1×1 (when the width changes), bilinear upsample ×2] + blocks
   -> conv 1×1 to the image channels -> tanh.
D: x -> conv 1×1 -> stages, each blocks + [transition: bilinear downsample ×½ (antialiased), conv 1×1 (when the
   width changes)] -> blocks at s0 -> depthwise s0×s0 conv to (N, w) = ``features`` -> ``head`` Linear w -> 1.

Widths: ``model.stage_channels`` lists them from the image resolution down (D's order; G mirrors it), and the
lower stages repeat the last width: (64, 128) at 28×28 is D 64@28, 128@14, 128@7 and G 128@7, 128@14, 64@28.

Initialisation (the paper's fix-up, Sec. 4 / its code's "MSR" init): weights N(0, gain²/fan_in); in each residual
branch the first two convs take gain √(2/(1 + 0.2²))·L^(-1/4), L = the net's number of blocks (L^(-1/(2m-2)) for
m = 3 layers), and the last conv is zero, so every block is the identity at init; transitions and the bases take
gain 1. ``model.init`` sets the entry and exit layers (G's Linear from z and its to-image conv, D's from-image
conv and head) as in every family. With ``model.d_spectral_norm`` D's last branch convs start like the first two:
spectral norm rescales every weight to σ_max = 1 and divides a zero weight by zero.

Kept from the paper's 32×32 nets: the block, grouped convs of 16 channels, expansion 2, the resampling
transitions, the bases, no normalisation, the init. Scaled down: widths (768 in every stage) and blocks per
stage (2). Changed: G ends in tanh (gankit's images are in [-1, 1]) and D's head has a bias (zero at init; the
relativistic loss cancels it, the other losses use it).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..errors import GankitError
from .dcgan import check_image_shape, init_module_, start_resolution

# The model.* keys these nets read besides models.COMMON_KEYS; any other key set away from its default is refused
# (models.check_model). The leaky slope is the paper's 0.2: at init every block is the identity, so a slope key
# would change nothing there.
KEYS = frozenset({"stage_channels", "stage_blocks", "block_expansion", "group_channels"})

SLOPE = 0.2
LEAKY_GAIN = math.sqrt(2.0 / (1.0 + SLOPE**2))  # He et al. 2015's gain for leaky ReLU


def msr_init_(layer: nn.Module, gain: float) -> nn.Module:
    """Weights N(0, gain²/fan_in) (fan_in per group for a grouped conv), biases 0; gain 0 zeroes the weights."""
    w = layer.weight
    fan_in = w.shape[1] * w[0][0].numel()
    with torch.no_grad():
        if gain > 0:
            w.normal_(0.0, gain / math.sqrt(fan_in))
        else:
            w.zero_()
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


def stage_widths(cfg: ModelConfig, num_stages: int, resolution: int) -> list[int]:
    """The width of each stage from the image resolution down: ``model.stage_channels``, its last entry repeated."""
    widths = list(cfg.stage_channels)
    if len(widths) > num_stages:
        raise GankitError(f"model.stage_channels {','.join(map(str, widths))} lists {len(widths)} widths, but "
                          f"r3gan at {resolution}×{resolution} has {num_stages} stages; give at most {num_stages}")
    return widths + [widths[-1]] * (num_stages - len(widths))


def num_groups(hidden: int, group_channels: int) -> int:
    """Groups of the 3×3 conv over ``hidden`` channels: ``group_channels`` each, or one group when narrower."""
    size = min(group_channels, hidden)
    if hidden % size:
        raise GankitError(f"r3gan: a block's expanded width {hidden} is not a multiple of model.group_channels "
                          f"{group_channels}; change model.stage_channels, model.block_expansion or "
                          f"model.group_channels")
    return hidden // size


class ResidualBlock(nn.Module):
    """x (N, C, H, W) -> x + conv1×1(lrelu(gconv3×3(lrelu(conv1×1(x))))), C -> e·C -> e·C -> C."""

    def __init__(self, channels: int, expansion: int, group_channels: int, num_blocks: int, zero_last: bool = True):
        super().__init__()
        hidden = channels * expansion
        self.expand = nn.Conv2d(channels, hidden, 1)  # (its bias is the bias before the activation)
        self.mix = nn.Conv2d(hidden, hidden, 3, padding=1, groups=num_groups(hidden, group_channels))
        self.project = nn.Conv2d(hidden, channels, 1, bias=False)
        gain = LEAKY_GAIN * num_blocks ** -0.25  # fix-up: the branch variance shrinks with the depth L
        msr_init_(self.expand, gain)
        msr_init_(self.mix, gain)
        msr_init_(self.project, 0.0 if zero_last else gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.expand(x), SLOPE)
        h = F.leaky_relu(self.mix(h), SLOPE)
        return x + self.project(h)


class Upsample(nn.Module):
    """(N, C_in, H, W) -> conv 1×1 (when C_in != C_out) -> bilinear ×2 -> (N, C_out, 2H, 2W)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = msr_init_(nn.Conv2d(c_in, c_out, 1, bias=False), 1.0) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(x), scale_factor=2, mode="bilinear", align_corners=False)


class Downsample(nn.Module):
    """(N, C_in, H, W) -> bilinear ×½, antialiased (a [1, 3, 3, 1] low-pass) -> conv 1×1 (when C_in != C_out)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = msr_init_(nn.Conv2d(c_in, c_out, 1, bias=False), 1.0) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype in (torch.bfloat16, torch.float16):
            # torch's CPU kernel of the antialiased resize has no half-precision version (a bf16 autocast run
            # reaches it with bf16 activations): this one filter runs in float32, the rest stays in bf16
            y = F.interpolate(x.float(), scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True)
            return self.conv(y.to(x.dtype))
        return self.conv(F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True))


def _blocks(cfg: ModelConfig, width: int, num_blocks: int, zero_last: bool = True) -> list[nn.Module]:
    return [ResidualBlock(width, cfg.block_expansion, cfg.group_channels, num_blocks, zero_last)
            for _ in range(cfg.stage_blocks)]


class R3GANGenerator(nn.Module):
    """z (N, z_dim) float -> images (N, C, H, W) in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, img_shape: tuple[int, ...]):
        super().__init__()
        c, res = check_image_shape("r3gan", img_shape)
        self.s0, n = start_resolution(res)
        self.z_dim, self.img_shape = cfg.z_dim, tuple(img_shape)
        widths = stage_widths(cfg, n + 1, res)[::-1]  # from s0 up
        num_blocks = cfg.stage_blocks * len(widths)
        # The paper's generative basis: a learned (w, s0, s0) constant whose channels z scales.
        self.basis = nn.Parameter(torch.randn(widths[0], self.s0, self.s0))
        self.fc = nn.Linear(cfg.z_dim, widths[0], bias=False)
        stages = [nn.Sequential(*_blocks(cfg, widths[0], num_blocks))]
        stages += [nn.Sequential(Upsample(w_in, w_out), *_blocks(cfg, w_out, num_blocks))
                   for w_in, w_out in zip(widths, widths[1:])]
        self.stages = nn.Sequential(*stages)
        self.out = nn.Conv2d(widths[-1], c, 1)
        for stem in (self.fc, self.out):
            init_module_(stem, cfg.init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.basis * self.fc(z)[:, :, None, None]  # (N, w, s0, s0)
        return torch.tanh(self.out(self.stages(h)))


class R3GANDiscriminator(nn.Module):
    """images (N, C, H, W) float -> logits (N,); ``features`` is the depthwise basis's output (N, w)."""

    def __init__(self, cfg: ModelConfig, img_shape: tuple[int, ...]):
        super().__init__()
        c, res = check_image_shape("r3gan", img_shape)
        s0, n = start_resolution(res)
        widths = stage_widths(cfg, n + 1, res)  # from the image resolution down
        num_blocks = cfg.stage_blocks * len(widths)
        zero_last = not cfg.d_spectral_norm
        self.from_img = nn.Conv2d(c, widths[0], 1)
        stages = [nn.Sequential(*_blocks(cfg, w_in, num_blocks, zero_last), Downsample(w_in, w_out))
                  for w_in, w_out in zip(widths, widths[1:])]
        stages.append(nn.Sequential(*_blocks(cfg, widths[-1], num_blocks, zero_last)))
        self.stages = nn.Sequential(*stages)
        # The paper's discriminative basis: a depthwise s0×s0 conv that reads each channel's whole map.
        self.basis = msr_init_(nn.Conv2d(widths[-1], widths[-1], s0, groups=widths[-1], bias=False), 1.0)
        self.head = nn.Linear(widths[-1], 1)
        for stem in (self.from_img, self.head):
            init_module_(stem, cfg.init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.basis(self.stages(self.from_img(x))).flatten(1)  # (N, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)
