"""The one exception type a user sees: a one-line message saying what was wrong and what to do."""
from __future__ import annotations

import contextvars
import functools
from typing import Callable, TypeVar

_F = TypeVar("_F", bound=Callable)

# Set while a `gankit` command runs (cli.main), so that a message says `--overwrite` to the command line's user
# and `overwrite=True` to the Python API's.
_UNDER_CLI = contextvars.ContextVar("gankit_under_cli", default=False)


class GankitError(Exception):
    """An error caused by the user's input or environment, not by a bug in gankit.

    The CLI prints ``gankit: error: <message>`` and exits with status 2, without a traceback
    (unless ``--debug``). Messages are one line and name the offending file, key or value.
    """


def option(cli: str, api: str) -> str:
    """How a message names an option: ``cli`` (e.g. ``"--overwrite"``) while a ``gankit`` command runs,
    ``api`` (e.g. ``"overwrite=True"``) when the Python API is called directly."""
    return cli if _UNDER_CLI.get() else api


def cli_spelling(fn: _F) -> _F:
    """Decorate the CLI's entry point: messages raised inside it name options as the command line spells them."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        token = _UNDER_CLI.set(True)
        try:
            return fn(*args, **kwargs)
        finally:
            _UNDER_CLI.reset(token)
    return wrapper  # type: ignore[return-value]
