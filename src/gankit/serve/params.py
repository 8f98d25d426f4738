"""Strict request parameters: each endpoint declares its names, types and bounds; anything else is refused.

:func:`parse` turns ``[(name, text), ...]`` (a query string's items) into typed values or raises
:class:`ParamError` with a message fit for a 400 response. Unknown names, repeated names, non-numbers,
out-of-range numbers and overlong values are all errors, never silently fixed.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

MAX_SAMPLES = 1024  # samples per request
MAX_SEED = 2**31 - 1
MAX_PIXELS = 16_000_000  # of one returned image: bounds memory and time per request
MAX_VALUE_CHARS = 200

_INT = re.compile(r"[+-]?\d{1,19}")
_FLOAT = re.compile(r"[+-]?(\d{1,12}(\.\d{0,12})?|\.\d{1,12})([eE][+-]?\d{1,3})?")


class ParamError(ValueError):
    """A request parameter is missing, unknown, repeated, malformed or out of bounds (HTTP 400)."""


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
                raise ParamError(f"parameter {name!r} must be an integer, got {text[:40]!r}")
            value: Any = int(text)
        elif self.kind == "float":
            if not _FLOAT.fullmatch(text):
                raise ParamError(f"parameter {name!r} must be a number, got {text[:40]!r}")
            value = float(text)
            if not math.isfinite(value):
                raise ParamError(f"parameter {name!r} must be finite, got {text[:40]!r}")
        elif self.kind == "choice":
            if text not in self.choices:
                raise ParamError(f"parameter {name!r} must be one of {', '.join(self.choices)}; got {text[:40]!r}")
            return text
        else:
            return text
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise ParamError(f"parameter {name!r} must be between {_fmt(self.lo)} and {_fmt(self.hi)}, "
                             f"got {text[:40]}")
        return value


def _fmt(v: float | None) -> str:
    return "-inf" if v is None else (str(int(v)) if float(v).is_integer() else str(v))


def parse(items: Iterable[tuple[str, str]], spec: dict[str, Param]) -> dict[str, Any]:
    """Typed values of ``items`` by ``spec``; missing optional names take their default."""
    out: dict[str, Any] = {}
    for name, text in items:
        if name not in spec:
            known = ", ".join(sorted(spec)) or "none"
            raise ParamError(f"unknown parameter {name[:40]!r}; this endpoint takes: {known}")
        if name in out:
            raise ParamError(f"parameter {name!r} given more than once")
        if len(text) > MAX_VALUE_CHARS:
            raise ParamError(f"parameter {name!r} is longer than {MAX_VALUE_CHARS} characters")
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

SPECS: dict[str, dict[str, Param]] = {
    "runs": {},
    "card": {"run": RUN},
    "charts": {"run": RUN},
    "grid": {"run": RUN, "seed": SEED, "n": Param("int", 64, 1, MAX_SAMPLES, help="number of samples"),
             "scale": SCALE, "label": LABEL, "zoom": ZOOM,
             "nrow": Param("int", None, 1, MAX_SAMPLES, help="images per row (default: square)")},
    "interp": {"run": RUN, "seed_a": SEED, "seed_b": Param("int", 1, 0, MAX_SEED, help="end seed"),
               "steps": Param("int", 10, 2, 64, help="images along the path, ends included"),
               "scale": SCALE, "label": LABEL, "zoom": ZOOM,
               "mode": Param("choice", "slerp", choices=("slerp", "lerp"), help="spherical or linear path")},
}
SPECS["interp_gif"] = {**SPECS["interp"], "frame_ms": Param("int", 100, 20, 2000, help="ms per frame")}
