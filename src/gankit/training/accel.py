"""Hardware switches for the training step: mixed precision, channels-last memory, torch.compile.

Each is a ``train.*`` field (so it is recorded in the run's config and manifest) and each leaves the step's
math alone: autocast wraps the *forward* passes of G and D only, and their outputs return as float32, so
losses, penalties and backward passes stay in float32 (PyTorch's advice for autocast).

bf16 pays only where the device computes it in hardware. On a CPU with AVX2 only (no AVX-512, no AMX) torch runs
bf16 convolutions and matmuls through slow reference loops: quick-mnist's step ran about 10x slower than in fp32
(docs/BENCHMARKS.md); plain AVX-512 without bf16 instructions emulates it. ``train.precision auto`` (quick-mnist's)
takes bf16 only where :func:`native_bf16` says the device has it, fp32 elsewhere; an explicit ``bf16`` on such a
CPU trains as asked, with a one-line note (:func:`resolve_precision`).
"""
from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch
from torch import nn


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=None)
def cpu_info() -> tuple[str, frozenset[str]]:
    """This CPU's model name and instruction-set flags, as Linux's /proc/cpuinfo gives them (first CPU); elsewhere
    Python's platform name and no flags."""
    name, flags = "", frozenset()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not name:
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = frozenset(value.split())
    except OSError:
        pass
    return name or platform.processor() or platform.machine(), flags


@functools.lru_cache(maxsize=None)
def native_bf16(device_type: str) -> bool:
    """Whether ``device_type`` ("cpu", "cuda", ...) computes bf16 convolutions and matmuls in fast kernels.

    On a CPU: torch's oneDNN must take bf16 at all (its own check, the one convolutions dispatch on: AVX-512 BW/VL/DQ;
    without it they fall to slow reference loops) and the cores must have bf16 instructions (``avx512_bf16`` or
    ``amx_bf16``; plain AVX-512 emulates bf16, slower than fp32). Where the CPU's flags cannot be read (not Linux),
    oneDNN's check decides. On CUDA: a GPU with bf16 units (Ampere or later). Other devices: False (fp32)."""
    if device_type == "cpu":
        if not torch.backends.mkldnn.is_available():
            return False
        flags = cpu_info()[1]
        try:
            onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a torch without the query: the flags oneDNN's check reads
            onednn = {"avx512bw", "avx512vl", "avx512dq"} <= flags
        return onednn and (not flags or bool({"avx512_bf16", "amx_bf16"} & flags))
    if device_type == "cuda":
        if not torch.cuda.is_available():
            return False
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # torch before the emulation flag
            return bool(torch.cuda.is_bf16_supported())
    return False


def auto_precision(device_type: str) -> str:
    """What ``train.precision auto`` trains in on ``device_type``."""
    return "bf16" if native_bf16(device_type) else "fp32"


def resolve_precision(requested: str, device: torch.device, saved: str | None = None, log=None) -> str:
    """The precision a run trains in: ``requested`` (train.precision), with ``auto`` resolved for ``device``.
    ``saved``: the precision the resumed run trained in, if any. ``log`` gets one line when the choice is worth
    knowing: what auto took and why, a resumed auto run that now trains in another precision, or bf16 asked of a
    CPU without bf16 instructions."""
    say = log if log is not None else (lambda *_: None)
    kind = device.type
    if requested != "auto":
        if requested == "bf16" and kind == "cpu" and not native_bf16("cpu"):
            say("note: train.precision bf16 on a CPU without bf16 instructions (avx512_bf16 or AMX): its "
                "convolutions and matmuls run emulated or in torch's slow fallback loops, slower than fp32 (up to "
                "10x); --train.precision auto takes fp32 here")
        return requested
    out = auto_precision(kind)
    if saved is not None and saved != out:
        say(f"note: train.precision auto takes {out} on this {kind}; this run trained in {saved} until now, so the "
            f"resumed run will not be bit-identical to an uninterrupted one")
    elif kind in ("cpu", "cuda"):
        say(f"train.precision auto: {out} (this {kind} {'has' if out == 'bf16' else 'has no'} bf16 in hardware)")
    return out


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
