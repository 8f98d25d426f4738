"""CUDA graphs for the training step (``train.cuda_graphs``).

The seed's networks are so small that a GPU spends most of a step waiting for Python to launch ~100 tiny
kernels. A CUDA graph records the whole step once -- both forward passes, both backward passes and both fused
Adam updates -- and then replays it with a single launch.

What a replay cannot change is what it recorded: tensor addresses, shapes and Python-side constants. So:

- the step's inputs (the real batches, their labels, the latents z and the fake labels) are drawn *outside*
  the graph, by the same generators in the same order as the eager step draws them, and copied into static
  buffers the graph reads;
- both optimizers are switched to ``capturable`` (their step counters live on the GPU);
- options that draw random numbers inside the step with gankit's own generators (DiffAugment, gradient penalty,
  instance noise), that change a constant every step (a linear lr schedule), or that synchronise with the host
  (fp16's GradScaler) are refused with a one-line error, as are torch.compile (its ``reduce-overhead`` mode
  already uses graphs) and torchrun (the "cuda_graphs" rows of training/options.py);
- the first :data:`WARMUP` steps run eagerly on a side stream (PyTorch's recipe: the optimizers create their
  state, cuBLAS its workspace), then the step is captured and replayed from then on. A non-finite rollback or a
  restored optimizer invalidates the graph; :meth:`GraphedStep.reset` makes the next step warm up and capture
  again.

Every step is a real training step, warm-up and capture included, and draws the same random numbers as the eager
step, so a graphed run follows the eager run up to floating-point rounding (tests/test_gpu.py checks this).
"""
from __future__ import annotations

from typing import Any, Callable

import torch


WARMUP = 3


def set_capturable(optimizers, flag: bool) -> None:
    """Mark optimizers capturable (step counters on the device), or not. Called again after every
    ``load_state_dict``, which restores the flag the checkpoint was saved with."""
    for opt in optimizers:
        for group in opt.param_groups:
            if "capturable" in group:
                group["capturable"] = flag


class Replayer:
    """Calls ``fn()`` eagerly on a side stream for the first :data:`WARMUP` calls, then captures it once and
    replays the graph from then on (returning the captured call's outputs, which each replay overwrites)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.graph: torch.cuda.CUDAGraph | None = None
        self.warm = 0
        self.out: Any = None

    def __call__(self, fn: Callable[[], Any]) -> Any:
        if self.graph is not None:
            self.graph.replay()
            return self.out
        if self.warm < WARMUP:
            side = torch.cuda.Stream(device=self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                out = fn()
            torch.cuda.current_stream(self.device).wait_stream(side)
            self.warm += 1
            return out
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.out = fn()
        self.graph = graph
        graph.replay()  # capture records the step without running it
        return self.out


class GraphedStep:
    """A step object (steps.py) around another: draws the step's inputs outside the graph, copies them into
    static buffers, and warms up, captures and replays ``step`` on them."""

    def __init__(self, step: Any, device: torch.device):
        self.step = step
        self.replayer = Replayer(device)
        self.reset()

    def reset(self) -> None:
        """Forget the captured graph (after the optimizers' state or learning rates were replaced)."""
        self.replayer.reset()
        self.static: dict[str, Any] | None = None

    def draw(self, k: int) -> Any:
        return self.step.draw(k)

    def _load_inputs(self, batches, labels, inputs) -> dict[str, Any]:
        if self.static is None:
            self.static = {"batches": [b.clone() for b in batches],
                           "labels": [y.clone() for y in labels] if labels is not None else None,
                           "inputs": [(z.clone(), None if y is None else y.clone()) for z, y in inputs]}
            return self.static
        s = self.static
        pairs = list(zip(s["batches"], batches)) + list(zip(s["labels"] or [], labels or []))
        for (zd, yd), (zs, ys) in zip(s["inputs"], inputs):
            pairs += [(zd, zs)] + ([(yd, ys)] if ys is not None else [])
        for dst, src in pairs:
            dst.copy_(src, non_blocking=True)
        return s

    def __call__(self, batches: list[torch.Tensor], labels: list[torch.Tensor] | None = None,
                 inputs: Any = None) -> torch.Tensor:
        s = self._load_inputs(batches, labels, inputs if inputs is not None else self.draw(len(batches)))
        return self.replayer(lambda: self.step(s["batches"], s["labels"], s["inputs"]))
