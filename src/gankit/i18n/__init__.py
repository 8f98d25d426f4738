"""Language catalogues for gankit's web pages and reports: one flat JSON file per language, ``{key: text}``.

A page never holds visible text of its own: an element names its text by key (``data-i18n="key"`` for its
text, ``data-i18n-title``, ``data-i18n-placeholder``, ``data-i18n-aria`` and ``data-i18n-alt`` for those
attributes) and scripts call ``t("key", {name: value})`` (``{name}`` placeholders). The server embeds every
catalogue into the page, so switching language needs no request and works offline.

Keys are namespaced by their user: ``lab.*`` (the GAN lab), ``studio.*`` (``gankit serve``: its page, and in
Python its API's error messages, score labels and charts), ``theory.*`` (the ``gankit theory`` report and its
figures, filled in Python); text several pages share goes under ``common.*``. Python fills a text with
:func:`text`; :class:`Message` holds a key and its values until the language is known (an API error is written
in English and in the request's language). This package
imports nothing but :mod:`gankit.errors`, so the studio and the theory report use it without the lab (which
imports the trainer). tests/lab/test_app.py checks both catalogues against every key the three users name.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

from ..errors import GankitError

LANGUAGES = ("en", "zh")
DEFAULT = "en"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def list_languages() -> list[str]:
    """The languages a catalogue exists for (the CLI's ``--lang`` choices)."""
    return list(LANGUAGES)


@lru_cache(maxsize=None)
def _load(lang: str) -> dict[str, str]:
    text = resources.files(__name__).joinpath(f"{lang}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise GankitError(f"the {lang} catalogue is not a flat {{key: text}} object; fix gankit/i18n/{lang}.json")
    return data


def catalogue(lang: str, prefix: str = "") -> dict[str, str]:
    """``{key: text}`` for ``lang`` ("en" or "zh"), the keys starting with ``prefix`` (all by default).
    Raises GankitError for an unknown language."""
    if lang not in LANGUAGES:
        raise GankitError(f"no catalogue for language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    return {k: v for k, v in _load(lang).items() if k.startswith(prefix)}


def placeholders(text: str) -> set[str]:
    """The ``{name}`` placeholders in a catalogue text (the test checks that every language has the same)."""
    return set(_PLACEHOLDER.findall(text))


def fill(template: str, values: dict) -> str:
    """``template`` with each ``{name}`` replaced by ``str(values[name])``; a missing value is a KeyError, never a
    "{name}" left in the text."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def text(lang: str, key: str, /, **values) -> str:
    """The text of ``key`` in ``lang``, its placeholders filled from ``values`` (already formatted)."""
    return fill(catalogue(lang)[key], values)


class Message:
    """A catalogue text before its language is chosen: ``Message("studio.error.no_run", run="'x'", ...)``.
    ``str()`` is the English text."""

    def __init__(self, key: str, /, **values):
        self.key, self.values = key, values

    def text(self, lang: str = DEFAULT) -> str:
        return text(lang, self.key, **self.values)

    def __str__(self) -> str:
        return self.text(DEFAULT)


def page_script(prefix: str, lang: str) -> str:
    """A ``<script>`` body for a page: ``I18N = {lang, catalogues}`` (every language's keys under ``prefix``
    and ``common.``; ``lang`` the starting language) and the runtime's ``t(key, vars)`` and
    ``translate(lang)`` (``runtime.js``). JSON is escaped for an HTML script element; nothing is fetched, so a
    page written to disk (a report) works offline as well as a served one."""
    catalogue(lang)
    cats = {name: {**catalogue(name, "common."), **catalogue(name, prefix)} for name in LANGUAGES}
    blob = json.dumps({"lang": lang, "catalogues": cats}, ensure_ascii=False)
    runtime = resources.files(__name__).joinpath("runtime.js").read_text(encoding="utf-8")
    return "const I18N = " + blob.replace("<", "\\u003c").replace(">", "\\u003e") + ";\n" + runtime
