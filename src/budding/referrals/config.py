"""A program's referral settings: read with defaults, validated, saved in ``program.settings``."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from budding.core.errors import field, from_pydantic
from budding.core.i18n import N_
from budding.members.events import event_types
from budding.programs.models import Program
from budding.programs.service import update_program_settings
from budding.referrals.schemas import ReferralSettings

SECTION = "referrals"
log = logging.getLogger("budding.referrals")


def referral_settings(program: Program) -> ReferralSettings:
    """The program's settings with defaults filled in. A stored value that no longer
    validates (written by hand) falls back to its default instead of breaking links."""
    stored = dict((program.settings or {}).get(SECTION, {}) or {})
    while True:
        try:
            return ReferralSettings.model_validate(stored)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            if not bad & stored.keys():
                return ReferralSettings()
            log.warning("program %s: ignoring invalid referral settings %s", program.slug, bad)
            for key in bad:
                stored.pop(key, None)


def update_referral_settings(
    session: Session, program: Program, values: dict[str, Any]
) -> ReferralSettings:
    """Change some settings; a bad value raises ``ValidationFailed`` naming its field and
    nothing is saved."""
    unknown = set(values) - set(ReferralSettings.model_fields)
    before = referral_settings(program)
    merged = before.model_dump()
    merged.update(values)
    if unknown:
        merged.update({k: values[k] for k in unknown})
    try:
        spec = ReferralSettings.model_validate(merged)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    # Only a change is checked: a type stored before this rule does not block the others.
    if spec.conversion_event != before.conversion_event:
        check_conversion_event(session, program, spec.conversion_event)
    update_program_settings(session, program, SECTION, spec.model_dump(mode="json"))
    return spec


def check_conversion_event(session: Session, program: Program, name: str) -> None:
    """Refuse an event type the program does not know: ingestion refuses its events, so
    a referral would never convert."""
    known = event_types(session, program.id)
    if name not in known:
        raise field(
            "conversion_event",
            N_(
                "%(name)s is not an event type of this program; register it first or use "
                "one of: %(known)s"
            ),
            name=repr(name),
            known=", ".join(sorted(known)),
        )
