"""``gankit lab``: the GAN lab, a web page that trains a small 2-D GAN live and shows what D and G do."""
from __future__ import annotations

import argparse

from ..errors import GankitError

NAME = "lab"
INSTALL_HINT = "gankit lab needs the web extra: pip install 'gankit[serve]'"

EXAMPLES = """\
examples:
  gankit lab                                 # http://127.0.0.1:8000/
  gankit lab --lang zh --port 8080           # the page in Chinese (the page has a switch too)
  gankit lab --runs my_runs                  # "Save run" writes my_runs/lab-<time>/

The whole state of the lab is in the page's URL: send the link and the other side sees the same run.
The server listens on 127.0.0.1 (this machine only) unless --host says otherwise.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="train a 2-D GAN live in a local web page", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--lang", default="en", choices=["en", "zh"], help="the page's language (default en)")
    p.add_argument("--runs", default="runs", metavar="DIR",
                   help="where 'Save run' writes run folders (default runs/)")
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads for training (default 2)")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401

        from ..serve.server import run_local
        from .app import create_app
    except ImportError:
        raise GankitError(INSTALL_HINT) from None

    if args.threads < 1:
        raise GankitError(f"--threads must be at least 1, got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)
    # the same rules as `gankit serve` (loopback by address, Host checks); an open page holds a never-ending event
    # stream, so Ctrl-C stops waiting for it after a second
    run_local(lambda hosts: create_app(args.runs, lang=args.lang, allowed_hosts=hosts), host=args.host,
              port=args.port, name="lab", what=f"the lab and write runs into {args.runs}",
              query=f"?lang={args.lang}" if args.lang != "en" else "", timeout_graceful_shutdown=1)
    print("gankit lab: stopped")
    return 0
