"""Every translatable string has a translation in every member locale."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

import budding
from budding.core import i18n

ROOT = Path(budding.__path__[0])
METHOD_MAP = [("**.py", "python"), ("**/templates/**.html", "jinja2.ext:babel_extract")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "false"}}


def _msgids() -> dict[str, str]:
    found: dict[str, str] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT),
        METHOD_MAP,
        OPTIONS,
        keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None},
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, filename)
    return found


@pytest.mark.parametrize("locale", [loc for loc in i18n.LOCALES if loc != "en"])
def test_every_message_is_translated(locale: str) -> None:
    catalog = i18n.translations(locale)._catalog
    have = {k if isinstance(k, str) else k[0] for k in catalog}
    missing = {m: f for m, f in _msgids().items() if m not in have}
    assert not missing, f"{len(missing)} messages lack a {locale} translation: " + "; ".join(
        f"{f}: {m!r}" for m, f in list(missing.items())[:20]
    )


def test_negotiation_order() -> None:
    assert i18n.negotiate("ko", "es;q=0.9", "en") == "ko"
    assert i18n.negotiate(None, "fr, zh-CN;q=0.8, es;q=0.5", "en") == "zh_Hans"
    assert i18n.negotiate(None, "fr", "id") == "id"
    assert i18n.negotiate(None, None, None) == "en"
    assert i18n.normalise_locale("zh-TW") is None
    assert i18n.normalise_locale("in-ID") == "id"


def _own_catalog(capability: str, locale: str) -> dict[str, str]:
    from babel.messages.pofile import read_po

    path = Path(budding.__path__[0]) / capability / "locale" / f"{locale}.po"
    with path.open("rb") as fh:
        return {m.id: m.string for m in read_po(fh) if isinstance(m.id, str) and m.id}


@pytest.mark.parametrize("locale", ["ko", "es", "id", "zh_Hans"])
def test_member_facing_labels_keep_their_capabilitys_wording(locale: str) -> None:
    """The catalogs are merged into one, where a msgid can hold one translation: a word
    two capabilities translate differently ("Pending" reward vs. pending webhook) would
    show members another capability's wording. Member-facing labels must survive it."""
    from budding.referrals.pages import INVITE_STATUSES
    from budding.rewards.pages import STATUS_LABELS

    for capability, labels in (("rewards", STATUS_LABELS), ("referrals", INVITE_STATUSES)):
        own = _own_catalog(capability, locale)
        with i18n.use_locale(locale):
            for label in labels.values():
                assert i18n.gettext(label) == own[label], (capability, label)
