"""``budding invites|waitlist|referrals`` commands, and the member export and erasure."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from budding.core.cli import app
from budding.core.db import unit_of_work
from budding.members import service as members
from budding.programs import service as programs
from tests.referrals.conftest import set_settings

runner = CliRunner()


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_invites_commands(client, program) -> None:  # type: ignore[no-untyped-def]
    client.post("/api/v1/members", json={"external_id": "ann", "email": "ann@example.com"})
    out = _run("invites", "issue", "-p", "acme", "-m", "ann", "-n", "2", "--json")
    codes = [c["code"] for c in json.loads(out)]
    assert len(codes) == 2
    result = runner.invoke(app, ["invites", "issue", "-p", "acme", "-m", "ann", "-n", "5"])
    assert result.exit_code == 1 and "invites left" in result.output
    assert "count" in result.output
    # a member's codes come from the quota, as the settings define them: no silent drop
    result = runner.invoke(app, ["invites", "issue", "-p", "acme", "-m", "ann", "--uses", "5"])
    assert result.exit_code == 2 and "--uses" in result.output
    team = json.loads(_run("invites", "issue", "-p", "acme", "-n", "3", "--uses", "10", "--json"))
    assert all(c["uses"] == 10 for c in team)
    listed = json.loads(_run("invites", "list", "-p", "acme", "-m", "ann", "--json"))
    assert {c["code"] for c in listed} == set(codes)
    out = _run("invites", "revoke", codes[0].lower(), "-p", "acme", "--reason", "leaked")
    assert "revoked" in out
    revoked = json.loads(_run("invites", "list", "-p", "acme", "--status", "revoked", "--json"))
    assert [c["code"] for c in revoked] == [codes[0]]
    table = _run("invites", "list", "-p", "acme")
    assert "(team)" in table
    result = runner.invoke(app, ["invites", "revoke", "ZZZZZZZZZZZZ", "-p", "acme"])
    assert result.exit_code == 1 and "no such invite code" in result.output


def test_waitlist_and_settings_commands(client, program) -> None:  # type: ignore[no-untyped-def]
    out = _run(
        "referrals",
        "settings",
        "-p",
        "acme",
        "--set",
        "mode=waitlist",
        "--set",
        "waitlist_require_confirmation=false",
    )
    assert "waitlist" in out
    result = runner.invoke(app, ["referrals", "settings", "-p", "acme", "--set", "invite_quota=-3"])
    assert result.exit_code == 1 and "invite_quota" in result.output
    # An event type the program does not know would never arrive to convert anything.
    result = runner.invoke(
        app, ["referrals", "settings", "-p", "acme", "--set", "conversion_event=order.paid"]
    )
    assert result.exit_code == 1 and "conversion_event" in result.output, result.output
    for i in range(4):
        client.post("/api/v1/waitlist", json={"email": f"p{i}@example.com"})
    listed = json.loads(_run("waitlist", "list", "-p", "acme", "--json"))
    assert [e["position"] for e in listed["entries"]] == [1, 2, 3, 4]
    released = json.loads(_run("waitlist", "release", "-p", "acme", "-n", "2", "--json"))
    assert [r["email"] for r in released] == ["p0@example.com", "p1@example.com"]
    out = _run("waitlist", "list", "-p", "acme")
    assert "p2@example.com" in out and "released 2" in out


def test_tree_command(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/api/v1/members", json={"external_id": "ann", "email": "ann@example.com"})
    code = client.get("/api/v1/members/ann/referrals").json()["referral_code"]
    client.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "id": "s1",
                    "type": "signup",
                    "member": "bob",
                    "occurred_at": "2026-01-01T00:00:00+00:00",
                    "properties": {"referral_code": code},
                }
            ]
        },
    )
    out = _run("referrals", "tree", "-p", "acme", "--root", "ann")
    assert "ann" in out and "bob" in out and "generation sizes: 1: 1" in out


def _refer(client, referrer: str, referee: str) -> None:  # type: ignore[no-untyped-def]
    code = client.get(f"/api/v1/members/{referrer}/referrals").json()["referral_code"]
    event = {
        "id": f"signup-{referee}",
        "type": "signup",
        "member": referee,
        "occurred_at": "2026-01-01T00:00:00+00:00",
        "properties": {"referral_code": code},
    }
    assert client.post("/api/v1/events", json={"events": [event]}).status_code in (200, 202)


def test_tree_prints_each_member_under_its_referrer(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/api/v1/members", json={"external_id": "root", "email": "root@example.com"})
    for child in ("a", "b"):
        _refer(client, "root", child)
    _refer(client, "b", "b1")  # breadth-first order would print b1 right after a
    _refer(client, "a", "a1")
    out = _run("referrals", "tree", "-p", "acme", "--root", "root", "--depth", "3")
    order = [line.lstrip("└├│─ ").split()[0] for line in out.splitlines() if "gen " in line]
    assert order.index("a1") == order.index("a") + 1
    assert order.index("b1") == order.index("b") + 1


def test_export_and_erase(client, program) -> None:  # type: ignore[no-untyped-def]
    set_settings(program.slug, mode="waitlist")
    client.post("/api/v1/waitlist", json={"email": "bob@example.com"})
    client.post("/api/v1/waitlist/bob@example.com/confirm")
    client.post("/api/v1/members", json={"external_id": "ann", "email": "ann@example.com"})
    invite = client.post("/api/v1/members/ann/invites", json={"count": 1}).json()["codes"][0][
        "code"
    ]
    r = client.post(
        f"/api/v1/invites/{invite}/redeem", json={"external_id": "bob", "email": "bob@example.com"}
    )
    assert r.status_code == 201
    exported = client.get("/api/v1/members/bob/export").json()["referrals"]
    assert exported["referred_by"]["source"] == "invite"
    assert exported["waitlist"][0]["email"] == "bob@example.com"
    assert exported["referral_code"]
    ann = client.get("/api/v1/members/ann/export").json()["referrals"]
    assert len(ann["invite_codes"]) == 1 and len(ann["referred_members"]) == 1
    assert client.delete("/api/v1/members/bob").status_code == 204
    with unit_of_work() as session:
        prog = programs.get_program(session, program.slug)
        assert members.find_member_by_email(session, prog.id, "bob@example.com") is None
        from budding.referrals import waitlist

        assert waitlist.waitlist_position(session, prog, "bob@example.com") is None
    # The tree keeps its shape (an anonymous friend), the counts do not change.
    assert client.get("/api/v1/members/ann/referrals").json()["descendants"] == 1
