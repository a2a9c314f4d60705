"""Jinja2 templates of every capability, with i18n and shared helpers."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from babel.dates import format_datetime
from babel.numbers import format_decimal
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from budding.core import i18n


def _template_dirs() -> list[Path]:
    import budding

    root = Path(budding.__path__[0])
    return sorted(p for p in root.glob("*/templates") if p.is_dir())


def _fmt_datetime(value: datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    return format_datetime(value, format=fmt, locale=i18n.babel_locale())


def _fmt_number(value: float | int | None) -> str:
    if value is None:
        return ""
    return format_decimal(value, locale=i18n.babel_locale())


def _urlpart(value: object) -> str:
    """One URL path segment: every reserved character (``/`` too) percent-encoded."""
    return quote(str(value), safe="")


def _plain(value: Any) -> str:
    """A JSON-ish value as display text (strings as they are, the rest as JSON); a plain
    ``str``, so autoescaping still applies (unlike ``tojson``, which is for scripts)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _nav(attribute: str) -> list[tuple[str, str]]:
    """Navigation entries (label msgid, path suffix) contributed by capabilities' pages modules."""
    from budding.core.plugins import capability_modules

    entries: list[tuple[int, str, str]] = []
    for _name, module in capability_modules("pages"):
        for item in getattr(module, attribute, ()):
            order, label, suffix = item if len(item) == 3 else (50, *item)
            entries.append((order, label, suffix))
    return [(label, suffix) for _, label, suffix in sorted(entries, key=lambda e: e[0])]


@cache
def admin_nav() -> list[tuple[str, str]]:
    return _nav("ADMIN_NAV")


@cache
def portal_nav() -> list[tuple[str, str]]:
    return _nav("PORTAL_NAV")


def _translated(message: str | None) -> str:
    """A message chosen at run time (a job's step, marked with ``N_`` where it is set) in
    the page's language; the message itself where the catalogs have none. Unlike ``_()``
    in a template, not formatted with ``%`` and not marked safe: it is escaped as text."""
    return i18n.gettext(message) if message else ""


@cache
def environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(d)) for d in _template_dirs()]),
        autoescape=select_autoescape(["html", "xml"], default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda s: i18n.gettext(s),
        lambda s, p, n: i18n.translations(i18n.get_locale()).ngettext(s, p, n),
        newstyle=True,
        # {{ pgettext("join date", "Joined") }}; Jinja fills %(name)s variables, as for _().
        pgettext=lambda c, s: i18n.pgettext(c, s),
        npgettext=lambda c, s, p, n: i18n.translations(i18n.get_locale()).npgettext(c, s, p, n),
    )
    env.filters["datetime"] = _fmt_datetime
    env.filters["number"] = _fmt_number
    env.filters["urlpart"] = _urlpart
    env.filters["plain"] = _plain
    env.filters["translated"] = _translated
    env.globals["LOCALES"] = i18n.LOCALES
    env.globals["LOCALE_NAMES"] = i18n.LOCALE_NAMES
    env.globals["current_locale"] = i18n.get_locale
    env.globals["admin_nav"] = admin_nav
    env.globals["portal_nav"] = portal_nav
    return env


@cache
def templates() -> Jinja2Templates:
    return Jinja2Templates(env=environment())


def render(request: Any, name: str, status_code: int = 200, **context: Any) -> Any:
    """A TemplateResponse; ``request`` is passed to templates as ``request``."""
    context.setdefault("locale", i18n.get_locale())
    return templates().TemplateResponse(request, name, context, status_code=status_code)
