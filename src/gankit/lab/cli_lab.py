"""``gankit lab``: the GAN lab, a web page that trains a small 2-D GAN live and shows what D and G do."""
from __future__ import annotations

import argparse
import sys

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
        import uvicorn

        from ..serve.app import LOOPBACK_HOSTS
        from ..serve.cli_serve import _bind
        from ..serve.server import is_loopback, server_config
        from .app import create_app
    except ImportError:
        raise GankitError(INSTALL_HINT) from None

    if not 0 <= args.port <= 65535:
        raise GankitError(f"--port must be between 0 and 65535, got {args.port}")
    if args.threads < 1:
        raise GankitError(f"--threads must be at least 1, got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)
    # The same rules as `gankit serve`: loopback by address, and on loopback only this machine's names in the
    # Host header (a DNS-rebinding page cannot drive the lab).
    loopback = is_loopback(args.host)
    if not loopback:
        print(f"gankit lab: warning: listening on {args.host}: anyone who can reach this machine can use "
              f"the lab and write runs into {args.runs}", file=sys.stderr)
    bare = args.host.strip("[]")
    hosts = LOOPBACK_HOSTS + [bare.lower(), f"[{bare.lower()}]" if ":" in bare else bare.lower()]
    app = create_app(args.runs, lang=args.lang, allowed_hosts=sorted(set(hosts)) if loopback else ["*"])
    sock = _bind(bare, args.port)
    host, port = sock.getsockname()[:2]
    # An open page holds a never-ending event stream: stop waiting for it after a second on Ctrl-C.
    server = uvicorn.Server(server_config(app, timeout_graceful_shutdown=1))
    print(f"open http://{'[' + host + ']' if ':' in host else host}:{port}/"
          f"{'?lang=' + args.lang if args.lang != 'en' else ''} (Ctrl-C stops)", flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    print("gankit lab: stopped")
    return 0
