"""The HTTP server under the studio: uvicorn (h11) with a deadline on reading each request's headers.

uvicorn closes a connection that stays idle *after* a response (``timeout_keep_alive``), but not one that
never sends a byte, nor one that sends half a request line and stalls: each holds a socket and a file
descriptor for as long as its client likes, and a few hundred of them exhaust the server. Here every
request's headers must arrive within ``header_timeout`` seconds of the connection opening (or of the previous
response), or the connection is closed.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from typing import Any, Callable

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0  # generous for a browser on a slow link, short enough that idle sockets do not pile up


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers do not arrive in time."""

    header_timeout: float = HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in (or the request failed)
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request on this connection gets the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._header_timer = self.loop.call_later(self.header_timeout, self._deadline)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _deadline(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def server_config(app: Any, header_timeout: float = HEADER_TIMEOUT_S, **kwargs: Any) -> uvicorn.Config:
    """The uvicorn config ``gankit serve`` runs ``app`` with (keyword arguments go to ``uvicorn.Config``)."""
    protocol = type("HeaderTimeoutH11", (HeaderTimeoutH11,), {"header_timeout": float(header_timeout)})
    return uvicorn.Config(app, http=protocol, **{"log_level": "warning", "access_log": False, **kwargs})


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` resolves to is a loopback address (127.0.0.0/8, ::1): decided by
    address, so ``127.0.0.2`` and ``localhost`` are loopback and ``0.0.0.0`` or a LAN name are not."""
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addrs = {info[4][0].split("%")[0] for info in infos}  # an IPv6 scope (fe80::1%eth0) is not part of it
    try:
        return bool(addrs) and all(ipaddress.ip_address(a).is_loopback for a in addrs)
    except ValueError:
        return False


def run_local(make_app: Callable[[list[str]], Any], *, host: str, port: int, name: str, what: str,
              query: str = "", banner: str | None = None, **config: Any) -> int:
    """Serve ``make_app(allowed_hosts)`` on ``host:port`` until Ctrl-C, as ``gankit serve`` and ``gankit lab`` do.

    Loopback by address, not by spelling: 127.0.0.2 is this machine, 0.0.0.0 is every interface. On loopback only
    this machine's names are accepted in the Host header, which blocks DNS-rebinding pages; elsewhere a warning
    says who can use ``what``. The socket is bound first, so a busy port is a one-line error and port 0 prints
    the port it got. ``query`` is appended to the printed address; ``config`` goes to :func:`server_config`."""
    from ..errors import GankitError
    from .app import LOOPBACK_HOSTS

    if not 0 <= port <= 65535:
        raise GankitError(f"--port must be between 0 and 65535, got {port}")
    loopback = is_loopback(host)
    if not loopback:
        print(f"gankit {name}: warning: listening on {host}: anyone who can reach this machine can use {what}",
              file=sys.stderr)
    bare = host.strip("[]")
    hosts = LOOPBACK_HOSTS + [bare.lower(), f"[{bare.lower()}]" if ":" in bare else bare.lower()]
    app = make_app(sorted(set(hosts)) if loopback else ["*"])
    sock = bind(bare, port)
    got_host, got_port = sock.getsockname()[:2]
    server = uvicorn.Server(server_config(app, **config))
    if banner:
        print(banner)
    print(f"open http://{'[' + got_host + ']' if ':' in got_host else got_host}:{got_port}/{query} (Ctrl-C stops)",
          flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down cleanly, then re-raises Ctrl-C: stopping is the normal end
        pass
    return 0


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the server starts so that a busy port is a one-line error and
    port 0 can print the port it got."""
    from ..errors import GankitError

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
