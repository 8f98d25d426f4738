"""The GAN lab's ASGI app (Starlette): one page, a stream of frames and a few controls over one live lab.

Endpoints:

- ``GET /``: the page (``?lang=en|zh`` and the lab state in the query string; the page reads them itself);
- ``GET /api/state?state=QUERY``: the state parsed and written back canonically, ``{"query", "fields"}``;
  changes nothing;
- ``GET /api/stream?state=QUERY&frames=N``: server-sent events, one JSON frame per event (see
  :meth:`gankit.lab.engine.Lab.frame`, plus ``state``, ``playing`` and ``seq``); a state that differs from
  the lab's resets the lab with it; ``frames`` ends the stream after N events (curl, tests);
- ``POST /api/control`` ``{"action": "play"|"pause"|"step"|"step_d"|"step_g"|"reset", "state": QUERY}``:
  a changed state resets the lab with it first; answers ``{"state", "playing", "step"}``;
- ``POST /api/save`` ``{}`` or ``{"name": "my-run"}``: the current run written as an ordinary run folder
  under the server's runs folder (``lab-<time>`` by default; a name is one plain folder name, never a path);
  answers ``{"path"}``.

One lab per server process. Training runs in one worker thread; every use of the lab holds one lock, so a
control never lands in the middle of a training step. Bad input gets a 400 ``{"error": one line}``.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import shutil
import tempfile
import threading
import time
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import GankitError
from ..serve.app import LOOPBACK_HOSTS, PAGE_CSP, SECURITY_HEADERS
from .. import i18n

ACTIONS = ("play", "pause", "step", "step_d", "step_g", "reset")
MAX_BODY = 256 * 1024  # a drawn data set of a few thousand points fits; anything larger is not a click-drawing
MAX_QUERY = 128 * 1024
MIN_FRAME_S = 1 / 30  # the worker never sends more than 30 frames/s: a browser cannot draw them faster anyway
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _engine():
    from . import engine  # imported on first use: it pulls in torch and the trainer

    return engine


class LabServer:
    """The state behind the app: one lab, its state, whether it plays, and the latest frame as JSON bytes.

    ``engine``: a module-like object with ``LabState`` and ``Lab`` (:mod:`gankit.lab.engine` by default;
    tests pass a small fake)."""

    def __init__(self, runs_dir: Path, engine: Any = None, state: Any = None):
        self.engine = engine if engine is not None else _engine()
        self.runs_dir = Path(runs_dir)
        self.lock = threading.RLock()
        self._waiting = 0  # requests waiting for the lock: the worker lets them in between frames
        self._count = threading.Lock()
        self.state = state if state is not None else self.engine.LabState()
        self.lab: Any = None  # built on first use, so the app starts at once
        self.playing = False
        self.seq = 0
        self.latest: bytes | None = None
        self.error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self.frame_times: list[float] = []  # monotonic times of the last frames the worker published
        self.workdir: Path | None = None

    # -- state ---------------------------------------------------------------------------------------------
    def parse(self, query: str | None) -> Any:
        if query is None:
            return self.state
        if not isinstance(query, str):
            raise HttpError(400, "'state' must be a query string such as 'data=ring8&seed=0'")
        if len(query) > MAX_QUERY:
            raise HttpError(400, f"'state' is longer than {MAX_QUERY:,} characters; draw fewer points")
        try:
            return self.engine.LabState.from_query(query.lstrip("?"))
        except GankitError as e:
            raise HttpError(400, str(e).splitlines()[0] if str(e) else "bad state") from None

    def describe(self, state: Any) -> dict[str, Any]:
        return {"query": state.to_query(), "fields": _jsonable(dataclasses.asdict(state))}

    def _ensure(self, state: Any) -> None:
        """The lab, built or reset with ``state`` when it differs from the lab's (lock held)."""
        if self.lab is None or state != self.state:
            if self.lab is not None and hasattr(self.lab, "close"):
                self.lab.close()  # gives its run folder (and the folder's lock) back
            if self.workdir is None:  # the lab's scratch run lives here; "Save run" copies it under runs_dir
                self.workdir = Path(tempfile.mkdtemp(prefix="gankit-lab-"))
            self.lab = None
            self.lab = self.engine.Lab(state, self.workdir)
            self.state = state
            self.error = None
            self._publish()

    def _publish(self) -> None:
        """The lab's frame as the latest one (lock held)."""
        frame = dict(self.lab.frame())
        frame.update(state=self.state.to_query(), playing=self.playing, seq=self.seq + 1)
        if self.error:
            frame["error"] = self.error
        self.latest = json.dumps(frame, separators=(",", ":"), allow_nan=False).encode()
        self.seq += 1
        now = time.monotonic()
        self.frame_times = [t for t in self.frame_times[-63:] if now - t < 5.0] + [now]

    def fps(self) -> float:
        """Frames per second over the worker's last few seconds (0 when paused)."""
        ts = self.frame_times
        return (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 2 and ts[-1] > ts[0] else 0.0

    # -- controls ------------------------------------------------------------------------------------------
    def open(self, query: str | None) -> None:
        state = self.parse(query)
        with self._turn():
            self._ensure(state)

    def control(self, action: str, query: str | None) -> dict[str, Any]:
        if action not in ACTIONS:
            raise HttpError(400, f"'action' must be one of {', '.join(ACTIONS)}, got {str(action)[:40]!r}")
        state = self.parse(query)
        with self._turn():
            self._ensure(state)
            if action == "play":
                self.playing = True
                self._start_worker()
            elif action == "pause":
                self.playing = False
            else:
                self.playing = False
                if action == "step":
                    self.lab.play(1)
                elif action == "step_d":
                    self.lab.d_step()
                elif action == "step_g":
                    self.lab.g_step()
                else:
                    self.lab.reset()
                    self.error = None
            self._publish()
            self._wake.set()
            return {"state": self.state.to_query(), "playing": self.playing,
                    "step": json.loads(self.latest)["step"]}

    def save(self, name: str | None) -> Path:
        if name is not None and (not isinstance(name, str) or not NAME.fullmatch(name)):
            raise HttpError(400, "'name' must be a plain folder name (letters, digits, '-', '_', '.'; at most "
                                 "64), not a path; leave it out for lab-<time>")
        with self._turn():
            self._ensure(self.state)
            if name is None:
                base = "lab-" + datetime.now().strftime("%Y%m%d-%H%M%S")
                out, k = self.runs_dir / base, 2
                while out.exists():
                    out, k = self.runs_dir / f"{base}-{k}", k + 1
            else:
                out = self.runs_dir / name
                if out.exists():
                    raise HttpError(400, f"{out} already exists; choose another name")
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            return Path(self.lab.save(out))

    @contextlib.contextmanager
    def _turn(self):
        """The lock, for a request: counted as waiting, so the playing worker steps aside between frames."""
        with self._count:
            self._waiting += 1
        try:
            with self.lock:
                yield
        finally:
            with self._count:
                self._waiting -= 1

    # -- the worker ----------------------------------------------------------------------------------------
    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="gankit-lab", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while not self._stop.is_set():
            if not self.playing:
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            t0 = time.monotonic()
            with self.lock:
                if self.playing:
                    try:
                        self.lab.play(self.state.speed)
                    except Exception as e:  # shown on the page; the lab pauses rather than the server dying
                        self.playing = False
                        self.error = f"training stopped: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                    self._publish()
            rest = MIN_FRAME_S - (time.monotonic() - t0)
            if rest > 0:
                time.sleep(rest)
            # a lock is not fair: without this, a worker that takes it again at once starves a pause or a step
            deadline = time.monotonic() + 1.0
            while self._waiting and time.monotonic() < deadline:
                time.sleep(0.001)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._turn():
            if self.lab is not None and hasattr(self.lab, "close"):
                self.lab.close()
            self.lab = None
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir = None


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object of a POST. Only same-origin JSON is taken: another site's page can send a "simple"
    cross-origin POST (text/plain, no preflight) to 127.0.0.1 with a valid Host, so the Host check alone does
    not stop it from driving the lab or writing run folders."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
        raise HttpError(403, f"cross-origin request from {origin[:80]!r} refused; use the lab's own page")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise HttpError(400, "send the request body as JSON with 'Content-Type: application/json'")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HttpError(400, f"the request body is larger than {MAX_BODY:,} bytes")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, "the request body must be a JSON object, e.g. {\"action\": \"play\"}") from None
    if not isinstance(data, dict):
        raise HttpError(400, "the request body must be a JSON object, e.g. {\"action\": \"play\"}")
    return data


def _lifespan(lab: LabServer):
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        lab.close()
    return lifespan


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=SECURITY_HEADERS)


def render_page(lang: str) -> str:
    """The page with the catalogues of every language embedded and ``lang`` as its starting language."""
    page = resources.files("gankit.lab").joinpath("page.html").read_text(encoding="utf-8")
    return page.replace("/*I18N*/", i18n.page_script("lab.", lang), 1)


def create_app(runs_dir: Path | str = "runs", *, lang: str = "en", allowed_hosts: list[str] | None = None,
               engine: Any = None, state: Any = None) -> Starlette:
    """The ASGI app of one lab saving runs under ``runs_dir``; ``lang``: the page's language when its URL
    names none; ``allowed_hosts``: values of the Host header to accept (loopback names by default, which blocks
    DNS-rebinding pages); ``engine``: see :class:`LabServer`."""
    i18n.catalogue(lang)  # an unknown language is an error now, not when the page is opened
    lab = LabServer(Path(runs_dir), engine, state)
    pages = {name: render_page(name) for name in i18n.LANGUAGES}

    def index(request: Request) -> Response:
        want = request.query_params.get("lang") or lang
        return HTMLResponse(pages.get(want, pages[lang]),
                            headers={**SECURITY_HEADERS, "Content-Security-Policy": PAGE_CSP})

    def api_state(request: Request) -> Response:
        return JSONResponse(lab.describe(lab.parse(request.query_params.get("state", ""))),
                            headers=SECURITY_HEADERS)

    async def api_stream(request: Request) -> Response:
        frames = request.query_params.get("frames")
        try:
            limit = None if frames is None else int(frames)
        except ValueError:
            limit = -1
        if limit is not None and not 1 <= limit <= 1_000_000:
            raise HttpError(400, f"'frames' must be a whole number between 1 and 1000000, got {frames[:20]!r}")
        query = request.query_params.get("state")
        await asyncio.to_thread(lab.open, query)

        async def events():
            sent, last, quiet = 0, -1, time.monotonic()
            while not lab._stop.is_set():
                seq, body = lab.seq, lab.latest
                if body is not None and seq != last:
                    last, quiet = seq, time.monotonic()
                    yield b"data: " + body + b"\n\n"
                    sent += 1
                    if limit is not None and sent >= limit:
                        return
                elif time.monotonic() - quiet > 15:  # a comment now and then, so a closed tab is noticed
                    quiet = time.monotonic()
                    yield b": idle\n\n"
                await asyncio.sleep(0.01)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={**SECURITY_HEADERS, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def api_control(request: Request) -> Response:
        data = await _body(request)
        if "action" not in data:
            raise HttpError(400, "missing 'action'; one of " + ", ".join(ACTIONS))
        out = await asyncio.to_thread(lab.control, data["action"], data.get("state"))
        return JSONResponse(out, headers=SECURITY_HEADERS)

    async def api_save(request: Request) -> Response:
        data = await _body(request)
        path = await asyncio.to_thread(lab.save, data.get("name"))
        return JSONResponse({"path": str(path)}, headers=SECURITY_HEADERS)

    async def http_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HttpError):
            return _error(exc.status, str(exc))
        if isinstance(exc, HTTPException):
            msg = {404: f"no such page {request.url.path[:80]!r}; the lab has /, /api/state, /api/stream, "
                        f"/api/control and /api/save",
                   405: f"method {request.method} not allowed here"}.get(exc.status_code, exc.detail)
            return _error(exc.status_code, msg)
        if isinstance(exc, GankitError):
            return _error(400, str(exc).splitlines()[0])
        return _error(500, f"internal error ({type(exc).__name__}); please report it")

    routes = [Route("/", index), Route("/api/state", api_state), Route("/api/stream", api_stream),
              Route("/api/control", api_control, methods=["POST"]), Route("/api/save", api_save, methods=["POST"])]
    hosts = allowed_hosts if allowed_hosts is not None else LOOPBACK_HOSTS
    app = Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
                    exception_handlers={HttpError: http_error, HTTPException: http_error,
                                        GankitError: http_error, Exception: http_error},
                    lifespan=_lifespan(lab))
    app.state.lab = lab
    return app
