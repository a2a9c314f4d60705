"""A program's referral settings: read with defaults, validated, saved in ``program.settings``."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from budding.core.errors import from_pydantic
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
    merged = referral_settings(program).model_dump()
    merged.update(values)
    if unknown:
        merged.update({k: values[k] for k in unknown})
    try:
        spec = ReferralSettings.model_validate(merged)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    update_program_settings(session, program, SECTION, spec.model_dump(mode="json"))
    return spec
