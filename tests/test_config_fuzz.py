"""Property-based tests of dotted overrides: whatever a user types, the result is a valid RunConfig or a
one-line GankitError, never another exception; and every valid value survives a round trip as text."""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from gankit.cli import parse_overrides
from gankit.config import RunConfig, all_keys
from gankit.errors import GankitError

KEYS = all_keys()
DEFAULT = RunConfig()


def _mangled_key(key: str) -> st.SearchStrategy[str]:
    return st.sampled_from([key, key.upper(), key + ".x", key.split(".")[0], "." + key, key + ".",
                            key.replace(".", ".."), key.replace(".", "_"), key.split(".")[-1]])


keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS).flatmap(_mangled_key), st.text(max_size=20))

text_values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["none", "None", "null", "true", "False", "yes", "0", "1", "-1", "1e-3", "2e400", "-inf", "nan",
                     "1_000", "0x10", "128,256", "[64, 64]", "(8,)", "()", ",", "4.0", " 7 ", "mlp", "cpu"]),
    st.integers(-10**30, 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

python_values = st.one_of(
    text_values,
    st.none(), st.booleans(),
    st.integers(-10**400, 10**400),  # floats cannot hold the largest: float(10**400) overflows
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(-5, 300) | st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.binary(max_size=4),
)


def _apply(overrides: dict) -> RunConfig | None:
    try:
        cfg = DEFAULT.with_overrides(overrides)
    except GankitError as e:
        msg = str(e)
        assert msg and "\n" not in msg
        return None
    assert isinstance(cfg, RunConfig)
    return cfg


@settings(max_examples=300, deadline=None)
@given(overrides=st.dictionaries(keys, python_values, max_size=3))
def test_with_overrides_raises_only_gankit_error(overrides):
    cfg = _apply(overrides)
    if cfg is not None:
        # any config that was accepted survives the checkpoint round trip (to_dict -> from_dict)
        assert RunConfig.from_dict(cfg.to_dict()) == cfg


tokens = st.one_of(
    st.sampled_from(KEYS).map(lambda k: "--" + k),
    st.tuples(st.sampled_from(KEYS), text_values).map(lambda kv: f"--{kv[0]}={kv[1]}"),
    keys.map(lambda k: "--" + k),
    text_values,
    st.sampled_from(["--", "-", "--=", "--.", "--.=1", "--a.b", "=", "--train.batch_size=", "--data..name"]),
)


@settings(max_examples=300, deadline=None)
@given(argv=st.lists(tokens, max_size=6))
def test_parse_overrides_then_apply_raises_only_gankit_error(argv):
    try:
        overrides = parse_overrides(argv)
    except GankitError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in overrides.items())
    assert set(overrides) <= set(KEYS)
    _apply(overrides)


def _as_text(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return repr(value) if isinstance(value, float) else str(value)


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(KEYS), data=st.data())
def test_valid_values_round_trip_through_text(key, data):
    """Setting a key to the text of a value it accepts gives back exactly that value."""
    section, _, name = key.rpartition(".")
    current = getattr(getattr(DEFAULT, section), name) if section else getattr(DEFAULT, name)
    if isinstance(current, bool):
        value = data.draw(st.booleans())
    elif isinstance(current, float):
        value = data.draw(st.floats(min_value=1e-12, max_value=0.99, allow_subnormal=False))
    elif isinstance(current, int):
        value = data.draw(st.integers(1, 10**6))
    elif isinstance(current, tuple):
        value = tuple(data.draw(st.lists(st.integers(1, 4096), min_size=1, max_size=4)))
    else:
        value = current  # strings and None: their defaults (the valid strings are a closed list per key)
    cfg = _apply({key: _as_text(value)})
    if cfg is None:  # out of a field's range (e.g. loss.fake_target >= real_target): only a GankitError
        return
    got = getattr(getattr(cfg, section), name) if section else getattr(cfg, name)
    assert got == value and type(got) is type(value)
    assert not (isinstance(got, float) and math.isnan(got))


json_like = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=6),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                      max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(section=st.sampled_from(["data", "model", "loss", "optim", "train", "preset", "extra", 1]),
       field_name=st.sampled_from(sorted({k.split(".")[-1] for k in KEYS}) + ["bogus", 0]), value=json_like,
       drop=st.booleans())
def test_from_dict_of_a_damaged_config_raises_only_gankit_error(section, field_name, value, drop):
    """A checkpoint's config dict, edited or damaged: a valid config or a one-line GankitError."""
    d = DEFAULT.to_dict()
    if section in d and isinstance(d[section], dict):
        if drop:
            d[section].pop(field_name, None)
        else:
            d[section][field_name] = value
    else:
        d[section] = value
    try:
        cfg = RunConfig.from_dict(d)
    except GankitError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
