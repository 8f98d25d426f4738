"""A load test on loopback: 300 requests from 8 threads, each answer checked pixel for pixel against
gankit's own sampling; the latencies are printed (pytest -s) and bounded loosely."""
from __future__ import annotations

import io
import random
import statistics
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

import gankit
from gankit.images import make_grid, to_numpy_uint8
from gankit.serve import render

REQUESTS, CONCURRENCY = 300, 8


def test_concurrent_requests_are_all_answered_correctly(server, runs_root):
    gens = {rid: gankit.load(runs_root / rid) for rid in ("a", "grp/b")}
    rng = random.Random(0)
    # 40 distinct (run, seed, n) keys, each asked for several times: both cache misses and hits, concurrently
    keys = [(rng.choice(list(gens)), rng.randrange(1000), rng.choice((1, 16, 64, 256))) for _ in range(40)]
    jobs = [rng.choice(keys) for _ in range(REQUESTS)]
    expect = {k: make_grid(to_numpy_uint8(gens[k[0]].sample(k[2], k[1])), pad=render.PAD) for k in set(jobs)}

    def one(key):
        run, seed, n = key
        t0 = time.perf_counter()
        status, headers, body = server.get("/api/grid.png?" + urllib.parse.urlencode({"run": run, "seed": seed,
                                                                                      "n": n}))
        dt = time.perf_counter() - t0
        ok = status == 200 and np.array_equal(np.asarray(Image.open(io.BytesIO(body))), expect[key])
        return ok, dt, headers.get("x-gankit-cache")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(one, jobs))
    wall = time.perf_counter() - t0
    assert all(ok for ok, _, _ in results)
    lat = sorted(dt * 1000 for _, dt, _ in results)
    hits = sum(c == "hit" for _, _, c in results)
    assert hits >= REQUESTS - 2 * len(set(jobs))  # a key may be computed twice when two requests race for it
    q = statistics.quantiles(lat, n=100)
    print(f"\nload: {REQUESTS} requests, {CONCURRENCY} concurrent, {hits} cache hits, {REQUESTS / wall:.0f} req/s; "
          f"latency ms p50 {q[49]:.1f} p90 {q[89]:.1f} p99 {q[98]:.1f} max {lat[-1]:.1f}")
    assert q[49] < 2000  # loose: two shared CPU cores
