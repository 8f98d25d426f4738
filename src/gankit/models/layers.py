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


def init_linear(linear: nn.Linear, scheme: str) -> nn.Linear:
    """Apply an init scheme by name: ``glorot_uniform`` (TF1) or ``torch`` (leave PyTorch's default)."""
    if scheme == "glorot_uniform":
        return glorot_uniform_(linear)
    return linear
