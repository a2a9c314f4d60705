"""The referrals capability's service functions, in one place for other capabilities.

Every function takes a ``Session`` first and never commits: the unit of work
(request, CLI command, job) owns the transaction. The logic lives in
``invites``, ``links``, ``attribution``, ``waitlist`` and ``tree``; this
module is the stable interface other capabilities import.
"""

from __future__ import annotations

from budding.referrals.attribution import (
    attribute_signup,
    get_referral,
    list_referrals,
    record_conversion,
    record_referral,
    referral_edges,
    referral_of,
    referral_signature,
    referral_weights,
    referrals_of,
    referred_members,
    set_referral_status,
)
from budding.referrals.config import referral_settings, update_referral_settings
from budding.referrals.invites import (
    find_invite,
    grant_invites,
    invite_counts,
    invite_summary,
    issue_invites,
    issue_staff_invites,
    list_invites,
    peek_invite,
    redeem_invite,
    revoke_invite,
)
from budding.referrals.links import (
    click_counts,
    count_clicks,
    hash_device,
    hash_ip,
    invite_url,
    record_click,
    referral_code_for,
    referral_url,
)
from budding.referrals.schemas import (
    InviteCodeInfo,
    InviteSummary,
    ReferralEdge,
    ReferralFact,
    ReferralSettings,
    ReferredMember,
    WaitlistEntry,
    WaitlistEntryInfo,
)
from budding.referrals.tree import generation_sizes, member_tree_summary, subtree
from budding.referrals.waitlist import join_waitlist, waitlist_position
from budding.referrals.waitlist import release as release_waitlist

Referral = ReferralFact

__all__ = [
    "InviteCodeInfo",
    "InviteSummary",
    "Referral",
    "ReferralEdge",
    "ReferralFact",
    "ReferralSettings",
    "ReferredMember",
    "WaitlistEntry",
    "WaitlistEntryInfo",
    "attribute_signup",
    "click_counts",
    "count_clicks",
    "find_invite",
    "generation_sizes",
    "get_referral",
    "grant_invites",
    "hash_device",
    "hash_ip",
    "invite_counts",
    "invite_summary",
    "invite_url",
    "issue_invites",
    "issue_staff_invites",
    "join_waitlist",
    "list_invites",
    "list_referrals",
    "member_tree_summary",
    "peek_invite",
    "record_click",
    "record_conversion",
    "record_referral",
    "redeem_invite",
    "referral_code_for",
    "referral_edges",
    "referral_of",
    "referral_settings",
    "referral_signature",
    "referral_url",
    "referral_weights",
    "referrals_of",
    "referred_members",
    "release_waitlist",
    "revoke_invite",
    "set_referral_status",
    "subtree",
    "update_referral_settings",
    "waitlist_position",
]
