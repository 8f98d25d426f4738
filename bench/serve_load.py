"""Load benchmark of the studio on loopback: latency and throughput of /api/grid.png.

Starts ``gankit serve`` as a subprocess on a free 127.0.0.1 port, then for each concurrency level sends
``--requests`` requests of ``--n`` samples: first all-distinct seeds (every request renders: cache misses),
then the same seeds again (cache hits). Every answer is checked (HTTP 200, a PNG of the expected size).
Prints a Markdown table. Bounded in count and time; talks to 127.0.0.1 only.

    python bench/serve_load.py                    # trains a tiny digits run first (a few seconds)
    python bench/serve_load.py runs/fm --requests 400 --concurrency 1,8,32 --n 64
"""
from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image


def start_server(run: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "serve", str(run), "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("open http://127.0.0.1:"):
            return proc, line.split()[1].rstrip("/")
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("the server did not start")


def phase(base: str, seeds: list[int], n: int, concurrency: int, size: tuple[int, int]) -> dict:
    def one(seed: int) -> float:
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{base}/api/grid.png?seed={seed}&n={n}", timeout=120) as r:
            body = r.read()
            assert r.status == 200
        dt = time.perf_counter() - t0
        im = Image.open(io.BytesIO(body))
        assert im.format == "PNG" and im.size == size, (im.format, im.size, size)
        return dt * 1000

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        lat = sorted(pool.map(one, seeds))
    wall = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
    return {"p50": q[49], "p90": q[89], "p99": q[98], "max": lat[-1], "rps": len(seeds) / wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", help="run folder to serve (default: train a tiny one)")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--n", type=int, default=64, help="samples per request")
    a = ap.parse_args()
    if not 1 <= a.requests <= 5000:
        raise SystemExit("--requests must be between 1 and 5000")
    levels = [int(c) for c in a.concurrency.split(",")]
    tmp = None
    run = Path(a.run) if a.run else None
    if run is None:
        import gankit

        tmp = tempfile.TemporaryDirectory()
        run = Path(tmp.name) / "tiny"
        cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.steps": 40, "train.progress": False})
        gankit.train(cfg, out=run, log=lambda *_: None)
    import gankit
    from gankit.serve.render import grid_shape

    g = gankit.load(run)
    size = grid_shape(a.n, g.img_shape, None, 1)
    proc, base = start_server(run)
    rows = []
    try:
        for i, c in enumerate(levels):
            seeds = list(range(i * a.requests, (i + 1) * a.requests))  # fresh seeds per level: real misses
            rows.append((c, "miss", phase(base, seeds, a.n, c, size)))
            rows.append((c, "hit", phase(base, seeds, a.n, c, size)))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        if tmp is not None:
            tmp.cleanup()
    import platform

    import torch

    print(f"# studio load: {a.requests} requests per row, {a.n} samples of {tuple(g.img_shape)} per request, "
          f"model {g.config.model.arch}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}")
    print("| concurrency | cache | p50 ms | p90 ms | p99 ms | max ms | req/s |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for c, kind, r in rows:
        print(f"| {c} | {kind} | {r['p50']:.1f} | {r['p90']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {r['rps']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
