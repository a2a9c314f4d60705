"""Portal sessions end on the server: a cookie copied before sign-out stops working."""

from __future__ import annotations

from typing import Any

from budding.core.auth import MEMBER_COOKIE, member_cookie_value
from budding.core.db import unit_of_work
from budding.members import service
from budding.programs.service import get_program
from tests.members.test_pages_portal import _csrf, sign_in


def _copy(app: Any, cookie: str) -> Any:
    """A second browser holding a copy of ``cookie`` (what a thief would do)."""
    from fastapi.testclient import TestClient

    other = TestClient(app, raise_server_exceptions=False)
    other.cookies.set(MEMBER_COOKIE, cookie, path="/p/acme")
    return other


def _signed_in(client: Any) -> bool:
    return client.get("/p/acme/profile", follow_redirects=False).status_code == 200


def test_a_cookie_captured_before_sign_out_is_refused_after_it(app, anon_client, smtp, ann) -> None:
    sign_in(anon_client, smtp, ann)
    captured = anon_client.cookies.get(MEMBER_COOKIE)
    assert captured
    with _copy(app, captured) as thief:
        assert _signed_in(thief)
        token = _csrf(anon_client.get("/p/acme/profile").text)
        r = anon_client.post("/p/acme/sign-out", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303
        assert not _signed_in(anon_client)
        r = thief.get("/p/acme/profile", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/p/acme/sign-in")
        # Nor can it post: it is not a session any more, so the form is for nobody.
        thief_token = token  # the CSRF token of the captured cookie
        r = thief.post(
            "/p/acme/profile",
            data={"name": "Mallory", "csrf_token": thief_token},
            follow_redirects=False,
        )
        assert r.status_code == 303
    with unit_of_work() as s:
        assert service.get_member(s, get_program(s, "acme").id, "ann").name == "Ann"


def test_signing_out_ends_every_session_and_signing_in_again_works(
    app, anon_client, smtp, ann
) -> None:
    from fastapi.testclient import TestClient

    sign_in(anon_client, smtp, ann)
    first = anon_client.cookies.get(MEMBER_COOKIE)
    with TestClient(app, raise_server_exceptions=False) as laptop:
        sign_in(laptop, smtp, ann)  # a second device with its own session
        assert _signed_in(laptop)
        assert laptop.cookies.get(MEMBER_COOKIE) != first
        token = _csrf(anon_client.get("/p/acme/profile").text)
        anon_client.post("/p/acme/sign-out", data={"csrf_token": token})
        assert not _signed_in(laptop)
        sign_in(laptop, smtp, ann)  # a new magic link starts a new session
        assert _signed_in(laptop)
        assert laptop.cookies.get(MEMBER_COOKIE) != first
    assert not _signed_in(anon_client)


def test_a_cookie_without_a_session_version_stops_working_after_sign_out(
    anon_client, smtp, ann, program
) -> None:
    """``core.auth.member_cookie_value`` (no version) is version 0: valid until the first
    sign-out, like any other session."""
    with unit_of_work() as s:
        member = service.get_member(s, program.id, "ann")
        legacy = member_cookie_value(program.id, member.id)
    anon_client.cookies.set(MEMBER_COOKIE, legacy, path="/p/acme")
    assert _signed_in(anon_client)
    with unit_of_work() as s:
        service.end_member_sessions(s, service.get_member(s, program.id, "ann"))
    assert not _signed_in(anon_client)


def test_erasure_ends_the_members_sessions(app, anon_client, smtp, ann) -> None:
    sign_in(anon_client, smtp, ann)
    with unit_of_work() as s:
        program = get_program(s, "acme")
        member = service.get_member(s, program.id, "ann")
        before = member.session_version
        service.erase_member(s, program, member)
        assert member.session_version == before + 1
    assert not _signed_in(anon_client)
