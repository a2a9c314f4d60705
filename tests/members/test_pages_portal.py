"""The member portal: magic-link sign-in (through a real SMTP server), profile, language."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update

from budding.core.auth import MEMBER_COOKIE
from budding.core.db import unit_of_work, utcnow
from budding.members import service
from budding.members.models import MagicLink, Member
from budding.members.portal import LOCALE_COOKIE
from budding.programs.service import get_program
from tests.forms import field_errors
from tests.mailsink import MailSink
from tests.members.test_pages import add_member


def _member(external_id: str = "ann") -> Member:
    with unit_of_work() as s:
        return service.get_member(s, get_program(s, "acme").id, external_id)


def _link_path(sink: MailSink, address: str, index: int = 0) -> str:
    message = sink.to(address)[index]
    url = urlsplit(MailSink.first_link(message))
    assert f"{url.scheme}://{url.netloc}" == "http://testserver"  # BUDDING_BASE_URL
    return url.path + (f"?{url.query}" if url.query else "")


def _csrf(page_text: str) -> str:
    return page_text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def sign_in(client: Any, sink: MailSink, address: str) -> None:
    r = client.post("/p/acme/sign-in", data={"email": address})
    assert r.status_code == 200
    path = _link_path(sink, address, index=-1)
    r = client.post(path, follow_redirects=False)
    assert r.status_code == 303, r.text


def test_the_answer_is_the_same_whether_or_not_the_address_exists(anon_client, smtp, ann) -> None:
    known = anon_client.post("/p/acme/sign-in", data={"email": "ANN@example.com"})
    unknown = anon_client.post("/p/acme/sign-in", data={"email": "zed@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace("ann@example.com", "X") == unknown.text.replace(
        "zed@example.com", "X"
    )
    assert smtp.wait_for("ann@example.com")
    assert smtp.to("zed@example.com") == []
    assert len(smtp.messages) == 1


def test_magic_link_signs_in_once(anon_client, smtp, ann) -> None:
    anon_client.post("/p/acme/sign-in", data={"email": ann})
    message = smtp.wait_for(ann)
    assert message["To"] == "Ann <ann@example.com>"
    assert message["Subject"] == "Your sign-in link for Acme"
    path = _link_path(smtp, ann)
    assert path.startswith("/p/acme/auth/")
    assert path in MailSink.html(message)

    # Opening the link (a person, or a mail scanner) never consumes it.
    for _ in range(2):
        page = anon_client.get(path)
        assert page.status_code == 200
        assert page.headers["referrer-policy"] == "no-referrer"
        assert 'data-testid="confirm-sign-in"' in page.text
    assert MEMBER_COOKIE not in anon_client.cookies

    r = anon_client.post(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/p/acme/profile"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(MEMBER_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/p/acme" in cookie
    profile = anon_client.get("/p/acme/profile")
    assert profile.status_code == 200 and 'data-testid="profile-name">Ann<' in profile.text

    # Used: neither opening nor pressing works again (on another device, say).
    assert anon_client.get(path).status_code == 410
    anon_client.cookies.clear()
    again = anon_client.post(path, follow_redirects=False)
    assert again.status_code == 410 and 'data-testid="link-invalid"' in again.text


def test_expired_and_foreign_links_do_not_work(anon_client, smtp, ann, other_program) -> None:
    anon_client.post("/p/acme/sign-in", data={"email": ann})
    path = _link_path(smtp, ann)
    token = path.rsplit("/", 1)[1]
    assert anon_client.get(f"/p/other/auth/{token}").status_code == 410
    assert anon_client.post(f"/p/other/auth/{token}").status_code == 410
    with unit_of_work() as s:
        s.execute(update(MagicLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert anon_client.get(path).status_code == 410
    assert anon_client.post(path, follow_redirects=False).status_code == 410
    assert anon_client.post("/p/acme/auth/made-up-token").status_code == 410
    assert MEMBER_COOKIE not in anon_client.cookies


def test_link_lifetime_is_fifteen_minutes(anon_client, smtp, ann) -> None:
    before = utcnow()
    anon_client.post("/p/acme/sign-in", data={"email": ann})
    with unit_of_work() as s:
        link = s.scalars(select(MagicLink)).one()
    assert timedelta(minutes=15) <= link.expires_at - before < timedelta(minutes=15, seconds=30)
    assert link.token_hash not in MailSink.text(smtp.wait_for(ann))  # only the hash is stored


def test_mail_is_in_the_members_language(anon_client, smtp, program) -> None:
    add_member(external_id="minji", name="민지", email="minji@example.com", locale="ko")
    anon_client.post("/p/acme/sign-in", data={"email": "minji@example.com"})
    message = smtp.wait_for("minji@example.com")
    assert message["Subject"] == "Acme 로그인 링크"
    assert "민지님, 안녕하세요" in MailSink.text(message)
    assert 'lang="ko"' in MailSink.html(message)


def test_mail_without_member_language_follows_the_page(anon_client, smtp, ann) -> None:
    anon_client.post(
        "/p/acme/sign-in", data={"email": ann}, headers={"Accept-Language": "es-MX,es;q=0.9"}
    )
    assert smtp.wait_for(ann)["Subject"] == "Tu enlace de acceso a Acme"


def test_next_page_travels_through_the_link(anon_client, smtp, ann) -> None:
    r = anon_client.get("/p/acme/profile", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/p/acme/sign-in?next=/p/acme/profile"
    page = anon_client.get("/p/acme/sign-in", params={"next": "/p/acme/invites"})
    assert 'name="next" value="/p/acme/invites"' in page.text
    anon_client.post("/p/acme/sign-in", data={"email": ann, "next": "/p/acme/invites"})
    path = _link_path(smtp, ann)
    assert path.endswith("?next=/p/acme/invites")
    r = anon_client.post(
        path.split("?")[0], data={"next": "/p/acme/invites"}, follow_redirects=False
    )
    assert r.headers["location"] == "/p/acme/invites"


@pytest.mark.parametrize(
    "target", ["https://evil.example", "//evil.example", "/admin", "/p/other/x"]
)
def test_next_stays_in_the_programs_portal(anon_client, smtp, ann, target: str) -> None:
    page = anon_client.get("/p/acme/sign-in", params={"next": target})
    assert 'name="next" value="/p/acme/profile"' in page.text


def test_too_many_links_are_not_sent(anon_client, smtp, ann) -> None:
    for _ in range(7):
        assert anon_client.post("/p/acme/sign-in", data={"email": ann}).status_code == 200
    smtp.wait_for(ann)
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(MagicLink)) == 5
    assert len(smtp.to(ann)) == 5


def test_invalid_address_is_a_clear_error(anon_client, program) -> None:
    assert field_errors(anon_client.get("/p/acme/sign-in").text) == {}
    r = anon_client.post("/p/acme/sign-in", data={"email": "not an address"})
    assert r.status_code == 422
    # under the input, which is marked invalid and described by it
    assert field_errors(r.text) == {"email": "Enter a valid e-mail address."}
    assert 'value="not an address"' in r.text


def test_mail_failure_is_logged_not_shown(anon_client, ann, caplog, monkeypatch) -> None:
    from budding.core.config import get_settings
    from tests.mailsink import free_port

    monkeypatch.setenv("BUDDING_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("BUDDING_SMTP_PORT", str(free_port()))  # nothing listens
    get_settings.cache_clear()
    try:
        with caplog.at_level(logging.ERROR, logger="budding.members"):
            r = anon_client.post("/p/acme/sign-in", data={"email": ann})
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert r.status_code == 200 and 'data-testid="check-inbox"' in r.text
    assert any("cannot reach the mail server" in rec.getMessage() for rec in caplog.records)


# --- profile, language, sign-out ------------------------------------------------------------


def test_profile_edit_name_and_language(anon_client, smtp, ann) -> None:
    sign_in(anon_client, smtp, ann)
    page = anon_client.get("/p/acme/profile")
    token = _csrf(page.text)
    r = anon_client.post(
        "/p/acme/profile",
        data={"name": "Ann Lee", "locale": "ko", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = anon_client.get(r.headers["location"], headers={"Accept-Language": "en"})
    assert '<html lang="ko">' in page.text
    assert "프로필을 저장했어요." in page.text
    member = _member()
    assert member.name == "Ann Lee" and member.locale == "ko"

    r = anon_client.post(
        "/p/acme/profile", data={"name": "x" * 201, "locale": "ko", "csrf_token": token}
    )
    assert r.status_code == 422
    assert _member().name == "Ann Lee"


@pytest.mark.parametrize(
    ("accept", "data", "field", "expected"),
    [
        ("ko", {"name": "x" * 201}, "name", "이름은 최대 200자까지 입력할 수 있어요."),
        ("es", {"name": "x" * 201}, "name", "Tu nombre puede tener como máximo 200 caracteres."),
        # Longer than the form ever took: still the field's message, not a bare 422 page.
        ("ko", {"name": "x" * 5000}, "name", "이름은 최대 200자까지 입력할 수 있어요."),
        ("en", {"name": "x" * 201}, "name", "Your name can be at most 200 characters long."),
        ("id", {"name": "Ann\nLee"}, "name", "Namamu tidak boleh berisi baris baru atau tab."),
        ("zh-CN", {"name": "Ann\tLee"}, "name", "你的名字不能包含换行符或制表符。"),
        ("ko", {"name": "Ann", "locale": "fr"}, "locale", "목록에서 언어를 선택하세요."),
    ],
)
def test_profile_field_errors_speak_the_members_language(
    anon_client, smtp, ann, accept, data, field, expected
) -> None:
    """The form says what is wrong with which field in the member's language, never
    pydantic's English ("String should have at most 200 characters")."""
    sign_in(anon_client, smtp, ann)
    token = _csrf(anon_client.get("/p/acme/profile").text)
    r = anon_client.post(
        "/p/acme/profile",
        data={"locale": "", **data, "csrf_token": token},
        headers={"Accept-Language": accept},
    )
    assert r.status_code == 422
    error = r.text.split(f'data-testid="profile-{field}-error">', 1)[1].split("<", 1)[0]
    assert error == expected
    for english in ("String should", "Value error", "control characters", "supported locales"):
        assert english not in r.text
    assert _member().name == "Ann"


def test_profile_field_errors_are_tied_to_their_inputs(anon_client, smtp, ann) -> None:
    """Each input in error is marked invalid and described by its message, which a screen
    reader says when it reaches the input."""
    sign_in(anon_client, smtp, ann)
    page = anon_client.get("/p/acme/profile")
    assert field_errors(page.text) == {}
    r = anon_client.post(
        "/p/acme/profile",
        data={"name": "x" * 201, "locale": "fr", "csrf_token": _csrf(page.text)},
        headers={"Accept-Language": "es"},
    )
    assert r.status_code == 422
    assert field_errors(r.text) == {
        "name": "Tu nombre puede tener como máximo 200 caracteres.",
        "locale": "Elige un idioma de la lista.",
    }


def test_profile_post_needs_the_csrf_token(anon_client, smtp, ann) -> None:
    sign_in(anon_client, smtp, ann)
    for data in ({"name": "Evil"}, {"name": "Evil", "csrf_token": "forged"}):
        r = anon_client.post("/p/acme/profile", data=data)
        assert r.status_code == 403
    assert _member().name == "Ann"


def test_language_switch_without_member_uses_a_cookie(anon_client, program) -> None:
    r = anon_client.post(
        "/p/acme/language",
        data={"locale": "ko", "next": "/p/acme/sign-in"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/p/acme/sign-in"
    assert anon_client.cookies.get(LOCALE_COOKIE) == "ko"
    page = anon_client.get("/p/acme/sign-in", headers={"Accept-Language": "es"})
    assert '<html lang="ko">' in page.text and "로그인" in page.text
    r = anon_client.post("/p/acme/language", data={"locale": "fr"})
    assert r.status_code == 422


def test_error_pages_speak_the_members_language(anon_client, program) -> None:
    """A friend opening a dead link sees why in the language they chose (the cookie beats
    Accept-Language, as on every portal page)."""
    anon_client.post("/p/acme/language", data={"locale": "ko", "next": "/p/acme/sign-in"})
    page = anon_client.get("/p/acme/waitlist/me?t=bad", headers={"Accept-Language": "en"})
    assert page.status_code == 404
    assert '<html lang="ko">' in page.text and "존재하지 않아요" in page.text
    anon_client.cookies.clear()
    es = anon_client.get("/p/nowhere/sign-in", headers={"Accept-Language": "es"})
    assert es.status_code == 404 and "no existe" in es.text


def test_language_switch_keeps_the_pages_query(anon_client, program) -> None:
    """Token pages (a waitlist entry's status link) need their query back after the switch."""
    page = anon_client.get("/p/acme/sign-in?next=/p/acme/profile")
    assert 'name="next" value="/p/acme/sign-in?next=/p/acme/profile"' in page.text
    r = anon_client.post(
        "/p/acme/language",
        data={"locale": "ko", "next": "/p/acme/waitlist/me?t=12.abc"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/p/acme/waitlist/me?t=12.abc"


def test_language_switch_of_a_member_is_stored(anon_client, smtp, ann) -> None:
    sign_in(anon_client, smtp, ann)
    token = _csrf(anon_client.get("/p/acme/profile").text)
    r = anon_client.post(
        "/p/acme/language",
        data={"locale": "zh-Hans", "next": "/p/acme/profile", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert _member().locale == "zh_Hans"
    assert anon_client.post("/p/acme/language", data={"locale": "es"}).status_code == 403


@pytest.mark.parametrize(
    ("accept", "default", "lang"),
    [
        ("ko-KR,ko;q=0.9", "en", "ko"),
        ("fr", "es", "es"),
        (None, "id", "id"),
        ("zh-CN", "en", "zh-Hans"),
    ],
)
def test_portal_language_negotiation(anon_client, accept, default, lang) -> None:
    from tests.factories import make_program

    make_program("shop", default_locale=default)
    headers = {"Accept-Language": accept} if accept else {}
    page = anon_client.get("/p/shop/sign-in", headers=headers)
    assert f'<html lang="{lang}">' in page.text


def test_sign_out(anon_client, smtp, ann) -> None:
    sign_in(anon_client, smtp, ann)
    token = _csrf(anon_client.get("/p/acme/profile").text)
    r = anon_client.post("/p/acme/sign-out", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/p/acme/sign-in"
    assert anon_client.get("/p/acme/profile", follow_redirects=False).status_code == 303


def test_member_session_belongs_to_one_program(anon_client, smtp, ann, other_program) -> None:
    sign_in(anon_client, smtp, ann)
    assert anon_client.get("/p/acme", follow_redirects=False).headers["location"] == (
        "/p/acme/profile"
    )
    assert anon_client.get("/p/other", follow_redirects=False).headers["location"] == (
        "/p/other/sign-in"
    )


def test_erased_member_is_signed_out(anon_client, smtp, ann) -> None:
    sign_in(anon_client, smtp, ann)
    with unit_of_work() as s:
        program = get_program(s, "acme")
        service.erase_member(s, program, service.get_member(s, program.id, "ann"))
    assert anon_client.get("/p/acme/profile", follow_redirects=False).status_code == 303


def test_unknown_program_is_not_found(anon_client, database_url) -> None:
    assert anon_client.get("/p/nope/sign-in").status_code == 404
