"""Hardware switches for the training step: mixed precision, channels-last memory, torch.compile.

Each is a ``train.*`` field (so it is recorded in the run's config and manifest) and each leaves the step's
math alone: autocast wraps the *forward* passes of G and D only, and their outputs return as float32, so
losses, penalties and backward passes stay in float32 (PyTorch's advice for autocast).
"""
from __future__ import annotations

import torch
from torch import nn


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Autocast(nn.Module):
    """Runs ``module`` under ``torch.autocast(device_type, dtype)`` and returns float32 outputs."""

    def __init__(self, module: nn.Module, device_type: str, dtype: torch.dtype):
        super().__init__()
        self.module = module
        self.device_type = device_type
        self.dtype = dtype

    def forward(self, *args, **kwargs):
        # no weight-cast cache: each region uses a weight once, and CUDA-graph capture needs it off
        with torch.autocast(self.device_type, dtype=self.dtype, cache_enabled=False):
            out = self.module(*args, **kwargs)
        if isinstance(out, tuple):
            return tuple(o.float() for o in out)
        return out.float()


def wrap(module: nn.Module, device: torch.device, dtype: torch.dtype | None, compile_: bool) -> nn.Module:
    """The callable a step uses for ``module``: compiled and/or autocast as the config asks."""
    out = module
    if compile_:
        out = torch.compile(out)
    if dtype is not None:
        out = Autocast(out, device.type, dtype)
    return out


def channels_last(module: nn.Module) -> nn.Module:
    return module.to(memory_format=torch.channels_last)


def grad_scaler(enabled: bool, device: torch.device):
    """A GradScaler for fp16 (one per optimizer), or None."""
    if not enabled:
        return None
    try:
        return torch.amp.GradScaler(device.type)
    except (AttributeError, TypeError):  # torch < 2.3 spelled it torch.cuda.amp
        return torch.cuda.amp.GradScaler()


def backward_step(loss: torch.Tensor, opt: torch.optim.Optimizer, scaler, step: bool = True) -> None:
    """zero_grad, backward and step, through the GradScaler when there is one. ``step`` False leaves the
    gradients in place for a later :func:`optimizer_step` (simultaneous updates)."""
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
    else:
        scaler.scale(loss).backward()
    if step:
        optimizer_step(opt, scaler)


def optimizer_step(opt: torch.optim.Optimizer, scaler) -> None:
    if scaler is None:
        opt.step()
    else:
        scaler.step(opt)
        scaler.update()


def adam(params, lr: float, o) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all tensors: 2.6x faster than foreach for the seed on CPU),
    falling back to foreach where this torch build has no fused Adam for the device."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), eps=o.eps, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), eps=o.eps, foreach=True)
