"""The referrals capability's part of ``budding demo``: the community's referral forest as
real invites, clicks and referrals, plus a waitlist of people still waiting.

By the time this runs, the demo's ``signup`` events (``properties.referrer``)
have gone through ``listeners.on_events``, so most referrals exist already;
``record_referral`` fills in any that do not (it never stores one twice). This
module then gives every referral the invite code its referrer issued and the
link click that brought the friend, gives every member a referral code, and
puts people on the waitlist.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from budding.core.db import dialect_insert
from budding.programs.models import Program
from budding.referrals import waitlist
from budding.referrals.attribution import record_referral
from budding.referrals.codes import new_code, new_token, seeded_codes
from budding.referrals.config import update_referral_settings
from budding.referrals.invites import grant_invites
from budding.referrals.links import hash_ip, store_clicks
from budding.referrals.models import (
    InviteCode,
    InviteRedemption,
    Referral,
    ReferralClick,
    ReferralCode,
)

QUOTA = 3
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 15; SM-S921N) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Version/18.1 Safari/605.1.15",
)


def contribute(
    session: Session, program: Program, community: Any, rng: np.random.Generator
) -> None:
    update_referral_settings(
        session,
        program,
        {
            "mode": "invite_only",
            "invite_quota": QUOTA,
            "code_uses": 1,
            "attribution_window_days": 30,
            "conversion_event": "purchase",
            "conversion_condition": None,
        },
    )
    ids: list[int] = list(community.member_ids)
    # Codes and click ids from the demo's own stream, so the same seed gives the same ones
    # (the slug too: two demos of one seed in one database must not share codes).
    with seeded_codes(f"{program.slug}:{int(rng.integers(0, 2**62))}"):
        _referral_codes(session, program, community, ids)
        _referrals(session, program, community, ids, rng)
        _share_clicks(session, program, community, ids, rng)
        _waitlist(session, program, community, rng)


def _referral_codes(session: Session, program: Program, community: Any, ids: list[int]) -> None:
    rows = [
        {
            "program_id": program.id,
            "code": new_code(),
            "member_id": m,
            "created_at": community.signup_at[i],
        }
        for i, m in enumerate(ids)
    ]
    for i in range(0, len(rows), 1000):
        session.execute(
            dialect_insert(session, ReferralCode)
            .values(rows[i : i + 1000])
            .on_conflict_do_nothing(index_elements=["program_id", "member_id"])
        )


def _referrals(
    session: Session, program: Program, community: Any, ids: list[int], rng: np.random.Generator
) -> None:
    """One redeemed invite code and one link click per referral; extra invites granted to
    members who brought in more friends than the quota allows (privileges)."""
    codes = dict(
        session.execute(
            select(ReferralCode.member_id, ReferralCode.id).where(
                ReferralCode.program_id == program.id
            )
        ).all()
    )
    brought: dict[int, int] = {}
    for parent, child in community.referrals():
        brought[parent] = brought.get(parent, 0) + 1
        referrer, referee = ids[parent], ids[child]
        joined = community.signup_at[child]
        sent = community.invited_at[child] or joined - timedelta(hours=1)
        channel = community.channel[child]
        invite = InviteCode(
            program_id=program.id,
            code=new_code(),
            issuer_member_id=referrer,
            source="member",
            uses=1,
            used=1,
            note="",
            created_at=sent,
            revoked_reason="",
        )
        session.add(invite)
        session.flush()
        session.add(
            InviteRedemption(
                program_id=program.id, invite_id=invite.id, member_id=referee, redeemed_at=joined
            )
        )
        click = {
            "program_id": program.id,
            "token": new_token(),
            "code_id": codes.get(referrer),
            "invite_id": invite.id,
            "referrer_member_id": referrer,
            "channel": channel,
            "ip_hash": hash_ip(f"10.{rng.integers(0, 255)}.{rng.integers(0, 255)}.{child % 250}"),
            "user_agent": USER_AGENTS[int(rng.integers(0, len(USER_AGENTS)))],
            "bot": False,
            "clicked_at": max(sent, joined - timedelta(minutes=float(rng.uniform(2, 30)))),
        }
        click["visitor"] = click["token"]
        store_clicks(session, [click])
        record_referral(
            session,
            program,
            referrer_id=referrer,
            referee_id=referee,
            source="invite",
            signed_up_at=joined,
            channel=channel,
        )
        click_row_id = session.scalar(
            select(ReferralClick.id).where(ReferralClick.token == click["token"])
        )
        session.execute(
            update(Referral)
            .where(Referral.program_id == program.id, Referral.referee_member_id == referee)
            .values(invite_id=invite.id, click_id=click_row_id, source="invite", channel=channel)
            .execution_options(synchronize_session=False)
        )
    for parent, n in brought.items():
        if n > QUOTA:
            grant_invites(
                session,
                program,
                ids[parent],
                n - QUOTA,
                reason="demo: early supporter",
                key=f"demo:early-supporter:{ids[parent]}",
            )


def _share_clicks(
    session: Session, program: Program, community: Any, ids: list[int], rng: np.random.Generator
) -> None:
    """Clicks on the referral links members shared (``share`` events that drew clicks)."""
    codes = dict(
        session.execute(
            select(ReferralCode.member_id, ReferralCode.id).where(
                ReferralCode.program_id == program.id
            )
        ).all()
    )
    rows: list[dict[str, Any]] = []
    for share in community.shares:
        for clicker in share.clicks:
            token = new_token()
            rows.append(
                {
                    "program_id": program.id,
                    "token": token,
                    "visitor": token,
                    "code_id": codes.get(ids[share.member]),
                    "invite_id": None,
                    "referrer_member_id": ids[share.member],
                    "channel": share.channel,
                    "ip_hash": hash_ip(f"172.16.{clicker % 250}.{rng.integers(1, 250)}"),
                    "user_agent": USER_AGENTS[int(rng.integers(0, len(USER_AGENTS)))],
                    "bot": False,
                    "clicked_at": share.at + timedelta(minutes=float(rng.uniform(1, 600))),
                }
            )
        if len(rows) >= 1000:
            store_clicks(session, rows)
            rows = []
    store_clicks(session, rows)


def _waitlist(session: Session, program: Program, community: Any, rng: np.random.Generator) -> None:
    """People who asked for an invitation and still wait: about one for every 25 members,
    some brought by members' links, most confirmed, a few who moved up by referring."""
    waiting = max(10, community.size // 25)
    codes = list(
        session.scalars(
            select(ReferralCode.code)
            .where(ReferralCode.program_id == program.id)
            .order_by(ReferralCode.id)
        )
    )
    entries = []
    for k in range(waiting):
        ref = codes[int(rng.integers(0, len(codes)))] if codes and rng.random() < 0.4 else None
        result = waitlist.join_waitlist(
            session,
            program,
            f"waiting{k}@example.net",
            referral_code=ref,
            locale=str(rng.choice(["en", "ko", "es", "id", "zh_Hans"])),
            send_confirmation=False,
        )
        entries.append(result.entry)
    # Some waiting people bring friends onto the waitlist too; confirmations move them up.
    for entry in entries[: waiting // 2]:
        if rng.random() < 0.8:
            waitlist.confirm(session, program, entry)
    for n, entry in enumerate(entries[waiting // 2 :]):
        if rng.random() < 0.3:
            code = waitlist.entry_info(session, program, entry).referral_code
            friend = waitlist.join_waitlist(
                session,
                program,
                f"waiting-friend{n}@example.net",
                referral_code=code,
                send_confirmation=False,
            )
            waitlist.confirm(session, program, friend.entry)
        if rng.random() < 0.7:
            waitlist.confirm(session, program, entry)
