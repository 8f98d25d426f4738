"""bench/step_variants.py's one-pass D: a split batch norm must compute what separate passes compute."""
import copy
import sys
from pathlib import Path

import torch
import torch.nn as nn

import gankit
from gankit.models import build_discriminator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import step_variants as sv  # noqa: E402

SHAPE = (1, 28, 28)


def test_split_batch_norm_matches_one_call_per_group():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(64)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    ref, split = copy.deepcopy(bn), sv.SplitBatchNorm2d(copy.deepcopy(bn))
    xs = [torch.randn(64, 64, 7, 7) * (i + 1) + i for i in range(3)]  # groups with different statistics
    x = torch.cat(xs).requires_grad_(True)
    split.groups = 3
    y = split(x)
    y_ref = torch.cat([ref(xi) for xi in xs])
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(split.bn.running_mean, ref.running_mean)  # updated once per group, in order
    torch.testing.assert_close(split.bn.running_var, ref.running_var)
    assert int(split.bn.num_batches_tracked) == int(ref.num_batches_tracked) == 3
    # gradients: input and affine parameters
    w = torch.randn_like(y)
    xr = [xi.clone().requires_grad_(True) for xi in xs]
    ref2 = copy.deepcopy(bn)
    (torch.cat([ref2(xi) for xi in xr]) * w).sum().backward()
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, torch.cat([xi.grad for xi in xr]), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(split.bn.weight.grad, ref2.weight.grad, rtol=1e-4, atol=1e-4)


def test_one_pass_check_on_the_preset_d_and_its_sensitivity():
    cfg = gankit.preset("quick-mnist")
    g = torch.Generator().manual_seed(1)
    B, K = cfg.train.batch_size, cfg.model.num_classes
    real = torch.rand(B, *SHAPE, generator=g) * 2 - 1
    fake = torch.tanh(torch.randn(B, *SHAPE, generator=g) * 0.3)  # a different distribution from real
    y_real, y_fake = torch.randint(0, K, (B,), generator=g), torch.randint(0, K, (B,), generator=g)
    assert sv.check_one_pass(cfg, SHAPE, real, y_real, fake, y_fake) < 1e-4
    # the check can fail: D's plain batch norm on cat(real, fake) mixes the halves' statistics
    torch.manual_seed(0)
    D = build_discriminator(cfg.model, SHAPE)
    two = torch.cat([D(real, y_real), D(fake, y_fake)])
    one = D(torch.cat([real, fake]), torch.cat([y_real, y_fake]))
    assert (one - two).abs().max() > 1e-2


def test_stride_one_rewrites_compute_the_stride_two_layers_at_the_presets_sizes():
    """--layers times rewrites of quick-mnist's four stride-2 4x4 layers as stride-1 convolutions; each must be
    the same function: output, input and weight gradients against torch's conv2d / conv_transpose2d at batch 64."""
    for kind, ci, co, size in sv.LAYERS.values():
        x, w, b, ref, alt = sv.layer_case(kind, ci, co, size)
        g = torch.randn_like(ref(x, w, b))
        outs, grads = [], []
        for f in (ref, alt):
            y = f(x, w, b)
            inputs = [x, w, b] if x.requires_grad else [w, b]
            grads.append(torch.autograd.grad(y, inputs, g))
            outs.append(y.detach())
        out = size // 2 if kind == "conv" else size * 2
        assert outs[1].shape == outs[0].shape == (64, co, out, out)
        torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-4)
        for a, r in zip(grads[1], grads[0]):
            torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-3)
