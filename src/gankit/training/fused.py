"""The fused MLP step (``train.fused_step``): the seed's update with hand-derived gradients instead of autograd.

For the seed's tiny networks a step is ~0.2 GFLOP and most of its time goes to Python, the dispatcher and the
autograd engine rather than to the matrix products. The MLP GAN's backward pass is short enough to write out:

D step, on X = [x_real; G(z)] (2B rows), logits l, targets t (real_target, fake_target), loss
Σ_halves mean(softplus(l) − t·l):
    ∂L/∂l = (σ(l) − t) / B;  for each Linear from the top: ∂W = δᵀ·input, ∂b = Σ δ, δ ← (δ·W) ⊙ lrelu'(pre).
G step, through the updated D on G(z), non-saturating loss mean(softplus(−l)) (∂/∂l = (σ(l) − 1)/B) or the
minimax loss −mean(softplus(l)) (∂/∂l = −σ(l)/B):
    δ back through D to its input (no D weight gradients), through tanh (δ ⊙ (1 − x²)), then through G's Linears.

Gradients are written into the parameters' ``.grad`` and the same Adam optimizers step them, so optimizer state,
checkpoints and resuming are those of the autograd step. It applies to unconditional, unpacked MLP G and D with
leaky-ReLU hidden layers and no norm, dropout or minibatch std, the BCE losses (nonsaturating, minimax), fp32, one
process (the "fused" rows of training/options.py); anything else uses autograd. tests/train/test_fused.py checks the
gradients against autograd.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data import to_unit_range

_lrelu_bwd = torch.ops.aten.leaky_relu_backward
_tanh_bwd = torch.ops.aten.tanh_backward


def _linears(net: nn.Sequential, last: type) -> list[nn.Linear] | None:
    """The Linear layers of [Linear, LeakyReLU]* Linear [last], or None if ``net`` has another shape."""
    mods = list(net)
    if last is not nn.Identity:
        if not mods or type(mods[-1]) is not last:
            return None
        mods = mods[:-1]
    if len(mods) % 2 != 1:
        return None
    for i, m in enumerate(mods):
        want = nn.Linear if i % 2 == 0 else nn.LeakyReLU
        if type(m) is not want:
            return None
    return mods[0::2]  # type: ignore[return-value]


def mlp_layers(G: nn.Module, D: nn.Module) -> bool:
    """True when G and D are the MLP family's networks with [Linear, LeakyReLU]* layers only (no norm, no
    dropout): the shape the fused step differentiates by hand. Which configs it takes: training/options.py."""
    from ..models.mlp import MLPDiscriminator, MLPGenerator

    if type(G) is not MLPGenerator or type(D) is not MLPDiscriminator:
        return False
    return _linears(G.net, nn.Tanh) is not None and _linears(D.net, nn.Identity) is not None


def adam_step(opt: torch.optim.Optimizer) -> None:
    """``opt.step()`` for a fused Adam, minus its Python bookkeeping (~0.2 ms of the seed's ~2 ms step on CPU):
    the same kernel on the optimizer's own state. Falls back to ``opt.step()`` wherever that is not exactly the
    same update (first step, capturable, amsgrad, weight decay, or a torch whose private kernel differs)."""
    if not getattr(opt, "_gankit_fast", True):
        opt.step()
        return
    group = opt.param_groups[0]
    params = group["params"]
    if (len(opt.param_groups) != 1 or not group.get("fused") or group.get("capturable") or group["amsgrad"]
            or group["maximize"] or group["weight_decay"] or group.get("differentiable")
            or any(p not in opt.state for p in params)):
        opt.step()
        return
    states = [opt.state[p] for p in params]
    steps = [st["step"] for st in states]
    torch._foreach_add_(steps, 1)
    try:
        torch._fused_adam_(params, [p.grad for p in params], [st["exp_avg"] for st in states],
                           [st["exp_avg_sq"] for st in states], [], steps, amsgrad=False, lr=group["lr"],
                           beta1=group["betas"][0], beta2=group["betas"][1], weight_decay=0.0, eps=group["eps"],
                           maximize=False, grad_scale=None, found_inf=None)
    except (AttributeError, TypeError):  # a torch whose private kernel differs: its own step from now on
        torch._foreach_sub_(steps, 1)
        opt._gankit_fast = False  # type: ignore[attr-defined]
        opt.step()


class FusedMLPStep:
    """A step object (steps.py): ``step(batches, labels=None, inputs=None)`` -> (4,) [d_loss, g_loss, D(x),
    D(G(z))], the seed's update of ``run`` (a :class:`~gankit.training.run.Run`)."""

    def __init__(self, trainer: Any):
        self.tr = trainer
        cfg = trainer.cfg
        self.slope = float(cfg.model.leaky_slope)
        self.real_target, self.fake_target = float(cfg.loss.real_target), float(cfg.loss.fake_target)
        self.minimax = cfg.loss.name == "minimax"
        self.g_lin = _linears(trainer.G.net, nn.Tanh)
        self.d_lin = _linears(trainer.D.net, nn.Identity)
        self.B = trainer.local_batch
        dev = trainer.device
        self.targets = torch.cat([torch.full((self.B, 1), self.real_target, device=dev),
                                  torch.full((self.B, 1), self.fake_target, device=dev)])

    # -- pieces (also used by the tests) ----------------------------------------------------------
    def _forward(self, lins: list[nn.Linear], x: torch.Tensor, tanh_out: bool
                 ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Output, the inputs of each Linear, and the pre-activations of the hidden (leaky-ReLU) layers."""
        ins, pres = [], []
        h = x
        for i, lin in enumerate(lins):
            ins.append(h)
            h = torch.addmm(lin.bias, h, lin.weight.t())
            if i < len(lins) - 1:
                pres.append(h)
                h = torch.nn.functional.leaky_relu(h, self.slope)
        if tanh_out:  # tanh(a) = 2·σ(2a) − 1: the same values to ~1e-7, and 3x faster than torch.tanh on CPU
            h = torch.sigmoid(h.mul_(2.0)).mul_(2.0).sub_(1.0)
        return h, ins, pres

    def g_forward(self, z: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """G(z) flat (B, d), the inputs of each Linear, and the pre-activations of the hidden layers."""
        return self._forward(self.g_lin, z, tanh_out=True)

    def d_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """D's logits (N, 1), the inputs of each Linear, and the pre-activations of the hidden layers."""
        return self._forward(self.d_lin, x, tanh_out=False)

    def _backward(self, lins, ins, pres, delta: torch.Tensor, weight_grads: bool, input_grad: bool
                  ) -> torch.Tensor | None:
        """Backpropagate ``delta`` (∂L/∂output of the last Linear) through ``lins``; writes .grad if
        ``weight_grads``; returns ∂L/∂(input of the first Linear) if ``input_grad``."""
        for i in range(len(lins) - 1, -1, -1):
            lin = lins[i]
            if weight_grads:
                torch.mm(delta.t(), ins[i], out=lin.weight.grad)
                torch.sum(delta, 0, out=lin.bias.grad)
            if i == 0 and not input_grad:
                return None
            delta = torch.mm(delta, lin.weight)
            if i > 0:
                delta = _lrelu_bwd(delta, pres[i - 1], self.slope, False)
        return delta

    def d_grads(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Writes D's gradients of the D loss on [real; fake] into .grad; returns (d_loss, σ(logits) (2B, 1))."""
        logits, ins, pres = self.d_forward(torch.cat([real, fake]))
        s = torch.sigmoid(logits)
        d_loss = (torch.nn.functional.softplus(logits) - self.targets * logits).sum() / self.B
        delta = (s - self.targets).mul_(1.0 / self.B)
        self._backward(self.d_lin, ins, pres, delta, weight_grads=True, input_grad=False)
        return d_loss, s

    def g_grads(self, fake: torch.Tensor, g_ins, g_pres) -> torch.Tensor:
        """Writes G's gradients of the G loss through (current) D into .grad; returns g_loss."""
        logits, ins, pres = self.d_forward(fake)
        s = torch.sigmoid(logits)
        if self.minimax:  # -mean(softplus(l)); d/dl = -σ(l)/B
            g_loss = -torch.nn.functional.softplus(logits).mean()
            delta = s.mul(-1.0 / self.B)
        else:  # mean(softplus(-l)); d/dl = (σ(l) - 1)/B
            g_loss = torch.nn.functional.softplus(-logits).mean()
            delta = (s - 1.0).mul_(1.0 / self.B)
        dx = self._backward(self.d_lin, ins, pres, delta, weight_grads=False, input_grad=True)
        dx = _tanh_bwd(dx, fake)
        self._backward(self.g_lin, g_ins, g_pres, dx, weight_grads=True, input_grad=False)
        return g_loss

    def ensure_grads(self) -> None:
        for lin in self.g_lin + self.d_lin:  # type: ignore[operator]
            for p in (lin.weight, lin.bias):
                if p.grad is None or p.grad.shape != p.shape:
                    p.grad = torch.zeros_like(p)

    def draw(self, k: int) -> list[tuple[torch.Tensor, Any]]:
        from .steps import draw_inputs

        return draw_inputs(self.tr, k)

    @torch.no_grad()
    def __call__(self, batches: list[torch.Tensor], labels: Any = None,
                 inputs: list[tuple[torch.Tensor, Any]] | None = None) -> torch.Tensor:
        """One step on ``batches`` with the latents ``inputs[i][0]`` (drawn here when None: the seed's step
        draws nothing else, so drawing ahead is the same stream)."""
        tr = self.tr
        if inputs is None:
            inputs = self.draw(len(batches))
        self.ensure_grads()
        for real_u8, (z, _) in zip(batches, inputs):
            real = to_unit_range(real_u8).flatten(1)
            fake, g_ins, g_pres = self.g_forward(z)
            d_loss, s = self.d_grads(real, fake)
            adam_step(tr.opt_D)
        g_loss = self.g_grads(fake, g_ins, g_pres)
        adam_step(tr.opt_G)
        return torch.stack([d_loss, g_loss, s[:self.B].mean(), s[self.B:].mean()])
