"""Staff pages: sign-in, lockout, CSRF, roles, API keys, staff users, programs."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from budding.accounts.models import ApiKey, LoginAttempt, StaffUser
from budding.core.auth import SESSION_COOKIE
from budding.core.config import get_settings
from budding.core.db import unit_of_work
from budding.core.web import create_app
from budding.programs.models import Program
from tests.accounts.helpers import LOGIN_FORM_COOKIE, csrf_token, login, staff_client
from tests.factories import PASSWORD, make_staff
from tests.forms import field_errors


@pytest.fixture
def secure_cookies() -> Iterator[None]:
    os.environ["BUDDING_SECURE_COOKIES"] = "true"
    get_settings.cache_clear()
    yield
    os.environ.pop("BUDDING_SECURE_COOKIES", None)
    get_settings.cache_clear()


def _set_cookie(response, name: str) -> str:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    assert found, f"no {name} cookie set"
    return found[0]


# --- sign in ------------------------------------------------------------------------------


def test_login_sets_signed_httponly_lax_cookie(anon_client) -> None:
    make_staff("ann@example.com")
    r = login(anon_client, "ann@example.com")
    assert r.status_code == 303
    assert r.headers["location"] == "/admin"
    cookie = _set_cookie(r, SESSION_COOKIE)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert "." in value  # signed, not the bare token
    assert anon_client.get("/admin", follow_redirects=False).status_code == 200


def test_secure_cookie_when_configured(app, secure_cookies) -> None:
    make_staff("ann@example.com")
    with TestClient(app, base_url="https://testserver") as client:  # Secure: HTTPS only
        page = client.get("/admin/login")
        assert "Secure" in _set_cookie(page, LOGIN_FORM_COOKIE)
        r = login(client, "ann@example.com")
    assert r.status_code == 303
    assert "Secure" in _set_cookie(r, SESSION_COOKIE)


def test_wrong_password_and_unknown_email_get_the_same_answer(anon_client) -> None:
    make_staff("ann@example.com")
    wrong_password = login(anon_client, "ann@example.com", password="not the password")
    unknown_email = login(anon_client, "nobody@example.com")
    assert wrong_password.status_code == unknown_email.status_code == 401
    message = "Wrong e-mail or password."
    assert message in wrong_password.text and message in unknown_email.text
    assert SESSION_COOKIE not in wrong_password.cookies


def test_deactivated_user_cannot_sign_in(anon_client) -> None:
    make_staff("ann@example.com")
    with unit_of_work() as s:
        s.scalars(select(StaffUser)).one().is_active = False
    r = login(anon_client, "ann@example.com")
    assert r.status_code == 401
    assert "Wrong e-mail or password." in r.text


def test_lockout_after_five_failures_is_shared_through_the_database(database_url) -> None:
    """Two app instances (two server processes) share one lockout: it lives in the database."""
    make_staff("ann@example.com")
    with (
        TestClient(create_app(), raise_server_exceptions=False) as one,
        TestClient(create_app(), raise_server_exceptions=False) as two,
    ):
        for i in range(5):
            client = one if i % 2 == 0 else two
            assert login(client, "ann@example.com", password=f"wrong {i}").status_code == 401
        for client in (one, two):
            r = login(client, "ann@example.com")  # the right password, too late
            assert r.status_code == 429
            assert "Too many failed sign-ins. Try again in 15 minutes." in r.text
            assert r.headers["retry-after"] == str(15 * 60)
            assert SESSION_COOKIE not in r.cookies
        other = login(one, "bob@example.com")  # another account is not locked
        assert other.status_code == 401
    with unit_of_work() as s:
        failures = s.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.email == "ann@example.com", LoginAttempt.success.is_(False))
        )
    assert failures == 5


def test_login_form_needs_its_token(anon_client) -> None:
    make_staff("ann@example.com")
    r = anon_client.post(
        "/admin/login",
        data={"email": "ann@example.com", "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert SESSION_COOKIE not in r.cookies
    anon_client.get("/admin/login")
    r = anon_client.post(
        "/admin/login",
        data={"email": "ann@example.com", "password": PASSWORD, "form_token": "forged"},
        follow_redirects=False,
    )
    assert r.status_code == 403


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "/\\evil.example/phish",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/admin\r\nSet-Cookie: x=1",
    ],
)
def test_next_never_leaves_the_site(anon_client, target: str) -> None:
    make_staff("ann@example.com")
    page = anon_client.get("/admin/login", params={"next": target})
    assert 'name="next" value="/admin"' in page.text
    r = login(anon_client, "ann@example.com", next=target)
    assert r.status_code == 303
    assert r.headers["location"] == "/admin"


def test_next_local_path_is_kept(anon_client, program) -> None:
    make_staff("ann@example.com")
    r = anon_client.get("/admin/acme/members", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/admin/login?next=/admin/acme/members"
    r = login(anon_client, "ann@example.com", next="/admin/acme/members?q=ann")
    assert r.headers["location"] == "/admin/acme/members?q=ann"


def test_htmx_requests_are_sent_to_login(anon_client, program) -> None:
    r = anon_client.get("/admin/acme/members", headers={"HX-Request": "true"})
    assert r.status_code == 204
    assert r.headers["hx-redirect"].startswith("/admin/login?next=")


def test_logout_ends_the_session(anon_client) -> None:
    token = staff_client(anon_client)
    stolen = anon_client.cookies.get(SESSION_COOKIE)
    r = anon_client.post("/admin/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    anon_client.cookies.set(SESSION_COOKIE, stolen)  # a copy of the cookie is dead too
    assert anon_client.get("/admin", follow_redirects=False).status_code == 303


# --- CSRF and roles -------------------------------------------------------------------------


def test_post_without_csrf_token_is_refused(anon_client, program) -> None:
    staff_client(anon_client)
    for data in ({"name": "ci"}, {"name": "ci", "csrf_token": "forged"}):
        r = anon_client.post("/admin/acme/api-keys", data=data)
        assert r.status_code == 403
        assert "the form expired" in r.text
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 0


def test_htmx_header_token_is_accepted(anon_client, program) -> None:
    token = staff_client(anon_client)
    r = anon_client.post(
        "/admin/acme/api-keys", data={"name": "ci"}, headers={"X-CSRF-Token": token}
    )
    assert r.status_code == 201


def test_analyst_sees_pages_but_every_write_is_refused(anon_client, program) -> None:
    make_staff("owner@example.com", role="owner")
    token = staff_client(anon_client, role="analyst")
    for path in ("/admin/acme", "/admin/acme/members", "/admin/acme/api-keys", "/admin/users"):
        page = anon_client.get(path)
        assert page.status_code == 200, path
        assert "Create key" not in page.text and "Add staff user" not in page.text
        assert "Revoke" not in page.text and "Deactivate" not in page.text
    assert "Create program" not in anon_client.get("/admin?all=1").text
    owner_id = _user_id("owner@example.com")
    writes = [
        ("/admin/acme/api-keys", {"name": "ci", "role": "admin"}),
        ("/admin/acme/api-keys/abc/revoke", {}),
        ("/admin", {"slug": "new", "name": "New"}),
        ("/admin/users", {"email": "x@example.com", "password": PASSWORD, "role": "admin"}),
        (f"/admin/users/{owner_id}/deactivate", {}),
    ]
    for path, data in writes:
        r = anon_client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)
        assert r.status_code == 403, path
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 0
        assert s.scalar(select(func.count()).select_from(Program)) == 1
        assert s.scalar(select(func.count()).select_from(StaffUser)) == 2


def test_moderator_cannot_manage_keys(anon_client, program) -> None:
    token = staff_client(anon_client, role="moderator")
    r = anon_client.post("/admin/acme/api-keys", data={"name": "ci", "csrf_token": token})
    assert r.status_code == 403


# --- API keys -------------------------------------------------------------------------------


def test_api_key_secret_is_shown_once_then_only_its_prefix(anon_client, program) -> None:
    token = staff_client(anon_client)
    r = anon_client.post(
        "/admin/acme/api-keys", data={"name": "<b>shop</b>", "role": "admin", "csrf_token": token}
    )
    assert r.status_code == 201
    assert r.headers["cache-control"] == "no-store"
    with unit_of_work() as s:
        prefix = s.scalars(select(ApiKey.prefix)).one()
    secret = r.text.split('data-testid="new-secret">', 1)[1].split("<", 1)[0]
    assert secret.startswith(f"bud_{prefix}_")
    assert "&lt;b&gt;shop&lt;/b&gt;" in r.text and "<b>shop</b>" not in r.text

    api = anon_client.get("/api/v1/members", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 200

    page = anon_client.get("/admin/acme/api-keys")
    assert prefix in page.text
    assert secret not in page.text and secret.removeprefix(f"bud_{prefix}_") not in page.text

    r = anon_client.post(
        f"/admin/acme/api-keys/{prefix}/revoke", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    assert "The API key was revoked." in anon_client.get(r.headers["location"]).text
    api = anon_client.get("/api/v1/members", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 401


def test_api_key_form_errors_name_the_field(anon_client, program) -> None:
    token = staff_client(anon_client)
    r = anon_client.post(
        "/admin/acme/api-keys", data={"name": "  ", "role": "admin", "csrf_token": token}
    )
    assert r.status_code == 422
    assert "must not be empty" in r.text
    r = anon_client.post(
        "/admin/acme/api-keys", data={"name": "x", "role": "owner", "csrf_token": token}
    )
    assert r.status_code == 422
    assert "must be one of admin, analyst" in r.text


def test_keys_of_another_program_cannot_be_revoked(anon_client, program, other_program) -> None:
    token = staff_client(anon_client)
    anon_client.post("/admin/other/api-keys", data={"name": "theirs", "csrf_token": token})
    with unit_of_work() as s:
        prefix = s.scalars(select(ApiKey.prefix)).one()
    r = anon_client.post(f"/admin/acme/api-keys/{prefix}/revoke", data={"csrf_token": token})
    assert r.status_code == 404
    with unit_of_work() as s:
        assert s.scalars(select(ApiKey.revoked_at)).one() is None


# --- staff users ----------------------------------------------------------------------------


def _user_id(email: str) -> int:
    with unit_of_work() as s:
        return s.scalars(select(StaffUser.id).where(StaffUser.email == email)).one()


def test_admin_creates_and_deactivates_staff(anon_client, database_url) -> None:
    token = staff_client(anon_client)
    r = anon_client.post(
        "/admin/users",
        data={
            "email": "Zoe@Example.com",
            "name": "Zoe",
            "role": "analyst",
            "password": PASSWORD,
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = anon_client.get(r.headers["location"])
    assert "The staff user was created." in page.text and "zoe@example.com" in page.text

    with TestClient(create_app(), raise_server_exceptions=False) as zoe:
        assert login(zoe, "zoe@example.com").status_code == 303
        assert zoe.get("/admin", follow_redirects=False).status_code == 200
        r = anon_client.post(
            f"/admin/users/{_user_id('zoe@example.com')}/deactivate",
            data={"csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303
        # Deactivation ends the open session at once, and the next sign-in fails.
        assert zoe.get("/admin", follow_redirects=False).status_code == 303
        assert login(zoe, "zoe@example.com").status_code == 401

    r = anon_client.post(
        f"/admin/users/{_user_id('zoe@example.com')}/activate",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303


def test_staff_form_errors_keep_the_input_and_store_nothing(anon_client) -> None:
    token = staff_client(anon_client)
    r = anon_client.post(
        "/admin/users",
        data={"email": "zoe@example.com", "name": "Zoe", "role": "analyst", "password": "short"},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 422
    assert "must be at least 10 characters" in r.text
    assert 'value="zoe@example.com"' in r.text
    r = anon_client.post(
        "/admin/users",
        data={"email": "admin@example.com", "role": "analyst", "password": PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 409
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(StaffUser)) == 1


def test_only_owners_manage_owners_and_nobody_deactivates_themselves(anon_client) -> None:
    make_staff("owner@example.com", role="owner")
    token = staff_client(anon_client, role="admin")
    r = anon_client.post(
        "/admin/users",
        data={"email": "o2@example.com", "role": "owner", "password": PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 403
    owner = _user_id("owner@example.com")
    r = anon_client.post(f"/admin/users/{owner}/deactivate", headers={"X-CSRF-Token": token})
    assert r.status_code == 403
    me = _user_id("admin@example.com")
    r = anon_client.post(f"/admin/users/{me}/deactivate", headers={"X-CSRF-Token": token})
    assert r.status_code == 403
    assert "you cannot deactivate yourself" in r.text


# --- programs -------------------------------------------------------------------------------


def test_program_list_create_and_single_program_redirect(anon_client) -> None:
    token = staff_client(anon_client, role="owner", email="owner@example.com")
    page = anon_client.get("/admin", follow_redirects=False)
    assert page.status_code == 200 and "There are no programs yet." in page.text
    r = anon_client.post(
        "/admin",
        data={"slug": "acme", "name": "Acme", "default_locale": "ko", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin/acme"
    r = anon_client.get("/admin", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/acme"
    page = anon_client.get("/admin?all=1")
    assert page.status_code == 200 and 'data-testid="program-row"' in page.text


@pytest.mark.parametrize(
    ("slug", "status", "message"),
    [
        ("Bad Slug", 422, "lowercase letters"),
        ("users", 422, "reserved"),
        ("acme", 409, "already taken"),
    ],
)
def test_program_form_errors(anon_client, program, slug: str, status: int, message: str) -> None:
    token = staff_client(anon_client)
    r = anon_client.post(
        "/admin", data={"slug": slug, "name": "X", "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == status
    assert message in r.text
    assert "The program was not created." in r.text


def test_pages_are_not_cached_and_csrf_token_is_on_the_page(anon_client, program) -> None:
    token = staff_client(anon_client)
    page = anon_client.get("/admin/acme")
    assert page.headers["cache-control"] == "no-store"
    assert token == csrf_token(anon_client)


def test_a_staff_form_names_a_services_reason_in_the_staffs_language(anon_client) -> None:
    """The service's own check (a too-short password) is said under its input in the
    dashboard's language, its limit filled in; the API's words stay English."""
    csrf = staff_client(anon_client, "owner")
    r = anon_client.post(
        "/admin/users",
        data={"csrf_token": csrf, "email": "zoe@example.com", "role": "analyst", "password": "x"},
        headers={"accept-language": "ko"},
    )
    assert r.status_code == 422
    assert field_errors(r.text) == {"password": "최소 10자 이상이어야 합니다"}
    r = anon_client.post(
        "/admin/users",
        data={"csrf_token": csrf, "email": "zoe@example.com", "role": "nobody", "password": "x"},
        headers={"accept-language": "es"},
    )
    assert field_errors(r.text) == {"role": "debe ser uno de: owner, admin, moderator, analyst"}
