"""``gankit serve``: the studio web page for one run or a folder of runs."""
from __future__ import annotations

import argparse
import socket
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
        import uvicorn

        from .app import LOOPBACK_HOSTS, create_app
        from .server import is_loopback, server_config
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
    # Loopback by address, not by spelling: 127.0.0.2 is this machine, 0.0.0.0 is every interface. On loopback
    # only this machine's names are accepted in the Host header, which blocks DNS-rebinding pages.
    loopback = is_loopback(args.host)
    if not loopback:
        print(f"gankit serve: warning: listening on {args.host}: anyone who can reach this machine can use "
              f"the studio", file=sys.stderr)
    bare = args.host.strip("[]")
    hosts = LOOPBACK_HOSTS + [bare.lower(), f"[{bare.lower()}]" if ":" in bare else bare.lower()]
    app = create_app(runs, lang=args.lang, allowed_hosts=sorted(set(hosts)) if loopback else ["*"])
    sock = _bind(bare, args.port)
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(server_config(app))
    print(f"gankit studio: {len(runs)} run(s): {', '.join(list(runs)[:5])}{' ...' if len(runs) > 5 else ''}")
    print(f"open http://{'[' + host + ']' if ':' in host else host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down cleanly, then re-raises Ctrl-C: stopping is the normal end
        pass
    print("gankit studio: stopped")
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the server starts so that a busy port is a one-line error and
    port 0 can print the port it got."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        raise GankitError(f"cannot listen on {host}:{port}: {e.strerror or e}; try another --port") from None
    sock.set_inheritable(True)
    return sock
