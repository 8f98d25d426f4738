"""``gankit report``: a run folder as one self-contained HTML file.

Everything is embedded (charts as inline SVG, pictures as ``data:`` URIs), so the file opens offline in any
browser, can be mailed, and never points at files that may move. Sections: the run at a glance, loss curves,
mean D(x) and D(G(z)) over time, every evaluation (``metrics.jsonl`` and ``gankit eval --json`` reports in the
run folder, see :mod:`.evals`) as a chart per score against step with its real-vs-real floor and as a table,
sample grids across epochs, an animation of the fixed-z grids through training, and the resolved config.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import time
from html import escape
from pathlib import Path
from typing import Any

from ..errors import GankitError
from ..io import atomic_write_text
from . import evals
from .svgplot import line_chart

MAX_GALLERY = 12  # sample grids shown side by side


def read_log_tolerant(path: Path) -> dict[str, list[float]]:
    """Columns of ``log.csv``; rows that do not parse (a run being written) are skipped."""
    try:
        text = path.read_text()
    except IsADirectoryError:
        raise GankitError(f"{path} is a folder, not the run's step log; move it away for a report without "
                          f"training curves") from None
    except OSError:
        return {}
    except UnicodeDecodeError:
        raise GankitError(f"{path}: not a text file (damaged?); restore it, or move it away for a report "
                          f"without training curves") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return {}
    cols: dict[str, list[float]] = {h: [] for h in header}
    for row in reader:
        if len(row) != len(header):
            continue
        try:
            vals = [float(v) for v in row]
        except ValueError:
            continue
        for h, v in zip(header, vals):
            cols[h].append(v)
    return cols


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _epoch_grids(run_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for p in (run_dir / "samples").glob("epoch_*.png"):
        m = re.fullmatch(r"epoch_(\d+)\.png", p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def _evenly(items: list, k: int) -> list:
    """At most ``k`` items spread evenly over ``items``, first and last included."""
    if len(items) <= k:
        return list(items)
    if k <= 1:
        return [items[-1]]
    idx = sorted({round(i * (len(items) - 1) / (k - 1)) for i in range(k)})
    return [items[i] for i in idx]


def training_gif(paths: list[Path], frame_ms: int = 150, hold_ms: int = 1500) -> bytes | None:
    """An animated GIF of the fixed-z grids in ``paths`` (same z each epoch, so change = learning)."""
    from PIL import Image

    frames = []
    for p in paths:
        try:
            with Image.open(p) as im:
                frames.append(im.convert("L") if im.mode in ("L", "LA", "I;16") else
                              im.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE))
        except OSError:
            continue
    if not frames:
        return None
    size = frames[0].size
    frames = [f if f.size == size else f.resize(size) for f in frames]
    buf = io.BytesIO()
    durations = [frame_ms] * (len(frames) - 1) + [hold_ms]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return buf.getvalue()


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(str(v))}</td></tr>"
                    for k, v in rows if v not in (None, "", [], {}))
    return f"<table>{cells}</table>"


def _commands(manifest: dict[str, Any]) -> str | None:
    """The command line, or each invocation's (the first run and every resume) with the step it started at."""
    runs = [r for r in manifest.get("invocations") or [] if isinstance(r, dict) and r.get("argv")]
    if len(runs) < 2:
        return " ".join(map(str, manifest.get("argv", []))) or None
    return "; ".join(f"{' '.join(map(str, r['argv']))} (from step {r.get('step', '?')})" for r in runs)


def _evaluations(rows: list[dict[str, Any]]) -> str:
    """Every evaluation (see :mod:`.evals`): a chart per score against step with its floor, then a table."""
    if not rows:
        return ('<p class="muted">Not evaluated: no metrics.jsonl (gankit train --eval-every K) and no '
                'gankit eval report (gankit eval RUN --json RUN/eval.json) in the run folder.</p>')
    charts = "".join(svg for _, svg in evals.charts(rows))
    head = "".join(f"<th>{h}</th>" for h in ("step", "score", "value", "real-vs-real floor", "N fake", "from"))
    body = "".join(f"<tr><td>{r['step']}</td><td>{escape(r['label'])}</td><td>{escape(r['text'])}</td>"
                   f"<td>{escape(r['floor_text'])}</td><td>{escape(str(r['n_fake'] or ''))}</td>"
                   f"<td>{escape(r['source'])}</td></tr>" for r in rows)
    steps = sorted({r["step"] for r in rows})
    return (f"<p>{len(steps)} evaluation step(s), {steps[0]} to {steps[-1]}; the dashed line is the score of "
            f"real training images against the real test images (the best a generator can expect).</p>"
            f'<div class=charts>{charts}</div><table class="evals"><tr>{head}</tr>{body}</table>')


STYLE = """
body{font:14px/1.5 system-ui,sans-serif;color:#1d2330;max-width:1180px;margin:24px auto;padding:0 20px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #d9dee8}
.muted{color:#667085}table{border-collapse:collapse;font-size:13px}
td,th{padding:3px 10px 3px 0;border-bottom:1px solid #eef0f5;vertical-align:top;text-align:left}
td:first-child{color:#667085}th{font-weight:600;color:#667085}
.charts{display:flex;flex-wrap:wrap;gap:12px}.gallery{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0}figcaption{font-size:12px;color:#667085;text-align:center}
img.px{image-rendering:pixelated;width:256px;background:#000}
pre{background:#f6f7fb;padding:10px;border-radius:6px;font-size:12px;overflow:auto}
"""


def _check_types(path: Path, obj: Any, fields: dict[str, type]) -> None:
    """``obj`` is a JSON object whose ``fields``, where present, have the JSON types gankit writes."""
    if not isinstance(obj, dict):
        raise GankitError(f"{path}: expected a JSON object, found {_json_type(obj)} (damaged?)")
    for key, want in fields.items():
        if obj.get(key) is not None and not isinstance(obj[key], want):
            raise GankitError(f"{path}: {key!r} is {_json_type(obj[key])}, expected {_json_type(want())} "
                              f"(damaged?)")


def _json_type(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(v), "a number")


def build_report(run_dir: str | os.PathLike, max_frames: int = 60) -> str:
    """The HTML text of the report of ``run_dir`` (a folder written by ``gankit train``)."""
    run_dir = Path(run_dir).expanduser()
    if not (run_dir / "config.json").is_file():
        raise GankitError(f"{run_dir}: not a gankit run folder (no config.json)")
    if max_frames < 1:
        raise GankitError(f"--max-frames must be at least 1, got {max_frames}")
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except ValueError as e:
        raise GankitError(f"{run_dir / 'config.json'}: not valid JSON ({e})") from None
    _check_types(run_dir / "config.json", config, {"model": dict, "loss": dict, "preset": str})
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except OSError:  # a run folder from before manifests, or a copy without it: the report leaves it out
        manifest = {}
    except ValueError:
        raise GankitError(f"{run_dir / 'manifest.json'}: not valid JSON (damaged?); restore it, or move it away "
                          f"for a report without it") from None
    _check_types(run_dir / "manifest.json", manifest, {"dataset": dict, "parameters": dict, "versions": dict,
                                                        "argv": list, "invocations": list})
    log = read_log_tolerant(run_dir / "log.csv")
    steps = log.get("step", [])
    rows = evals.read_evaluations(run_dir)
    ds = manifest.get("dataset") or {}
    params = manifest.get("parameters") or {}
    last_step = int(steps[-1]) if steps else 0
    title = f"{run_dir.resolve().name}: {config.get('preset', '?')} on {ds.get('name', '?')}"
    glance = _table([
        ("preset", config.get("preset")), ("dataset", f"{ds.get('name')} ({ds.get('size')} images, shape "
                                                     f"{ds.get('shape')})" if ds else None),
        ("model", (config.get("model") or {}).get("arch")),
        ("parameters", ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in params.items())
         if params else None),
        ("loss", (config.get("loss") or {}).get("name")),
        ("steps logged", f"{last_step} of {manifest.get('total_steps', '?')}"),
        ("epochs logged", int(log["epoch"][-1]) if log.get("epoch") else None),
        ("seed", manifest.get("seed")), ("device", manifest.get("device")), ("started", manifest.get("started")),
        ("git revision", manifest.get("git_revision")),
        ("versions", ", ".join(f"{k} {v}" for k, v in (manifest.get("versions") or {}).items())),
        ("command", _commands(manifest)),
    ])
    curves = "".join([
        line_chart([("D loss", steps, log.get("d_loss", [])), ("G loss", steps, log.get("g_loss", []))], "losses"),
        line_chart([("mean D(x)", steps, log.get("d_real", [])), ("mean D(G(z))", steps, log.get("d_fake", []))],
                   "discriminator outputs", ylim=(0.0, 1.0), hline=0.5),
    ]) if steps else '<p class="muted">No log.csv rows yet.</p>'
    grids = _epoch_grids(run_dir)
    gallery_items = [(f"epoch {e}", p) for e, p in _evenly(grids, MAX_GALLERY)]
    if (run_dir / "samples" / "final.png").is_file():
        gallery_items.append(("final", run_dir / "samples" / "final.png"))
    figures = "".join(f'<figure><img class="px" alt="{escape(cap)} samples" src="'
                      f'{_data_uri(p.read_bytes(), "image/png")}"><figcaption>{escape(cap)}</figcaption></figure>'
                      for cap, p in gallery_items)
    anim = training_gif([p for _, p in _evenly(grids, max_frames)]) if len(grids) > 1 else None
    anim_html = (f'<figure><img class="px" style="width:384px" alt="training animation" '
                 f'src="{_data_uri(anim, "image/gif")}"><figcaption>the same z at each of '
                 f'{min(len(grids), max_frames)} epochs</figcaption></figure>' if anim else
                 '<p class="muted">Fewer than two epoch grids: no animation.</p>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} - gankit report</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<p class="muted">gankit report of {escape(str(run_dir))}, written {time.strftime('%Y-%m-%d %H:%M')}</p>
<h2>At a glance</h2>{glance}
<h2>Training curves</h2><div class="charts">{curves}</div>
<h2>Evaluations</h2>{_evaluations(rows)}
<h2>Samples across training</h2><div class="gallery">{figures or '<p class="muted">No sample grids.</p>'}</div>
<h2>Training animation</h2>{anim_html}
<h2>Config</h2><pre>{escape(json.dumps(config, indent=2, sort_keys=True))}</pre>
</body></html>
"""


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, max_frames: int = 60) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``run_dir/report.html``); returns the path."""
    html = build_report(run_dir, max_frames=max_frames)
    path = Path(out).expanduser() if out is not None else Path(run_dir).expanduser() / "report.html"
    return atomic_write_text(path, html)
