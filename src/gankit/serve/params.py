"""Strict request parameters: each endpoint declares its names, types and bounds; anything else is refused.

:func:`parse` turns ``[(name, text), ...]`` (a query string's items) into typed values or raises
:class:`ParamError` with a message fit for a 400 response (a catalogue key and its values, see
:class:`gankit.i18n.Message`, so the response can say it in the request's language). Unknown names, repeated names,
non-numbers, out-of-range numbers and overlong values are all errors, never silently fixed.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

from ..i18n import LANGUAGES, Message

MAX_SAMPLES = 1024  # samples per request
MAX_SEED = 2**31 - 1
MAX_PIXELS = 16_000_000  # of one returned image: bounds memory and time per request
MAX_VALUE_CHARS = 200

_INT = re.compile(r"[+-]?\d{1,19}")
_FLOAT = re.compile(r"[+-]?(\d{1,12}(\.\d{0,12})?|\.\d{1,12})([eE][+-]?\d{1,3})?")


class ParamError(ValueError):
    """A request parameter is missing, unknown, repeated, malformed or out of bounds (HTTP 400). ``str()`` is
    the English message; ``message`` the :class:`~gankit.i18n.Message` for any language."""

    def __init__(self, key: str, /, **values):
        self.message = Message(key, **values)
        super().__init__(str(self.message))


@dataclass(frozen=True)
class Param:
    kind: str  # int | float | choice | str
    default: Any = None
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def convert(self, name: str, text: str) -> Any:
        if self.kind == "int":
            if not _INT.fullmatch(text):
                raise ParamError("studio.error.param_integer", name=repr(name), got=repr(text[:40]))
            value: Any = int(text)
        elif self.kind == "float":
            if not _FLOAT.fullmatch(text):
                raise ParamError("studio.error.param_number", name=repr(name), got=repr(text[:40]))
            value = float(text)
            if not math.isfinite(value):
                raise ParamError("studio.error.param_finite", name=repr(name), got=repr(text[:40]))
        elif self.kind == "choice":
            if text not in self.choices:
                raise ParamError("studio.error.param_choice", name=repr(name), choices=", ".join(self.choices),
                                 got=repr(text[:40]))
            return text
        else:
            return text
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise ParamError("studio.error.param_range", name=repr(name), lo=_fmt(self.lo), hi=_fmt(self.hi),
                             got=text[:40])
        return value


def _fmt(v: float | None) -> str:
    return "-inf" if v is None else (str(int(v)) if float(v).is_integer() else str(v))


def parse(items: Iterable[tuple[str, str]], spec: dict[str, Param]) -> dict[str, Any]:
    """Typed values of ``items`` by ``spec``; missing optional names take their default."""
    out: dict[str, Any] = {}
    for name, text in items:
        if name not in spec:
            raise ParamError("studio.error.param_unknown", name=repr(name[:40]), known=", ".join(sorted(spec)))
        if name in out:
            raise ParamError("studio.error.param_repeated", name=repr(name))
        if len(text) > MAX_VALUE_CHARS:
            raise ParamError("studio.error.param_too_long", name=repr(name), max=MAX_VALUE_CHARS)
        out[name] = spec[name].convert(name, text)
    for name, p in spec.items():
        out.setdefault(name, p.default)
    return out


RUN = Param("str", help="run id from /api/runs (default: the first run)")
SEED = Param("int", 0, 0, MAX_SEED, help="latent seed")
SCALE = Param("float", 1.0, 0.0, 3.0, help="latent scale (truncation towards the mean; 1 = untruncated)")
LABEL = Param("int", None, 0, 100_000,
              help="class of a conditional model (default: grid, random per sample; interpolation, 0)")
ZOOM = Param("int", 1, 1, 16, help="nearest-neighbour upscaling factor")
# Every endpoint takes it; it changes only the words of the answer (never an image), so images ignore it.
LANG = Param("choice", None, choices=LANGUAGES,
             help="language of error messages, score labels and charts (default: gankit serve --lang)")

SPECS: dict[str, dict[str, Param]] = {
    "runs": {"lang": LANG},
    "card": {"run": RUN, "lang": LANG},
    "charts": {"run": RUN, "lang": LANG},
    "grid": {"run": RUN, "lang": LANG, "seed": SEED, "n": Param("int", 64, 1, MAX_SAMPLES, help="number of samples"),
             "scale": SCALE, "label": LABEL, "zoom": ZOOM,
             "nrow": Param("int", None, 1, MAX_SAMPLES,
                           help="images per row (default: square; not for a run of points)")},
    "interp": {"run": RUN, "lang": LANG, "seed_a": SEED, "seed_b": Param("int", 1, 0, MAX_SEED, help="end seed"),
               "steps": Param("int", 10, 2, 64, help="images along the path, ends included"),
               "scale": SCALE, "label": LABEL, "zoom": ZOOM,
               "mode": Param("choice", "slerp", choices=("slerp", "lerp"), help="spherical or linear path")},
}
SPECS["interp_gif"] = {**SPECS["interp"], "frame_ms": Param("int", 100, 20, 2000, help="ms per frame")}
