"""The README's pictures of the GAN lab: docs/img/lab-en.png and docs/img/lab-zh.png.

Starts `gankit lab`'s app on a free loopback port, opens it in Debian's chromium (Playwright), trains the given
state until --steps, pauses, and takes the same run's page in English and in Chinese.

    python scripts/lab_screenshots.py                      # ring8, 600 steps
    python scripts/lab_screenshots.py --state 'data=grid25&pack=2' --steps 2000 --out /tmp

The Chinese picture needs a CJK font on the machine (Debian: apt-get install fonts-wqy-microhei).
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("GANKIT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state", default="data=ring8&seed=0&speed=20", help="the lab state (URL query)")
    ap.add_argument("--steps", type=int, default=600, help="train until this step before the pictures")
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"), help="folder of lab-en.png and lab-zh.png")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args(argv)

    import torch
    import uvicorn
    from playwright.sync_api import sync_playwright

    from gankit.lab.app import create_app
    from gankit.serve.server import server_config

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with tempfile.TemporaryDirectory() as runs:
        server = uvicorn.Server(server_config(create_app(runs), log_level="error", timeout_graceful_shutdown=1))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        t0 = time.monotonic()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000}, device_scale_factor=1)
            page.goto(f"{url}/?{args.state}&lang=en")
            page.wait_for_function("() => window.lab && window.lab.frames > 0", timeout=120_000)
            page.click("#play")
            page.wait_for_function("(n) => window.lab.frame.step >= n", arg=args.steps, timeout=3_600_000,
                                   polling=500)
            fps = page.inner_text("#fps")
            page.click("#pause")
            page.wait_for_function("() => !window.lab.playing")
            for lang in ("en", "zh"):
                page.select_option("#lang", lang)
                page.wait_for_timeout(300)
                page.screenshot(path=str(out / f"lab-{lang}.png"), full_page=True)
                print(f"wrote {out / f'lab-{lang}.png'} (step {page.evaluate('window.lab.frame.step')})")
            browser.close()
        print(f"{time.monotonic() - t0:.0f} s; last frame rate shown: {fps or 'n/a'}")
        server.should_exit = True
        thread.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
