"""Staff sign-in for page tests: a TestClient that holds a dashboard session."""

from __future__ import annotations

import re
from typing import Any

from tests.factories import PASSWORD, make_staff

LOGIN_FORM_COOKIE = "budding_login_form"
_CSRF = re.compile(r'data-csrf="([^"]+)"')


def login(client: Any, email: str, password: str = PASSWORD, next: str = "") -> Any:
    """Post the login form the way a browser does (form page first, for its token)."""
    page = client.get("/admin/login", params={"next": next} if next else None)
    assert page.status_code == 200, page.text
    token = client.cookies.get(LOGIN_FORM_COOKIE)
    return client.post(
        "/admin/login",
        data={"email": email, "password": password, "next": next, "form_token": token},
        follow_redirects=False,
    )


def staff_client(client: Any, role: str = "admin", email: str | None = None) -> str:
    """Create a staff user with ``role``, sign ``client`` in, and return its CSRF token."""
    address = make_staff(email or f"{role}@example.com", role=role)
    r = login(client, address)
    assert r.status_code == 303, r.text
    return csrf_token(client)


def csrf_token(client: Any) -> str:
    page = client.get("/admin/users")
    assert page.status_code == 200, page.text
    found = _CSRF.search(page.text)
    assert found, "no CSRF token on the page"
    return found.group(1)
