"""Line charts as inline SVG text: no plotting library, crisp at any zoom, a few KB each."""
from __future__ import annotations

import math
from html import escape

import numpy as np

COLORS = ("#3056d3", "#e0592a", "#12a150", "#9b51e0", "#d4a017", "#0aa5b5")
W, H = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 44, 36


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round numbers (1, 2 or 5 times a power of ten apart) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Mean-pool long series into at most ``max_points`` points (a smoothed curve, as TensorBoard shows)."""
    n = len(x)
    if n <= max_points:
        return x, y
    k = math.ceil(n / max_points)
    m = n // k * k
    return x[:m].reshape(-1, k).mean(1), y[:m].reshape(-1, k).mean(1)


def line_chart(series: list[tuple[str, list[float], list[float]]], title: str, xlabel: str = "step",
               ylim: tuple[float, float] | None = None, hline: float | None = None,
               hline_label: str | None = None, xlim: tuple[float, float] | None = None,
               no_data: str = "no data") -> str:
    """An SVG chart of ``series`` = [(label, xs, ys), ...]; non-finite points are dropped. ``hline``: a level
    drawn dashed across the chart (inside the y range unless ``ylim`` is given), named in the legend by
    ``hline_label``. ``xlim``: the x range (default: the data's), e.g. to share one axis across charts.
    Every word drawn is an argument (the caller's language); ``no_data`` is shown when no point is finite."""
    clean = []
    for label, xs, ys in series:
        x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():
            clean.append((label, *downsample(x[ok], y[ok])))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
           f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="600">{escape(title)}</text>']
    if not clean:
        out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" fill="#667085">{escape(no_data)}</text></svg>')
        return "".join(out)
    x0 = min(float(c[1].min()) for c in clean)
    x1 = max(float(c[1].max()) for c in clean)
    if xlim is not None:
        x0, x1 = min(x0, xlim[0]), max(x1, xlim[1])
    if ylim is not None:
        y0, y1 = ylim
    else:
        y0 = min(float(c[2].min()) for c in clean)
        y1 = max(float(c[2].max()) for c in clean)
        if hline is not None and math.isfinite(hline):
            y0, y1 = min(y0, hline), max(y1, hline)
        pad = (y1 - y0) * 0.05 or abs(y0) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    if x1 <= x0:
        x0, x1 = x0 - 1, x1 + 1
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def sx(v):
        return LEFT + (v - x0) / (x1 - x0) * pw

    def sy(v):
        return TOP + (1 - (v - y0) / (y1 - y0)) * ph

    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#c8ceda"/>')
    for t in nice_ticks(y0, y1):
        if y0 <= t <= y1:
            out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eef0f5"/>'
                       f'<text x="{LEFT - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for t in nice_ticks(x0, x1):
        if x0 <= t <= x1:
            out.append(f'<text x="{sx(t):.1f}" y="{TOP + ph + 15}" text-anchor="middle">{_fmt(t)}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 4}" text-anchor="middle" fill="#667085">{escape(xlabel)}</text>')
    if hline is not None and y0 <= hline <= y1:
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{sy(hline):.1f}" y2="{sy(hline):.1f}" '
                   f'stroke="#98a2b3" stroke-dasharray="4 3"/>')
        if hline_label:
            lx = LEFT + len(clean) * 130
            out.append(f'<line x1="{lx}" x2="{lx + 16}" y1="{TOP - 10}" y2="{TOP - 10}" stroke="#98a2b3" '
                       f'stroke-dasharray="4 3" stroke-width="2"/><text x="{lx + 20}" y="{TOP - 6}">'
                       f'{escape(hline_label)} {_fmt(hline)}</text>')
    for i, (label, x, y) in enumerate(clean):
        color = COLORS[i % len(COLORS)]
        yc = np.clip(y, y0, y1)
        if len(x) == 1:
            out.append(f'<circle cx="{sx(x[0]):.1f}" cy="{sy(yc[0]):.1f}" r="3" fill="{color}"/>')
        else:
            pts = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(x, yc))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        lx = LEFT + i * 130  # legend in the top margin, clear of the curves
        out.append(f'<line x1="{lx}" x2="{lx + 16}" y1="{TOP - 10}" y2="{TOP - 10}" stroke="{color}" '
                   f'stroke-width="2"/><text x="{lx + 20}" y="{TOP - 6}">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)
