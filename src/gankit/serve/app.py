"""The studio's ASGI app (Starlette): one page and a small JSON/PNG API over a table of runs.

Endpoints (all GET; parameters in the query string, validated by :mod:`.params`):

- ``/?lang=en|zh``: the page (every language's catalogue inside; ``lang`` the one it starts in);
- ``/api``: this list, with every parameter's type, default and bounds;
- ``/api/runs``: the runs served, ``[{"id", "step", "img_shape", "conditional", "num_classes"}]``; a run
  whose checkpoint cannot be loaded (deleted, damaged) is listed as ``{"id", "error"}`` among the others;
- ``/api/card?run=``: the model card (preset, dataset, steps, every evaluation's scores, config);
- ``/api/charts?run=``: ``[{"label", "svg"}]``, each score of the run's evaluations against step, with its
  real-vs-real floor (see :mod:`.evals`);
- ``/api/grid.png?run=&seed=&n=&scale=&label=&nrow=&zoom=``: a grid of ``n`` samples (n <= 1,024);
- ``/api/interp.png`` and ``/api/interp.gif`` ``?run=&seed_a=&seed_b=&steps=&scale=&label=&mode=&zoom=``:
  a latent interpolation as a strip or as a looping animation.

Every endpoint also takes ``lang=en|zh`` (default: ``gankit serve --lang``), the language of its words: score
labels, chart text and error messages. Bad requests get a 4xx JSON ``{"error", "code", "message"}``: ``error``
the English message, ``code`` a stable name for programs (e.g. ``no_run``), ``message`` the text in the
request's language (the page shows it). Images are cached by (endpoint, run, checkpoint version,
validated options), so equal requests with differently spelled numbers share an entry.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .. import i18n
from ..errors import GankitError
from ..generator import interpolation_latents
from ..images import gif_bytes, to_numpy_uint8
from . import render
from .evals import charts
from .params import MAX_PIXELS, SPECS, ParamError, parse
from .runs import Run, card, evaluations, num_classes

LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
PAGE_CSP = ("default-src 'none'; img-src 'self' blob: data:; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'")


class ResponseCache:
    """A thread-safe LRU of response bodies, bounded by entries and bytes."""

    def __init__(self, max_entries: int = 512, max_bytes: int = 256 * 2**20):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._d: OrderedDict[tuple, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            body = self._d.get(key)
            if body is None:
                return None
            self._d.move_to_end(key)
            return body

    def put(self, key: tuple, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            if key in self._d:
                self._bytes -= len(self._d.pop(key))
            self._d[key] = body
            self._bytes += len(body)
            while len(self._d) > self.max_entries or self._bytes > self.max_bytes:
                _, old = self._d.popitem(last=False)
                self._bytes -= len(old)

    def __len__(self) -> int:
        return len(self._d)


class HttpError(Exception):
    """A 4xx answer: ``key`` names its text in the catalogues (``studio.error.*``), ``values`` fill it in."""

    def __init__(self, status: int, key: str, /, **values):
        self.message = i18n.Message(key, **values)
        super().__init__(str(self.message))
        self.status = status


class Studio:
    """The state behind the app: the run table and the response cache."""

    def __init__(self, runs: dict[str, Run], cache: ResponseCache | None = None):
        if not runs:
            raise GankitError("no runs to serve")
        self.runs = runs
        self.cache = cache if cache is not None else ResponseCache()

    def run(self, run_id: str | None) -> Run:
        if run_id is None:
            return next(iter(self.runs.values()))
        run = self.runs.get(run_id)
        if run is None:
            shown = ", ".join(list(self.runs)[:10]) + (" ..." if len(self.runs) > 10 else "")
            raise HttpError(404, "studio.error.no_run", run=repr(run_id[:80]), shown=shown)
        return run

    def _label(self, gen, label: int | None) -> int:
        k = num_classes(gen)
        if label is not None and k == 0:
            raise HttpError(400, "studio.error.unconditional")
        if label is not None and label >= k:
            raise HttpError(400, "studio.error.label_range", max=k - 1, got=label)
        return k

    def image(self, endpoint: str, p: dict[str, Any]) -> tuple[bytes, str, bool]:
        """(body, etag, cache hit) of an image endpoint's response."""
        run = self.run(p["run"])
        gen = run.generator()
        key = (endpoint, run.id, run.version(), tuple(sorted((k, v) for k, v in p.items() if k != "run")))
        etag = '"' + hashlib.sha256(repr(key).encode()).hexdigest()[:32] + '"'
        body = self.cache.get(key)
        if body is not None:
            return body, etag, True
        k = self._label(gen, p["label"])
        if len(gen.img_shape) != 3:  # a generator of points (toy mixtures), not of images
            if endpoint != "grid":
                raise HttpError(400, "studio.error.points_not_images")
            if p["nrow"] is not None:
                raise HttpError(400, "studio.error.points_nrow")
            size = render.POINTS_SIZE * p["zoom"]
            self._check_pixels(size, size)
            labels = render.labels_for(p["n"], p["seed"], k, p["label"], gen.label_shares)
            x = gen.sample(p["n"], p["seed"], labels=labels, scale=p["scale"])
            body = render.points_png(x.numpy(), p["zoom"])
            self.cache.put(key, body)
            return body, etag, False
        c, h, w = gen.img_shape
        if endpoint == "grid":
            n, nrow = p["n"], p["nrow"]
            if nrow is not None and nrow > n:
                raise HttpError(400, "studio.error.nrow", nrow=nrow, n=n)
            width, height = render.grid_shape(n, gen.img_shape, nrow, p["zoom"])
            self._check_pixels(width, height)
            labels = render.labels_for(n, p["seed"], k, p["label"], gen.label_shares)
            imgs = to_numpy_uint8(gen.sample(n, p["seed"], labels=labels, scale=p["scale"]))
            body = render.grid_png(imgs, nrow, p["zoom"])
        else:
            steps = p["steps"]
            if endpoint == "interp":
                self._check_pixels(*render.grid_shape(steps, gen.img_shape, steps, p["zoom"]))
            else:
                self._check_pixels(w * p["zoom"], h * p["zoom"] * steps)
            z = interpolation_latents(gen.z_dim, p["seed_a"], p["seed_b"], steps, p["scale"], p["mode"])
            label = p["label"] if p["label"] is not None else (0 if k else None)
            labels = render.labels_for(steps, p["seed_a"], k, label, gen.label_shares)
            imgs = render.generate(gen, z, labels)
            if endpoint == "interp":
                body = render.grid_png(imgs, steps, p["zoom"])
            else:
                body = gif_bytes(imgs, p["zoom"], p["frame_ms"])
        self.cache.put(key, body)
        return body, etag, False

    @staticmethod
    def _check_pixels(width: int, height: int) -> None:
        if width * height > MAX_PIXELS:
            raise HttpError(400, "studio.error.too_many_pixels", w=width, h=height, max=f"{MAX_PIXELS:,}")


def _params(request: Request, endpoint: str) -> dict[str, Any]:
    try:
        return parse(request.query_params.multi_items(), SPECS[endpoint])
    except ParamError as e:
        raise HttpError(400, e.message.key, **e.message.values) from None


def _error(status: int, message: i18n.Message, lang: str) -> JSONResponse:
    """``{"error": English text, "code": the key's last part, "message": the text in ``lang``}``."""
    return JSONResponse({"error": str(message), "code": message.key.rsplit(".", 1)[-1],
                         "message": message.text(lang)}, status_code=status, headers=SECURITY_HEADERS)


def render_page(lang: str) -> str:
    """The studio page with every language's ``studio.*`` catalogue embedded, starting in ``lang``."""
    page = resources.files("gankit.serve").joinpath("page.html").read_text(encoding="utf-8")
    return page.replace("/*I18N*/", i18n.page_script("studio.", lang), 1)


def create_app(runs: dict[str, Run], *, lang: str = "en", allowed_hosts: list[str] | None = None,
               cache: ResponseCache | None = None) -> Starlette:
    """The ASGI app serving ``runs`` (see :func:`gankit.serve.runs.discover`). ``lang``: the page's language
    when its URL names none ("en" or "zh"); ``allowed_hosts``: values of the Host header to accept (loopback
    names by default, which blocks DNS-rebinding pages)."""
    i18n.catalogue(lang)  # an unknown language is an error now, not when the page is opened
    studio = Studio(runs, cache)
    pages = {name: render_page(name) for name in i18n.LANGUAGES}

    def words(request: Request) -> str:
        """The request's language: its ``lang`` parameter when that names one, else the server's."""
        want = request.query_params.get("lang")
        return want if want in i18n.LANGUAGES else lang

    def index(request: Request) -> Response:
        want = request.query_params.get("lang", lang)
        if want not in pages:
            raise HttpError(400, "studio.error.page_lang", lang=repr(want[:20]), choices=", ".join(pages))
        _params(request, "runs")
        return HTMLResponse(pages[want], headers={**SECURITY_HEADERS, "Content-Security-Policy": PAGE_CSP})

    def api_index(request: Request) -> Response:
        _params(request, "runs")
        spec = {name: {k: {"type": p.kind, "default": p.default, "min": p.lo, "max": p.hi,
                           **({"choices": list(p.choices)} if p.choices else {}), "help": p.help}
                       for k, p in s.items()} for name, s in SPECS.items()}
        return JSONResponse({"endpoints": {"/api/runs": "runs", "/api/card": "card", "/api/charts": "charts",
                                           "/api/grid.png": "grid",
                                           "/api/interp.png": "interp", "/api/interp.gif": "interp_gif"},
                             "params": spec}, headers=SECURITY_HEADERS)

    def api_runs(request: Request) -> Response:
        _params(request, "runs")
        out: list[dict[str, Any]] = []
        for run in studio.runs.values():
            try:
                gen = run.generator()
            except GankitError as e:  # one broken run must not hide the others: list it with the reason
                out.append({"id": run.id, "error": str(e)})
                continue
            k = num_classes(gen)
            out.append({"id": run.id, "step": gen.step, "img_shape": list(gen.img_shape),
                        "conditional": k > 0, "num_classes": k})
        return JSONResponse(out, headers=SECURITY_HEADERS)

    def api_card(request: Request) -> Response:
        p = _params(request, "card")
        return JSONResponse(card(studio.run(p["run"]), words(request)), headers=SECURITY_HEADERS)

    def api_charts(request: Request) -> Response:
        p = _params(request, "charts")
        rows = evaluations(studio.run(p["run"]), words(request))
        return JSONResponse([{"label": lab, "svg": svg} for lab, svg in charts(rows, words(request))],
                            headers=SECURITY_HEADERS)

    def image_endpoint(endpoint: str, media_type: str):
        def handler(request: Request) -> Response:
            p = _params(request, endpoint)
            p.pop("lang")  # words only: the same image (and cache entry) in every language
            body, etag, hit = studio.image(endpoint, p)
            headers = {**SECURITY_HEADERS, "ETag": etag, "Cache-Control": "no-cache",
                       "X-Gankit-Cache": "hit" if hit else "miss"}
            if request.headers.get("if-none-match") == etag:
                return Response(status_code=304, headers=headers)
            return Response(body, media_type=media_type, headers=headers)
        return handler

    async def http_error(request: Request, exc: Exception) -> Response:
        said = words(request)
        if isinstance(exc, HttpError):
            return _error(exc.status, exc.message, said)
        if isinstance(exc, HTTPException):
            if exc.status_code == 404:
                msg = i18n.Message("studio.error.no_such_page", path=repr(request.url.path[:80]))
            elif exc.status_code == 405:
                msg = i18n.Message("studio.error.method", method=request.method)
            else:
                msg = i18n.Message("studio.error.http", status=exc.status_code, detail=exc.detail)
            return _error(exc.status_code, msg, said)
        if isinstance(exc, GankitError):  # a run that cannot be loaded: the server's problem, not the request's
            return _error(503, i18n.Message("studio.error.run_unavailable", reason=str(exc)), said)
        return _error(500, i18n.Message("studio.error.internal", kind=type(exc).__name__), said)

    routes = [
        Route("/", index), Route("/api", api_index), Route("/api/runs", api_runs), Route("/api/card", api_card),
        Route("/api/charts", api_charts),
        Route("/api/grid.png", image_endpoint("grid", "image/png")),
        Route("/api/interp.png", image_endpoint("interp", "image/png")),
        Route("/api/interp.gif", image_endpoint("interp_gif", "image/gif")),
    ]
    hosts = allowed_hosts if allowed_hosts is not None else LOOPBACK_HOSTS
    app = Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
                    exception_handlers={HttpError: http_error, HTTPException: http_error,
                                        GankitError: http_error, Exception: http_error})
    app.state.studio = studio
    return app
