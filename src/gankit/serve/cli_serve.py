"""``gankit serve``: the studio web page for one run or a folder of runs."""
from __future__ import annotations

import argparse
import sys

from ..errors import GankitError
from ..i18n import list_languages

NAME = "serve"
INSTALL_HINT = "gankit serve needs the web extra: pip install 'gankit[serve]'"

EXAMPLES = """\
examples:
  gankit serve runs/fm                       # one run: http://127.0.0.1:8000/
  gankit serve runs                          # every run folder under runs/, chosen from a list
  gankit serve runs/fm/checkpoints/epoch_0010.pt --port 8080 --lang zh   # the page in Chinese
  curl 'http://127.0.0.1:8000/api/grid.png?seed=3&n=16' -o grid.png

The page's language switch (or ?lang=en|zh in its URL) changes the language --lang starts it in.
The API is listed at /api. The server listens on 127.0.0.1 (this machine only) unless --host says otherwise.
Runs whose checkpoint cannot be loaded are listed as broken; links out of the served folder are not followed.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="explore trained generators in a local web page", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT",
                   help="a run folder, a checkpoint, or a folder holding run folders")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--lang", default="en", choices=list_languages(),
                   help="the page's language when its URL names none (default en; the page can switch)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per request (default 1: concurrent requests already run in parallel)")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401

        from .app import create_app
        from .server import run_local
    except ImportError:
        raise GankitError(INSTALL_HINT) from None
    from .runs import discover

    if not 0 <= args.port <= 65535:
        raise GankitError(f"--port must be between 0 and 65535, got {args.port}")
    if args.threads < 1:
        raise GankitError(f"--threads must be at least 1, got {args.threads}")
    runs = discover(args.run, log=lambda msg: print(f"gankit serve: {msg}", file=sys.stderr))
    import torch

    # One intra-op thread per request: requests run side by side in the server's thread pool, and several
    # OpenMP teams on few cores spin against each other (measured: 3.5 ms vs 83 ms per 64-sample grid).
    torch.set_num_threads(args.threads)
    banner = f"gankit studio: {len(runs)} run(s): {', '.join(list(runs)[:5])}{' ...' if len(runs) > 5 else ''}"
    run_local(lambda hosts: create_app(runs, lang=args.lang, allowed_hosts=hosts), host=args.host, port=args.port,
              name="serve", what="the studio", banner=banner)
    print("gankit studio: stopped")
    return 0
