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
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
    "N_": None,
}


def _msgids() -> dict[str, str]:
    """Catalog key (``context\x04msgid`` for a pgettext call) -> a file that uses it."""
    found: dict[str, str] = {}
    for filename, _lineno, message, _comments, context in extract_from_dir(
        str(ROOT), METHOD_MAP, OPTIONS, keywords=KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(i18n.catalog_key(msgid, context), filename)
    return found


def test_contexts_are_extracted() -> None:
    """A pgettext call in a template is found, with its context, and takes its msgctxt entry."""
    found = _msgids()
    assert "join date\x04Joined" in found
    assert "Joined" in found  # the referrals' status, without a context


def test_a_context_keeps_its_own_translation() -> None:
    """``msgctxt "join date"`` (members) and the bare msgid (the referrals' status) live
    side by side in the merged catalog, in Python and in templates."""
    from budding.core.templating import environment

    env = environment()
    with i18n.use_locale("ko"):
        assert i18n.gettext("Joined") == "가입함"
        assert i18n.pgettext("join date", "Joined") == "가입일"
        assert env.from_string('{{ pgettext("join date", "Joined") }}').render() == "가입일"
        assert env.from_string('{{ _("Joined") }}').render() == "가입함"
    with i18n.use_locale("en"):
        assert i18n.pgettext("join date", "Joined") == "Joined"
        assert i18n.pgettext("nowhere", "Hi %(name)s", name="Ann") == "Hi Ann"
        assert i18n.npgettext("nowhere", "%(num)s row", "%(num)s rows", 2) == "2 rows"
        # Jinja fills %(name)s variables and escapes them, as it does for _().
        page = env.from_string('{{ pgettext("nowhere", "Hi %(name)s", name=who) }}')
        assert page.render(who="<b>") == "Hi &lt;b&gt;"
        rows = env.from_string('{{ npgettext("nowhere", "%(num)s row", "%(num)s rows", n) }}')
        assert rows.render(n=1) == "1 row"
        assert rows.render(n=3) == "3 rows"


@pytest.mark.parametrize("locale", [loc for loc in i18n.LOCALES if loc != "en"])
def test_every_message_is_translated(locale: str) -> None:
    catalog = i18n.translations(locale)._catalog
    have = {k if isinstance(k, str) else k[0] for k in catalog}
    missing = {m: f for m, f in _msgids().items() if m not in have}
    assert not missing, f"{len(missing)} messages lack a {locale} translation: " + "; ".join(
        f"{f}: {m!r}".replace("\x04", " | ") for m, f in list(missing.items())[:20]
    )


def test_negotiation_order() -> None:
    assert i18n.negotiate("ko", "es;q=0.9", "en") == "ko"
    assert i18n.negotiate(None, "fr, zh-CN;q=0.8, es;q=0.5", "en") == "zh_Hans"
    assert i18n.negotiate(None, "fr", "id") == "id"
    assert i18n.negotiate(None, None, None) == "en"
    assert i18n.normalise_locale("zh-TW") is None
    assert i18n.normalise_locale("in-ID") == "id"


def test_no_msgid_is_translated_differently_by_two_catalogs() -> None:
    """The catalogs of a locale are merged into one dict: a msgid two capabilities
    translate differently shows whichever file is read last, everywhere. Where the
    meanings differ, one of them takes a context (``pgettext``) and a msgctxt entry."""
    from babel.messages.pofile import read_po

    collisions: list[str] = []
    for locale in [loc for loc in i18n.LOCALES if loc != "en"]:
        seen: dict[tuple[str | None, object], dict[str, object]] = {}
        for path in i18n.catalog_files(locale):
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=locale)
            for message in catalog:
                if not message.id or not message.string or message.fuzzy:
                    continue
                msgid = message.id if isinstance(message.id, str) else tuple(message.id)
                text = message.string if isinstance(message.string, str) else tuple(message.string)
                key = (message.context, msgid)
                seen.setdefault(key, {})[str(path.relative_to(ROOT))] = text
        for (context, msgid), by_file in seen.items():
            if len(set(by_file.values())) > 1:
                where = ", ".join(f"{f}: {t!r}" for f, t in by_file.items())
                ctx = f" (msgctxt {context!r})" if context else ""
                collisions.append(f"{msgid!r}{ctx} in {locale}: {where}")
    assert not collisions, f"{len(collisions)} msgids are translated differently:\n" + "\n".join(
        collisions
    )


def _own_catalog(capability: str, locale: str) -> dict[str, str]:
    from babel.messages.pofile import read_po

    path = Path(budding.__path__[0]) / capability / "locale" / f"{locale}.po"
    with path.open("rb") as fh:
        return {
            m.id: m.string
            for m in read_po(fh)
            if isinstance(m.id, str) and m.id and not m.context  # as gettext() finds it
        }


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
