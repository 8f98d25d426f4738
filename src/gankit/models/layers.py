"""Layers and initialisers shared by several model families."""
from __future__ import annotations

import math

import torch
from torch import nn


def glorot_uniform_(linear: nn.Linear) -> nn.Linear:
    """TF1 ``tf.layers.dense`` default: weights ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)); biases zero.

    (PyTorch's own default is Kaiming-uniform with a = 1/sqrt(fan_in) and non-zero biases, which the seed
    tutorial did not use.)
    """
    fan_out, fan_in = linear.weight.shape
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound)
        if linear.bias is not None:
            linear.bias.zero_()
    return linear


class MinibatchStd(nn.Module):
    """The minibatch standard deviation of Karras et al. 2018 (progressive GANs), for features (N, F) -> (N, F + 1).

    The batch is cut into N / ``group`` groups of ``group`` samples, sample i in group i mod (N / group), as in their
    code (one group when N is not a multiple of ``group``; training refuses such a batch size). The appended feature
    of every sample in a group is the standard deviation of each feature over the group, averaged over the F
    features. A G that draws nearly the same sample again and again gives small values that a real
    batch never shows, so D can tell. It couples the samples of a batch, as batch norm does, so real and fake
    batches go through D apart (models.has_batch_coupling)."""

    def __init__(self, group: int):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        g = self.group if n % self.group == 0 else n
        groups = x.reshape(g, n // g, -1)  # groups[:, j] holds samples j, j + N/g, j + 2N/g, ...
        std = (groups.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=1)  # (N / g,)
        return torch.cat([x, std.repeat(g).unsqueeze(1).to(x.dtype)], dim=1)

    def extra_repr(self) -> str:
        return f"group={self.group}"


def init_linear(linear: nn.Linear, scheme: str) -> nn.Linear:
    """Apply an init scheme by name: ``glorot_uniform`` (TF1) or ``torch`` (leave PyTorch's default)."""
    if scheme == "glorot_uniform":
        return glorot_uniform_(linear)
    return linear
