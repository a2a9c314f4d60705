"""Prefilled share messages: default wording per message kind (translated through the
catalogs in ``sharing/locale``), admins' overrides, and safe placeholder filling.

Placeholders are ``{name}`` (the sharing member), ``{link}`` (their referral link for the
channel), ``{program}`` (the program's name), ``{code}`` (their invite code) and, in the
tell-a-friend e-mail only, ``{note}`` (the member's own words). Nothing else is evaluated:
a template is text with holes, never a format string with attribute access.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from budding.core.errors import Reason, ValidationFailed
from budding.core.i18n import N_, gettext, use_locale
from budding.sharing.channels import CHAT, EMAIL, POST, SIGNATURE, TELL

PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
PLACEHOLDERS: frozenset[str] = frozenset({"name", "link", "program", "code"})
TELL_PLACEHOLDERS: frozenset[str] = PLACEHOLDERS | {"note"}

MAX_SUBJECT = 200
MAX_BODY = 2000
# X counts a link as 23 characters; with a space the text must leave 280 - 24.
MAX_POST_BODY = 256


@dataclass(frozen=True)
class Wording:
    subject: str
    body: str


# The subject of kinds that have none of their own (QQ's title): not a message to translate.
PROGRAM_ONLY = "{program}"

# msgids are English; the catalogs hold ko, es, id and zh_Hans.
DEFAULTS: dict[str, tuple[str, str]] = {
    CHAT: (
        PROGRAM_ONLY,
        N_("Join me on {program}! Here's my invite link: {link}"),
    ),
    POST: (
        PROGRAM_ONLY,
        N_("I'm on {program} and I think you'd like it too. Join me:"),
    ),
    EMAIL: (
        N_("{name} invites you to {program}"),
        N_(
            "Hi,\n\nI've been using {program} and I think you'd like it too. "
            "Join with my personal invite link:\n{link}\n\nSee you there,\n{name}"
        ),
    ),
    TELL: (
        N_("{name} thinks you'd like {program}"),
        N_(
            "Hi,\n\n{name} invited you to join {program} and asked us to send you this "
            "personal invite link:\n{link}\n\n{note}"
        ),
    ),
    SIGNATURE: (
        PROGRAM_ONLY,
        N_("P.S. I'm on {program}. Get your invite: {link}"),
    ),
}


def default_wording(kind: str, locale: str) -> Wording:
    subject, body = DEFAULTS[kind]
    with use_locale(locale):
        return Wording(
            subject=subject if subject == PROGRAM_ONLY else gettext(subject), body=gettext(body)
        )


def fill(template: str, values: dict[str, str]) -> str:
    """Replace known ``{placeholders}``; anything else stays as written."""
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def check_wording(key: str, kind: str, subject: str, body: str) -> Wording:
    """An admin's template, validated: known placeholders only, ``{link}`` where the
    channel carries the link in the text, within the length the channel allows."""
    fields: dict[str, Reason] = {}
    allowed = TELL_PLACEHOLDERS if kind == TELL else PLACEHOLDERS
    subject = subject.strip()
    body = body.strip().replace("\r\n", "\n")
    for name, text in (("subject", subject), ("body", body)):
        unknown = sorted({m.group(1) for m in PLACEHOLDER_RE.finditer(text)} - allowed)
        if unknown:
            fields[name] = Reason(
                N_("unknown placeholder %(placeholder)s; use %(known)s"),
                placeholder=f"{{{unknown[0]}}}",
                known=", ".join(f"{{{p}}}" for p in sorted(allowed)),
            )
    if not body:
        fields.setdefault("body", Reason(N_("must not be empty")))
    elif len(body) > (MAX_POST_BODY if kind == POST else MAX_BODY):
        limit = MAX_POST_BODY if kind == POST else MAX_BODY
        fields.setdefault("body", Reason(N_("must be at most %(limit)s characters"), limit=limit))
    if len(subject) > MAX_SUBJECT:
        fields.setdefault(
            "subject", Reason(N_("must be at most %(limit)s characters"), limit=MAX_SUBJECT)
        )
    if kind != POST and "{link}" not in body and "body" not in fields:
        fields["body"] = Reason(N_("must contain %(link)s"), link="{link}")
    if kind == POST and "{link}" in body and "body" not in fields:
        fields["body"] = Reason(
            N_("must not contain %(link)s: the network adds the link itself"), link="{link}"
        )
    if kind in (EMAIL, TELL) and not subject and "subject" not in fields:
        fields["subject"] = Reason(N_("must not be empty"))
    if fields:
        name, reason = next(iter(fields.items()))
        raise ValidationFailed(f"{key}.{name}: {reason}", fields=fields)
    return Wording(subject=subject, body=body)


def tell_a_friend_footer(locale: str, name: str, program: str) -> str:
    """The fixed last lines of every tell-a-friend e-mail (admins cannot remove them)."""
    with use_locale(locale):
        return gettext(
            "You received this one-time e-mail because %(name)s entered your address at "
            "%(program)s. We will not write to you again unless you join.",
            name=name,
            program=program,
        )
