"""The click writer: every answered click is stored once, batches keep each browser's
visitor id, and code look-ups on a cache miss find referral and invite codes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import func, select

from budding.core.db import unit_of_work
from budding.members import service as members
from budding.programs import service as programs
from budding.referrals import service
from budding.referrals.clickwriter import ClickWriter
from budding.referrals.links import LinkTarget, link_cache, with_query
from budding.referrals.models import ReferralClick

T = TypeVar("T")


def _codes(slug: str, n: int) -> list[str]:
    with unit_of_work() as session:
        prog = programs.get_program(session, slug)
        out = []
        for i in range(n):
            m, _ = members.upsert_member(
                session, prog, {"external_id": f"{slug}{i}", "email": f"{slug}{i}@example.com"}
            )
            out.append(service.referral_code_for(session, prog, m))
        return out


def _clicks() -> list[ReferralClick]:
    with unit_of_work() as session:
        rows = list(session.scalars(select(ReferralClick).order_by(ReferralClick.id)))
        session.expunge_all()
        return rows


def run_on_fresh_loop(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: the browser tests' Playwright (sync API)
    keeps an event loop running in the main thread for the whole session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.mark.parametrize(
    "landing",
    [
        "https://shop.example/",
        "https://shop.example/welcome?utm_source=x&lang=ko#top",
        "https://shop.example/?bud_click=OLD&a=1",
        "https://shop.example/p%C3%A4ge?q=a+b&e=%26",
    ],
)
def test_redirect_url_is_with_query(landing: str) -> None:
    target = LinkTarget(1, "acme", 1, None, 2, landing)
    token = "ABCDEFGHJK0123456789MNPQRS"
    assert target.redirect_url(token) == with_query(landing, bud_click=token)


def test_concurrent_clicks_are_all_stored_once(live_server, program) -> None:  # type: ignore[no-untyped-def]
    codes = _codes(program.slug, 5)
    link_cache.clear()
    n = 120

    def click(i: int) -> str:
        with httpx.Client(base_url=live_server.url, timeout=60) as c:
            r = c.get(f"/r/{codes[i % 5]}?ch=line", follow_redirects=False)
            assert r.status_code == 302, r.text
            return r.cookies["bud_click"]

    with ThreadPoolExecutor(max_workers=40) as pool:
        tokens = list(pool.map(click, range(n)))
    rows = _clicks()
    assert len(set(tokens)) == n
    assert sorted(r.token for r in rows) == sorted(tokens)
    assert {r.channel for r in rows} == {"line"}


def test_a_batch_keeps_each_browsers_visitor_within_its_program(program, other_program) -> None:  # type: ignore[no-untyped-def]
    ann, bea = _codes(program.slug, 1)[0], _codes(other_program.slug, 1)[0]
    link_cache.clear()

    async def run() -> None:
        w = ClickWriter()
        a = await w.resolve(ann)
        b = await w.resolve(bea)
        assert a is not None and b is not None
        first = {**service_row(a, "FIRSTCLICK0000000000000001"), "previous": None}
        await w.write(first)
        # One batch: a same-program click carrying the first one's id, a click of another
        # program carrying it too (must not join that browser), and an unknown id.
        same = {**service_row(a, "SECONDCLICK000000000000002"), "previous": first["token"]}
        other = {**service_row(b, "THIRDCLICK0000000000000003"), "previous": first["token"]}
        unknown = {**service_row(a, "FOURTHCLICK000000000000004"), "previous": "NOPE"}
        await asyncio.gather(w.write(same), w.write(other), w.write(unknown))

    run_on_fresh_loop(run())
    visitor = {r.token: r.visitor for r in _clicks()}
    assert visitor["SECONDCLICK000000000000002"] == "FIRSTCLICK0000000000000001"
    assert visitor["THIRDCLICK0000000000000003"] == "THIRDCLICK0000000000000003"
    assert visitor["FOURTHCLICK000000000000004"] == "FOURTHCLICK000000000000004"


def service_row(target: LinkTarget, token: str) -> dict[str, Any]:
    from budding.referrals.links import click_row

    row = click_row(target, channel="x", ip="198.51.100.1", user_agent="UA")
    row.update(token=token, visitor=token, bot=False)
    return row


def test_lookups_find_referral_and_invite_codes_in_one_go(program) -> None:  # type: ignore[no-untyped-def]
    (code,) = _codes(program.slug, 1)
    with unit_of_work() as session:
        prog = programs.get_program(session, program.slug)
        invite = service.issue_staff_invites(session, prog, 1)[0].code
    link_cache.clear()

    async def run() -> list[LinkTarget | None]:
        w = ClickWriter()
        return list(await asyncio.gather(w.resolve(code), w.resolve(invite), w.resolve("0" * 12)))

    ref, inv, missing = run_on_fresh_loop(run())
    assert missing is None
    assert ref is not None and ref.code_id is not None and ref.referrer_member_id is not None
    assert ref.program_id == program.id and ref.invite_id is None
    assert inv is not None and inv.invite_id is not None and inv.code_id is None
    assert inv.landing_url.endswith(f"/p/{program.slug}/join/{invite}")
    assert link_cache.get(code) == ref


def test_clicks_in_one_statement_on_postgres(postgres, program, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """On PostgreSQL a batch is one prepared statement on the writer's own connection."""
    import psycopg

    (code,) = _codes(program.slug, 1)
    link_cache.clear()
    statements: list[str] = []
    original = psycopg.AsyncConnection.execute

    async def spy(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        statements.append(str(query))
        return await original(self, query, params, **kw)

    monkeypatch.setattr(psycopg.AsyncConnection, "execute", spy)

    async def run() -> None:
        w = ClickWriter()
        target = await w.resolve(code)
        assert target is not None
        await asyncio.gather(*(w.write(service_row(target, f"PGCLICK{i:019d}")) for i in range(50)))

    run_on_fresh_loop(run())
    inserts = [s for s in statements if "INSERT" in s]
    assert 1 <= len(inserts) <= 2  # one batch, or a first click alone and then the rest
    assert len(statements) == len(inserts) + 1  # and the code's look-up
    with unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(ReferralClick)) == 50


def test_a_head_request_records_no_click(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    (code,) = _codes(program.slug, 1)
    r = anon_client.head(f"/r/{code}", follow_redirects=False)
    assert r.status_code != 302
    assert _clicks() == []
    assert anon_client.get(f"/r/{code}", follow_redirects=False).status_code == 302
    assert len(_clicks()) == 1
