"""What else could make quick-mnist's step faster: exact rewrites of its step, timed against the careful one.

    python bench/step_variants.py [--reps 4] [--window-steps 100] [--write docs/BENCHMARKS.md]

bench/quick_speed.py times gankit's switches (bf16, channels-last, compile). This bench times ideas that are not
switches yet, each written as a plain loop over the preset's own nets (gankit's registry, same init, same clusters
count, batch, Adam and G_ema), so that only the step differs:

- ``careful fp32``: bench/baselines.careful_conv's step (two D passes for D's batch norm), the baseline;
- ``bf16``: the same under bf16 autocast (what the preset ships);
- ``bf16, one D pass``: D's update passes cat(real, fake) once, its batch norm taking each half's statistics apart
  (:class:`SplitBatchNorm2d`) — the same numbers as two passes (checked before timing), one conv call per layer;
- ``+ D channels-last``, ``+ G channels-last``: the nets' weights (and so their activations) in NHWC;
- ``bf16, G's last layer fp32``: the 32→1 transposed convolution, which runs slower in bf16 than in fp32 on
  some CPUs, out of autocast;
- ``fp32, oneDNN's bf16 math mode``: no autocast, fp32 tensors throughout, oneDNN's convolutions and matmuls
  allowed to compute in bf16 inside (``torch.backends.mkldnn.*.fp32_precision``, torch ≥ 2.9; skipped before);
- ``bf16, 1 thread``: what the second core buys (the bound on running passes on threads of their own).

``--layers`` times each stride-2 4x4 layer alone (forward and backward, batch 64) as written and rewritten as a
stride-1 convolution computing the same sums: D's convolutions as space-to-depth (:func:`s2d_conv`), G's transposed
convolutions by output phase (:func:`phase_conv_transpose`).

Contestants run interleaved over ``--reps`` rounds; the figure is the median 50-step window. The section then
states the ceiling of such rewrites: both steps profiled, the bf16 step's time without its 1-channel layers'
convolutions and without the copies it makes beyond the fp32 step's, against the careful step's (:func:`bound`).
``--profile`` instead prints where the ``bf16`` step's time goes (torch.profiler, 50 steps after 50 of warm-up):
the costliest convolution calls by shape, and the totals by kind.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines  # noqa: E402
from train_speed import fashion  # noqa: E402

import gankit  # noqa: E402
from gankit.data.clusters import draw_labels, relabel  # noqa: E402
from gankit.io import replace_marked  # noqa: E402
from gankit.models import build_discriminator  # noqa: E402

START, END = "<!-- step-variants:start -->", "<!-- step-variants:end -->"
VARIANTS = {
    "careful fp32": dict(bf16=False),
    "bf16": dict(bf16=True),
    "bf16, one D pass": dict(bf16=True, one_pass=True),
    "bf16, one D pass + D channels-last": dict(bf16=True, one_pass=True, cl_d=True),
    "bf16 + D channels-last": dict(bf16=True, cl_d=True),
    "bf16 + G channels-last": dict(bf16=True, cl_g=True),
    "bf16, G's last layer fp32": dict(bf16=True, g_last_fp32=True),
    "fp32, oneDNN's bf16 math mode": dict(fpmath=True),
    "bf16, 1 thread": dict(bf16=True, one_thread=True),
}


class SplitBatchNorm2d(nn.Module):
    """Wraps a BatchNorm2d so that one call on ``groups`` stacked batches computes what ``groups`` calls on each
    batch would: per-group batch statistics, and the running statistics updated once per group in order."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        self.bn, self.groups = bn, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g, bn = self.groups, self.bn
        if g == 1 or not self.training:
            return bn(x)
        N, C, H, W = x.shape
        # (g·n, C, H, W) -> (n, g·C, H, W): each group's channels become channels of their own
        xg = x.view(g, N // g, C, H, W).transpose(0, 1).reshape(N // g, g * C, H, W)
        mean, var = x.new_zeros(g * C, dtype=torch.float32), x.new_ones(g * C, dtype=torch.float32)
        y = F.batch_norm(xg, mean, var, bn.weight.repeat(g), bn.bias.repeat(g), True, 1.0, bn.eps)
        with torch.no_grad():  # momentum 1 left each group's batch mean and unbiased variance in mean, var
            m = bn.momentum
            for i in range(g):
                bn.running_mean.lerp_(mean[i * C:(i + 1) * C], m)
                bn.running_var.lerp_(var[i * C:(i + 1) * C], m)
            bn.num_batches_tracked += g
        return y.view(N // g, g, C, H, W).transpose(0, 1).reshape(N, C, H, W)


def split_bn(D: nn.Module) -> list[SplitBatchNorm2d]:
    """Replace D's BatchNorm2d layers by :class:`SplitBatchNorm2d` in place; returns them."""
    out = []
    for mod in list(D.modules()):
        for name, child in list(mod.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(mod, name, SplitBatchNorm2d(child))
                out.append(getattr(mod, name))
    return out


def check_one_pass(cfg, shape, real, y_real, fake, y_fake) -> float:
    """Largest difference between two D passes and one split pass in fp32, relative to the largest entry of its
    kind: logits, D's weight gradients, running statistics (raises when it exceeds 1e-4)."""
    torch.manual_seed(0)
    D2 = build_discriminator(cfg.model, shape)
    D1 = copy.deepcopy(D2)
    bns = split_bn(D1)
    two = torch.cat([D2(real, y_real), D2(fake, y_fake)])
    for b in bns:
        b.groups = 2
    one = D1(torch.cat([real, fake]), torch.cat([y_real, y_fake]))
    two.square().sum().backward()
    one.square().sum().backward()
    b2 = [m for m in D2.modules() if isinstance(m, nn.BatchNorm2d)]
    grads = [(p1.grad, p2.grad) for p1, p2 in zip(D1.parameters(), D2.parameters())]
    stats = [(b.bn.running_mean, c.running_mean) for b, c in zip(bns, b2)]
    stats += [(b.bn.running_var, c.running_var) for b, c in zip(bns, b2)]
    # each group against its largest entry (a bias before batch norm has a gradient of rounding noise only)
    def rel(group):
        return (max(float((x - y).detach().abs().max()) for x, y in group)
                / max(float(y.detach().abs().max()) for _, y in group))
    worst = max(rel(group) for group in ([(one, two)], grads, stats))
    if worst > 1e-4:
        raise AssertionError(f"one split D pass differs from two passes by {worst:.2e} (relative)")
    return worst


def has_fpmath() -> bool:
    return hasattr(getattr(torch.backends.mkldnn, "conv", None), "fp32_precision")


@contextlib.contextmanager
def process_settings(fpmath: bool = False, one_thread: bool = False):
    """oneDNN's bf16 math mode for fp32 convolutions and matmuls, and/or one intra-op thread, for the block."""
    n = torch.get_num_threads()
    if fpmath:
        torch.backends.mkldnn.conv.fp32_precision = torch.backends.mkldnn.matmul.fp32_precision = "bf16"
    if one_thread:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if fpmath:
            torch.backends.mkldnn.conv.fp32_precision = torch.backends.mkldnn.matmul.fp32_precision = "none"
        torch.set_num_threads(n)


def fpmath_changes_convs() -> bool:
    """Whether oneDNN honours the bf16 math mode for convolutions here (on CPUs without bf16 units it may not)."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(64, 32, 14, 14, generator=g), torch.randn(64, 32, 4, 4, generator=g)
    exact = F.conv2d(x, w, stride=2, padding=1)
    with process_settings(fpmath=True):
        return not torch.equal(F.conv2d(x, w, stride=2, padding=1), exact)


def windows(cfg, shape, data, labels, shares, steps: int, out: list[float], bf16=False, one_pass=False,
            cl_d=False, cl_g=False, g_last_fp32=False, fpmath=False, one_thread=False) -> None:
    """Train ``steps`` + 50 steps on ``data`` (float in [-1, 1], preloaded as careful_conv does; the first 50 steps
    warm up); append each later 50-step window's seconds to ``out``. The loop is careful_conv's (its nets and
    optimizers too, baselines._models) with the contestant's changes."""
    with process_settings(fpmath, one_thread):
        _windows(cfg, shape, data, labels, shares, steps, out, bf16, one_pass, cl_d, cl_g, g_last_fp32)


def _windows(cfg, shape, data, labels, shares, steps, out, bf16, one_pass, cl_d, cl_g, g_last_fp32) -> None:
    G, D, opt_g, opt_d = baselines._models(cfg, shape)
    bns = split_bn(D) if one_pass else []
    if cl_d:
        D.to(memory_format=torch.channels_last)
    if cl_g:
        G.to(memory_format=torch.channels_last)
    if g_last_fp32:
        last = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)][-1]
        fwd = last.forward

        def fp32(x, fwd=fwd):
            with torch.autocast("cpu", enabled=False):
                return fwd(x.float())
        last.forward = fp32
    o, B, z_dim, t = cfg.optim, cfg.train.batch_size, cfg.model.z_dim, cfg.loss.real_target
    G_ema = baselines._ema_copy(G)

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    t0 = time.perf_counter()
    for i in range(steps + 50):
        idx = torch.randint(0, data.shape[0], (B,))
        real, y_real, y_fake = data[idx], labels[idx], draw_labels(shares.float(), B)
        with autocast():
            fake = G(torch.randn(B, z_dim), y_fake)
            if one_pass:
                for b in bns:
                    b.groups = 2
                logits = D(torch.cat([real, fake.detach()]), torch.cat([y_real, y_fake])).float()
                for b in bns:
                    b.groups = 1
                dr, df = logits[:B], logits[B:]
            else:
                dr, df = D(real, y_real).float(), D(fake.detach(), y_fake).float()
        d_loss = (F.binary_cross_entropy_with_logits(dr, torch.full_like(dr, t))
                  + F.binary_cross_entropy_with_logits(df, torch.zeros_like(df)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        D.requires_grad_(False)
        with autocast():
            g_logits = D(fake, y_fake).float()
        g_loss = F.softplus(-g_logits).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
        with torch.no_grad():  # as careful_conv: G_ema's weights averaged, its batch-norm statistics copied
            torch._foreach_lerp_(list(G_ema.parameters()), list(G.parameters()), 1.0 - o.ema_beta)
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)
        if (i + 1) % 50 == 0:
            now = time.perf_counter()
            if i + 1 > 50:
                out.append(now - t0)
            t0 = now


def _profiled(cfg, data, bf16: bool):
    """The ops of 50 steps (after 50 of warm-up) of the careful step, in bf16 or fp32, grouped by input shape."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    clustered, shares, _ = relabel(data, cfg.data.clusters, cfg.data.seed, log=lambda *_: None)
    shape, x = tuple(data.images.shape[1:]), data.images.float() / 127.5 - 1
    windows(cfg, shape, x, clustered.labels, shares, 0, [], bf16=bf16)  # warm-up of oneDNN's kernels
    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as p:
        windows(cfg, shape, x, clustered.labels, shares, 0, [], bf16=bf16)  # 50 steps
    return p.key_averages(group_by_input_shape=True)


CONV_OPS = {"aten::convolution", "aten::_convolution", "aten::mkldnn_convolution", "aten::convolution_backward",
            "aten::conv2d", "aten::conv_transpose2d"}
COPY_OPS = {"aten::copy_", "aten::_to_copy", "aten::to", "aten::empty_strided"}


def _ms(events) -> float:
    """Self time per step (ms) of ``events`` (from 50 profiled steps)."""
    return sum(e.self_cpu_time_total for e in events) / 50 / 1000


def bound(cfg, data) -> dict:
    """How fast the bf16 step could get if its two cheap-to-name costs were gone: the convolutions of the
    1-channel layers (D's first, G's last: any 4-D operand with 1 channel) and the copies it makes beyond the fp32
    step's (autocast's casts). Both steps profiled (op self time, profiler on); ``bound``: the careful fp32 step's
    time over what the bf16 step would have left."""
    fp32, bf = _profiled(cfg, data, False), _profiled(cfg, data, True)
    one_ch = _ms(e for e in bf if e.key in CONV_OPS and any(len(sh) == 4 and sh[1] == 1 for sh in e.input_shapes))
    extra_copies = max(0.0, _ms(e for e in bf if e.key in COPY_OPS) - _ms(e for e in fp32 if e.key in COPY_OPS))
    careful, total = _ms(fp32), _ms(bf)
    return {"careful_ms": careful, "bf16_ms": total, "one_channel_ms": one_ch, "extra_copies_ms": extra_copies,
            "conv_ms": _ms(e for e in bf if e.key in CONV_OPS),
            "bf16_ratio": careful / total, "bound": careful / (total - one_ch - extra_copies)}


# ---------------------------------------------------------------------------------------------------------------
# --layers: the stride-2 4x4 layers of quick-mnist's nets rewritten as stride-1 convolutions (the same sums).

def s2d_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """conv2d(x, w, b, stride 2, padding 1) for a 4x4 ``w`` as space-to-depth: pad 1, pixel-unshuffle by 2 (4x the
    channels, half the size), then a stride-1 2x2 convolution whose weight takes tap (2a + i, 2b + j) of ``w`` for
    sub-pixel (i, j) at offset (a, b)."""
    co, ci = w.shape[:2]
    w2 = w.reshape(co, ci, 2, 2, 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(co, ci * 4, 2, 2)  # o,c,a,i,b,j -> o,c,i,j,a,b
    return F.conv2d(F.pixel_unshuffle(F.pad(x, (1, 1, 1, 1)), 2), w2, b)


def phase_conv_transpose(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """conv_transpose2d(x, w, b, stride 2, padding 1) for a 4x4 ``w`` by output phase: output pixel (2m + r, 2n + s)
    sums input rows m + r - 1 + u (u = 0, 1) with tap 3 - r - 2u (columns alike), so one stride-1 2x2 convolution
    of the 1-padded input with 4x the output channels computes all four phases on an (H+1) x (W+1) grid; phase
    (r, s) is its window [r:r+H, s:s+W], and the phases interleave into the 2H x 2W output."""
    ci, co = w.shape[:2]
    n, _, h, wd = x.shape
    w2 = w.flip(2, 3).reshape(ci, co, 2, 2, 2, 2).permute(1, 3, 5, 0, 2, 4).reshape(co * 4, ci, 2, 2)
    y = F.conv2d(F.pad(x, (1, 1, 1, 1)), w2).reshape(n, co, 2, 2, h + 1, wd + 1)
    rows = [torch.stack([y[:, :, r, c, r:r + h, c:c + wd] for c in (0, 1)], -1) for r in (0, 1)]
    out = torch.stack(rows, 3).reshape(n, co, 2 * h, 2 * wd)  # n, co, h, r, w, s
    return out if b is None else out + b.view(1, -1, 1, 1)


LAYERS = {  # quick-mnist's stride-2 layers at batch 64: (kind, in channels, out channels, input size)
    "D conv 1→32, 28→14": ("conv", 1, 32, 28), "D conv 32→64, 14→7": ("conv", 32, 64, 14),
    "G conv-transpose 64→32, 7→14": ("convT", 64, 32, 7), "G conv-transpose 32→1, 14→28": ("convT", 32, 1, 14),
}


def layer_case(kind: str, ci: int, co: int, size: int, batch: int = 64, seed: int = 0):
    """(x, w, b, reference, rewrite) of one layer; x needs a gradient except for D's first layer (its input is
    an image)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, ci, size, size, generator=g).requires_grad_(ci > 1)
    w = (torch.randn((co, ci, 4, 4) if kind == "conv" else (ci, co, 4, 4), generator=g) * 0.1).requires_grad_(True)
    b = torch.randn(co, generator=g).requires_grad_(True)
    if kind == "conv":
        return x, w, b, (lambda x, w, b: F.conv2d(x, w, b, 2, 1)), s2d_conv
    return x, w, b, (lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1)), phase_conv_transpose


def layers(reps: int = 5, n: int = 50) -> str:
    """Forward + backward milliseconds of each layer, as written and rewritten, in fp32 and under bf16 autocast
    (best of ``reps`` means of ``n`` calls), and how far the rewrite's fp32 output is from the reference's."""
    lines = ["| layer | max abs diff, rewrite vs conv (fp32) | fp32 ms: conv / rewrite | bf16 ms: conv / rewrite |",
             "|---|---|---|---|"]
    for name, (kind, ci, co, size) in LAYERS.items():
        x, w, b, ref, alt = layer_case(kind, ci, co, size)
        with torch.no_grad():
            diff = (ref(x, w, b) - alt(x, w, b)).abs().max().item()
        cells = []
        for bf16 in (False, True):
            def run(f):
                with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                    y = f(x, w, b)
                y.float().sum().backward()
            best = {}
            for _ in range(reps):
                for key, f in (("conv", ref), ("rewrite", alt)):
                    for _ in range(3):
                        run(f)
                    t0 = time.perf_counter()
                    for _ in range(n):
                        run(f)
                    best[key] = min(best.get(key, float("inf")), (time.perf_counter() - t0) / n * 1000)
            cells.append(f"{best['conv']:.3f} / {best['rewrite']:.3f}")
        lines.append(f"| {name} | {diff:.1e} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def profile(cfg, data) -> str:
    """Where the ``bf16`` step's time goes: per-step milliseconds of the costliest ops by input shape."""
    ev = _profiled(cfg, data, True)
    total = _ms(ev)
    lines = [f"bf16 step: {total:.1f} ms of op time per step (profiler on)", "",
             "| op | input shapes | ms/step | calls/step |", "|---|---|---|---|"]
    for e in sorted(ev, key=lambda e: -e.self_cpu_time_total)[:15]:
        shapes = ", ".join("x".join(map(str, s)) for s in e.input_shapes if s)[:60]
        lines.append(f"| {e.key} | {shapes} | {e.self_cpu_time_total / 50 / 1000:.2f} | {e.count / 50:.0f} |")
    return "\n".join(lines)


def measure(cfg, data, reps: int, steps: int) -> dict:
    clustered, shares, _ = relabel(data, cfg.data.clusters, cfg.data.seed, log=lambda *_: None)
    labels, shape = clustered.labels, tuple(data.images.shape[1:])
    x = data.images.float() / 127.5 - 1
    B = cfg.train.batch_size
    g = torch.Generator().manual_seed(0)
    real = data.images[:B].float() / 127.5 - 1
    fake = torch.rand(B, *shape, generator=g) * 2 - 1
    worst = check_one_pass(cfg, shape, real, labels[:B], fake, labels[B:2 * B])
    variants = {k: v for k, v in VARIANTS.items() if has_fpmath() or not v.get("fpmath")}
    res: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(reps):
        for name, kw in variants.items():
            windows(cfg, shape, x, labels, shares, steps, res[name], **kw)
    return {"speed": {k: 50 / statistics.median(v) for k, v in res.items()}, "check": worst,
            "fpmath": fpmath_changes_convs() if has_fpmath() else None, "bound": bound(cfg, data)}


def render(r: dict) -> str:
    s = r["speed"]
    base, bf = s["careful fp32"], s["bf16"]
    lines = [f"Generated by `python bench/step_variants.py --write docs/BENCHMARKS.md` ({r['machine']}, {r['cpus']} "
             f"CPUs, {r['threads']} threads, torch {r['torch']}; {r['reps']} interleaved reps of {r['steps']} "
             "steps, median 50-step window; quick-mnist's nets). One split D pass matches two passes to "
             f"{r['check']:.1e} of the largest entry (logits, D's gradients, running statistics; fp32).", "",
             "| step | steps/s | vs careful fp32 | vs bf16 |", "|---|---|---|---|"]
    lines += [f"| {k} | {v:.1f} | {v / base:.2f}x | {v / bf:.2f}x |" for k, v in s.items()]
    if r["fpmath"] is not None:
        lines += ["", "oneDNN's bf16 math mode " + ("changes" if r["fpmath"] else "does not change")
                  + " a 32→64 convolution's output on this machine" + ("." if r["fpmath"] else
                                                                         " (the mode is not honoured here).")]
    b = r["bound"]
    lines += ["", f"The ceiling of these rewrites (torch.profiler, op self time of 50 steps, profiler on): the careful "
              f"fp32 step takes {b['careful_ms']:.1f} ms, the bf16 step {b['bf16_ms']:.1f} ms "
              f"({b['bf16_ratio']:.2f}x), of which {b['conv_ms']:.1f} ms in convolutions, "
              f"{b['one_channel_ms']:.1f} ms of them in the 1-channel layers (D's first, G's last), and "
              f"{b['extra_copies_ms']:.1f} ms in copies beyond the fp32 step's (autocast's casts). Were both free, "
              f"the bf16 step would run at **{b['bound']:.2f}x** the careful one."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--window-steps", type=int, default=100)
    ap.add_argument("--write", help=f"replace this file's text between {START} and {END}")
    ap.add_argument("--profile", action="store_true", help="print where the bf16 step's time goes, and stop")
    ap.add_argument("--layers", action="store_true", help="print each stride-2 layer's time as written and as a "
                                                          "stride-1 rewrite, and stop")
    args = ap.parse_args()
    if args.layers:
        print(layers())
        return
    cfg = gankit.preset("quick-mnist").with_overrides({"data.name": "fashion-mnist"})
    if args.profile:
        print(profile(cfg, fashion()))
        return
    r = measure(cfg, fashion(), args.reps, args.window_steps)
    r.update(machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
             threads=torch.get_num_threads(), torch=str(torch.__version__), reps=args.reps, steps=args.window_steps)
    text = render(r)
    print(text)
    if args.write:
        doc = Path(args.write)
        doc.write_text(replace_marked(doc.read_text(), START, END, text,
                                      "## quick-mnist: exact rewrites of the step (CPU)"))


if __name__ == "__main__":
    main()
