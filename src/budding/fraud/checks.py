"""The fraud checks' vocabulary and pure helpers: check names, actions, e-mail canonical form,
disposable domains.

Checks (each configurable per program to ``off``, ``flag``, ``hold`` or ``block``):

========================  ==============================================================
``self_email``            the referee's canonical e-mail is the referrer's (case, Gmail
                          dots, ``+tags`` ignored)
``self_device``           the referee's device hash is one the referrer used
``self_ip``               the referee's IP hash is one the referrer used
``self_payment``          the referee's payment fingerprint is one the referrer used
``disposable_email``      the address is at a disposable-mail domain (the maintained
                          ``disposable-email-domains`` list)
``velocity_referrer``     the referrer brought more than N signups within an hour
``velocity_ip``           more than N signups came from one IP within an hour
``ring``                  the referrer is part of a cluster of accounts created from one
                          network within a short window, whose referrals point at each
                          other
========================  ==============================================================
"""

from __future__ import annotations

from functools import cache

from budding.core.i18n import N_

CHECKS: tuple[str, ...] = (
    "self_email",
    "self_device",
    "self_ip",
    "self_payment",
    "disposable_email",
    "velocity_referrer",
    "velocity_ip",
    "ring",
)
CHECK_LABELS: dict[str, str] = {
    "self_email": N_("Self-referral: same e-mail"),
    "self_device": N_("Self-referral: same device"),
    "self_ip": N_("Self-referral: same IP address"),
    "self_payment": N_("Self-referral: same payment method"),
    "disposable_email": N_("Disposable e-mail domain"),
    "velocity_referrer": N_("Too many referrals in an hour"),
    "velocity_ip": N_("Too many signups from one IP address"),
    "ring": N_("Referral ring"),
}
ACTIONS: tuple[str, ...] = ("off", "flag", "hold", "block")
ACTION_LABELS: dict[str, str] = {
    "off": N_("Off"),
    "allow": N_("Allow"),
    "flag": N_("Flag"),
    "hold": N_("Hold for review"),
    "block": N_("Block"),
}
SEVERITY = {"allow": 0, "off": 0, "flag": 1, "hold": 2, "block": 3}
DEFAULT_POLICY: dict[str, str] = {
    "self_email": "block",
    "self_device": "hold",
    "self_ip": "flag",
    "self_payment": "hold",
    "disposable_email": "block",
    "velocity_referrer": "hold",
    "velocity_ip": "hold",
    "ring": "hold",
}

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def canonical_email(address: str) -> str:
    """The mailbox an address delivers to: lower case, ``+tag`` dropped, and for Gmail the
    dots of the local part dropped and ``googlemail.com`` read as ``gmail.com``.

    >>> canonical_email("J.O.H.N+promo@GoogleMail.com")
    'john@gmail.com'
    >>> canonical_email("j.doe+x@example.com")
    'j.doe@example.com'

    Raises ValueError for an address that is not one.
    """
    from budding.members.schemas import normalise_email

    normalised = normalise_email(address)
    local, _, domain = normalised.rpartition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    if not local:
        raise ValueError("the part before the @ is empty")
    return f"{local}@{domain}"


@cache
def _blocklist() -> frozenset[str]:
    from disposable_email_domains import blocklist

    return frozenset(blocklist)


def is_disposable(domain: str) -> bool:
    """Whether the domain, or a domain it belongs to, is a disposable-mail service."""
    domain = domain.strip().lower().rstrip(".")
    parts = domain.split(".")
    blocked = _blocklist()
    return any(".".join(parts[i:]) in blocked for i in range(len(parts) - 1))


def strongest(actions: list[str]) -> str:
    """The most severe of the actions (``allow`` when there are none)."""
    best = "allow"
    for action in actions:
        if action != "off" and SEVERITY[action] > SEVERITY[best]:
            best = action
    return best
