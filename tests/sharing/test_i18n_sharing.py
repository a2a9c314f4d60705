"""The share kit's own text is translated in every member locale (the project-wide check
is tests/core/test_i18n.py; this one points at this capability only)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import budding
from budding.core import i18n

ROOT = Path(budding.__path__[0]) / "sharing"
METHOD_MAP = [("**.py", "python"), ("**/templates/**.html", "jinja2.ext:babel_extract")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "false"}}
PLACEHOLDER = re.compile(r"\{[a-z]+\}|%\([a-z_]+\)s")
KEYWORDS = {"_": None, "gettext": None, "pgettext": ((1, "c"), 2), "N_": None}


def _msgids() -> set[str]:
    """Catalog keys (``context\x04msgid`` for a pgettext call) of the share kit's text."""
    found = set()
    for _f, _l, message, _c, ctx in extract_from_dir(
        str(ROOT), METHOD_MAP, OPTIONS, keywords=KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.add(i18n.catalog_key(msgid, ctx))
    return found


@pytest.mark.parametrize("locale", [loc for loc in i18n.LOCALES if loc != "en"])
def test_sharing_catalog_is_complete_and_keeps_placeholders(locale: str) -> None:
    with (ROOT / "locale" / f"{locale}.po").open("rb") as fh:
        catalog = {
            (i18n.catalog_key(m.id, m.context) if isinstance(m.id, str) else m.id): m.string
            for m in read_po(fh, locale=locale)
            if m.id
        }
    missing = sorted(_msgids() - {k for k, v in catalog.items() if v})
    assert not missing, f"{locale} lacks: {missing[:10]}"
    for msgid, text in catalog.items():
        assert isinstance(msgid, str) and isinstance(text, str)
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(text)), (
            msgid,
            text,
        )
