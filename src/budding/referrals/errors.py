"""Typed referral errors; ``core.web`` maps them to HTTP responses."""

from __future__ import annotations

from budding.core.errors import Conflict, Gone, NotFound, PermissionDenied


class InviteNotFound(NotFound):
    code = "invite_not_found"


class InviteUsedUp(Gone):
    code = "invite_used_up"


class InviteExpired(Gone):
    code = "invite_expired"


class InviteRevoked(Gone):
    code = "invite_revoked"


class QuotaExceeded(Conflict):
    code = "quota_exceeded"


class AlreadyMember(Conflict):
    code = "already_member"


class SignupBlocked(PermissionDenied):
    code = "signup_blocked"
    keeps_writes = True  # the assessment, its webhook and the velocity counts


class ReferralNotFound(NotFound):
    code = "referral_not_found"


class WaitlistNotFound(NotFound):
    code = "waitlist_entry_not_found"


class WaitlistClosed(Conflict):
    code = "waitlist_closed"
