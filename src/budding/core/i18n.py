"""Translations for member-facing text in en, ko, es, id and zh-Hans.

Each capability keeps its own catalogs in ``budding/<capability>/locale/<locale>.po``;
they are merged per locale at first use, so capabilities never edit each
other's files. English is the source language: msgids are English text.
A msgid two capabilities mean differently ("Joined" as a date vs. as a status) takes
a context in the less general place: ``pgettext("join date", "Joined")`` in code and
templates, a ``msgctxt "join date"`` entry in that capability's catalogs; the merged
catalog keys it ``"join date\x04Joined"`` as Python's gettext does.
The locale of the text being rendered lives in a context variable, so one
Jinja environment serves concurrent requests in different languages.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from functools import cache
from gettext import c2py
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES: tuple[str, ...] = ("en", "ko", "es", "id", "zh_Hans")
# The supported locales as the API's schema states them: its validators also take tags such
# as ko-KR or zh_CN (and "" for none), and refuse the rest in their own words.
LOCALE_TAGS: tuple[str, ...] = tuple(loc.replace("_", "-") for loc in LOCALES)
LOCALE_SCHEMA: dict[str, Any] = {"enum": [*LOCALE_TAGS, "", None]}
LOCALE_NAMES: dict[str, str] = {
    "en": "English",
    "ko": "한국어",
    "es": "Español",
    "id": "Bahasa Indonesia",
    "zh_Hans": "简体中文",
}
DEFAULT_LOCALE = "en"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("budding_locale", default="en")


def normalise_locale(value: str | None) -> str | None:
    """Map a tag such as ``zh-CN``, ``ko_KR`` or ``es-419`` to a supported locale, or None."""
    if not value:
        return None
    tag = value.strip().replace("-", "_")
    if not tag:
        return None
    lower = tag.lower()
    if lower.startswith("zh"):
        if any(part in lower for part in ("hant", "_tw", "_hk", "_mo")):
            return None
        return "zh_Hans"
    base = lower.split("_", 1)[0]
    if base == "in":  # the old ISO code for Indonesian, still sent by some Android phones
        base = "id"
    return base if base in LOCALES else None


def parse_accept_language(header: str | None) -> list[str]:
    """Supported locales from an Accept-Language header, best first."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        loc = normalise_locale(tag)
        if loc and q > 0:
            weighted.append((-q, i, loc))
    seen: list[str] = []
    for _, _, loc in sorted(weighted):
        if loc not in seen:
            seen.append(loc)
    return seen


# The member's chosen language where no member is signed in (set by the portal's switch).
LOCALE_COOKIE = "budding_locale"


def negotiate(
    member_locale: str | None, accept_language: str | None, program_default: str | None
) -> str:
    """The member's setting, then Accept-Language, then the program's default."""
    for candidate in (normalise_locale(member_locale), *parse_accept_language(accept_language)):
        if candidate:
            return candidate
    return normalise_locale(program_default) or DEFAULT_LOCALE


def catalog_files(locale: str) -> Iterable[Path]:
    import budding

    root = Path(budding.__path__[0])
    return sorted(root.glob(f"*/locale/{locale}.po"))


def catalog_key(msgid: str, context: str | None = None) -> str:
    """The merged catalog's key of a msgid: ``context\x04msgid`` with a context."""
    return f"{context}\x04{msgid}" if context else msgid


@cache
def translations(locale: str) -> Translations:
    merged = Translations()
    merged._catalog = {}
    for path in catalog_files(locale):
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        for message in catalog:
            if not message.id or not message.string or message.fuzzy:
                continue
            entries: dict[Any, str] = merged._catalog
            if isinstance(message.id, tuple | list):
                key = catalog_key(message.id[0], message.context)
                for i, form in enumerate(message.string):
                    if form:
                        entries[(key, i)] = form
            elif isinstance(message.string, str):
                entries[catalog_key(message.id, message.context)] = message.string
    # gettext wants a plural *index*; Babel's catalog knows each locale's C expression.
    merged.plural = c2py(Catalog(locale=locale).plural_expr)  # type: ignore[assignment]
    return merged


def set_locale(locale: str) -> contextvars.Token[str]:
    return _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)


def get_locale() -> str:
    return _current.get()


class use_locale:
    def __init__(self, locale: str) -> None:
        self.locale = locale
        self.token: contextvars.Token[str] | None = None

    def __enter__(self) -> str:
        self.token = set_locale(self.locale)
        return get_locale()

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            _current.reset(self.token)


def gettext(message: str, **variables: object) -> str:
    text = translations(get_locale()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    text = translations(get_locale()).ngettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


def pgettext(context: str, message: str, **variables: object) -> str:
    """``gettext`` of the msgid in ``context`` (a ``msgctxt`` entry), for a word that
    means something else elsewhere: ``pgettext("join date", "Joined")``."""
    # Babel types it ``str | object``; it is the translation or, failing that, the msgid.
    text = str(translations(get_locale()).pgettext(context, message))
    return text % variables if variables else text


def npgettext(context: str, singular: str, plural: str, n: int, **variables: object) -> str:
    text = translations(get_locale()).npgettext(context, singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


_ = gettext


def N_(message: str) -> str:
    """Mark a string for translation without translating it now (nav labels, enums)."""
    return message


def babel_locale(locale: str | None = None) -> Locale:
    try:
        return Locale.parse(locale or get_locale())
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LOCALE)
