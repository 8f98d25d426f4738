"""PacGAN packing (Lin et al. 2018): D judges m samples at once, concatenated along its input's first axis.

Any unconditional D works: the inner D is built for an input of m·C channels (images) or m·d features
(vectors), and the wrapper reshapes a batch (N, C, ...) into N/m packs (N/m, m·C, ...). Consecutive samples form
a pack, so real and fake never share one as long as each part of a batch is a multiple of m.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import GankitError


def packed_shape(shape: tuple[int, ...], m: int) -> tuple[int, ...]:
    """The inner D's input shape: (m·C, H, W) for images, (m·d,) for vectors."""
    return (shape[0] * m, *shape[1:])


def pack(x: torch.Tensor, m: int) -> torch.Tensor:
    """(N, C, ...) -> (N/m, m·C, ...); samples i·m .. i·m + m - 1 form pack i."""
    n = x.shape[0]
    if n % m:
        raise GankitError(f"a packed D (model.pack {m}) needs batches divisible by {m}, got {n}; "
                          f"change train.batch_size")
    return x.reshape(n // m, m * x.shape[1], *x.shape[2:])


class PackedDiscriminator(nn.Module):
    """x (N, C, ...) -> logits (N/m,)."""

    def __init__(self, inner: nn.Module, m: int):
        super().__init__()
        self.inner, self.pack = inner, m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(pack(x, self.pack))
