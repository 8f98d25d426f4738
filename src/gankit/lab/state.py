"""The GAN lab's lesson state: :class:`LabState`, everything a lesson is, and its URL query (parsed and checked
here, exactly round-tripped). Plain Python: importing it loads neither torch nor the trainer."""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import quote, unquote_plus

from ..data.toy import BLOB_STD, DRAWN
from ..errors import GankitError

DATA = ("ring8", "grid25", "mog1d", DRAWN)
LOSSES = ("nonsaturating", "minimax")  # the losses whose D* is p_data / (p_data + p_g) (Goodfellow et al. 2014)
MAX_POINTS = 200
POINT_LIMIT = 10.0  # |coordinate| of a drawn point
INT_RANGES = {"d_steps": (1, 10), "pack": (1, 8), "g_width": (8, 512), "d_width": (8, 512), "z_dim": (1, 2),
              "batch": (8, 1024), "seed": (0, 2**31 - 1), "speed": (1, 200)}
FLOAT_RANGES = {"g_lr": (1e-6, 1.0), "d_lr": (1e-6, 1.0)}
__all__ = ["BLOB_STD", "DATA", "FLOAT_RANGES", "INT_RANGES", "LOSSES", "MAX_POINTS", "POINT_LIMIT", "LabState"]


@dataclass(frozen=True)
class LabState:
    """Everything a lesson is; :meth:`to_query` / :meth:`from_query` are its URL query, exactly round-tripped.

    ``data``: ring8 | grid25 | mog1d | drawn; ``points``: the drawn (x, y) points (1 to 200 for ``drawn``; each a
    Gaussian blob of std ``BLOB_STD`` = 0.05); ``speed``: full training steps per frame (small = slow motion).
    ``batch`` must be a multiple of ``pack`` (D judges packs of ``pack`` samples)."""

    data: str = "ring8"
    points: tuple[tuple[float, float], ...] = ()
    loss: str = "nonsaturating"
    g_lr: float = 1e-3
    d_lr: float = 1e-3
    d_steps: int = 1
    pack: int = 1
    g_width: int = 128
    d_width: int = 128
    z_dim: int = 2
    batch: int = 128
    seed: int = 0
    speed: int = 10

    def __post_init__(self) -> None:
        for key, choices in (("data", DATA), ("loss", LOSSES)):
            if getattr(self, key) not in choices:
                raise GankitError(f"lab: {key} must be one of {', '.join(choices)}; got {getattr(self, key)!r}")
        for key, (lo, hi) in INT_RANGES.items():
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise GankitError(f"lab: {key} must be an integer in [{lo}, {hi}], got {v!r}")
        for key, (lo, hi) in FLOAT_RANGES.items():
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:  # NaN fails too
                raise GankitError(f"lab: {key} must be a number in [{lo:g}, {hi:g}], got {v!r}")
            object.__setattr__(self, key, float(v))
        try:
            pts = tuple((float(x), float(y)) for x, y in self.points)
        except (TypeError, ValueError):
            raise GankitError("lab: points must be (x, y) pairs of numbers") from None
        if len(pts) > MAX_POINTS or any(not abs(c) <= POINT_LIMIT for p in pts for c in p):
            raise GankitError(f"lab: points must be at most {MAX_POINTS} (x, y) pairs with coordinates in "
                              f"[-{POINT_LIMIT:g}, {POINT_LIMIT:g}], got {len(pts)} points")
        object.__setattr__(self, "points", pts)
        if self.data == "drawn" and not pts:
            raise GankitError(f"lab: data=drawn needs points: 1 to {MAX_POINTS} (x, y) pairs")
        if self.batch % self.pack:
            raise GankitError(f"lab: batch must be a multiple of pack ({self.pack}), got {self.batch}")

    def to_query(self) -> str:
        """``data=ring8&points=0.1,0.2;0.3,-0.4&loss=...``: every key, floats written by ``repr`` (exact)."""
        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "points":
                if not v:
                    continue
                text = ";".join(f"{x!r},{y!r}" for x, y in v)
            else:
                text = repr(v) if isinstance(v, float) else str(v)
            parts.append(f"{f.name}={quote(text, safe=',;.-')}")
        return "&".join(parts)

    @classmethod
    def from_query(cls, query: str) -> "LabState":
        """The state of a URL query (a leading ``?`` allowed); missing keys take their defaults, unknown or
        repeated keys and bad values are refused with a one-line :class:`GankitError`."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for part in query.lstrip("?").split("&"):
            if not part:
                continue
            key, eq, text = part.partition("=")
            key, text = unquote_plus(key), unquote_plus(text)
            if key not in known:
                raise GankitError(f"lab: unknown key {key!r}; keys: {', '.join(sorted(known))}")
            if key in values:
                raise GankitError(f"lab: key {key!r} given twice")
            if not eq:
                raise GankitError(f"lab: key {key!r} has no value ({key}=...)")
            values[key] = _parse(key, text)
        return cls(**values)


def _parse(key: str, text: str) -> Any:
    if key in INT_RANGES:
        if not re.fullmatch(r"[+-]?\d{1,12}", text):
            lo, hi = INT_RANGES[key]
            raise GankitError(f"lab: {key} must be an integer in [{lo}, {hi}], got {text!r}")
        return int(text)
    if key in FLOAT_RANGES:
        try:
            return float(text)
        except ValueError:
            lo, hi = FLOAT_RANGES[key]
            raise GankitError(f"lab: {key} must be a number in [{lo:g}, {hi:g}], got {text!r}") from None
    if key == "points":
        pts = []
        for pair in text.split(";") if text else []:
            xy = pair.split(",")
            try:
                if len(xy) != 2:
                    raise ValueError
                pts.append((float(xy[0]), float(xy[1])))
            except ValueError:
                raise GankitError(f"lab: points must be 'x,y;x,y;...' (at most {MAX_POINTS} pairs), got "
                                  f"{pair[:40]!r}") from None
        return tuple(pts)
    return text
