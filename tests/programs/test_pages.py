"""The programs page (``/admin``): creating a program."""

from __future__ import annotations

from typing import Any

from tests.accounts.helpers import staff_client
from tests.forms import field_errors


def test_a_taken_slug_is_said_in_the_staffs_language(anon_client: Any, program: Any) -> None:
    """The service's own refusal (a taken slug) under its input, in the dashboard's
    language; the API's words stay English."""
    csrf = staff_client(anon_client, "owner")
    r = anon_client.post(
        "/admin",
        data={"csrf_token": csrf, "slug": "acme", "name": "Again"},
        headers={"accept-language": "es"},
    )
    assert r.status_code == 409
    assert field_errors(r.text) == {"slug": "ya está en uso"}


def test_a_bad_slug_or_url_is_said_in_the_staffs_language(anon_client: Any, program: Any) -> None:
    """The schema's own checks (its validators, not pydantic's kinds) under their inputs
    in the dashboard's language; a reserved name is data, filled in as typed."""
    csrf = staff_client(anon_client, "owner")
    r = anon_client.post(
        "/admin",
        data={"csrf_token": csrf, "slug": "Not A Slug!", "name": "X", "landing_url": "ftp://x"},
        headers={"accept-language": "es"},
    )
    assert r.status_code == 422
    assert field_errors(r.text) == {
        "slug": "usa de 1 a 64 letras minúsculas, dígitos y guiones",
        "landing_url": "debe empezar por http:// o https://",
    }
    r = anon_client.post(
        "/admin",
        data={"csrf_token": csrf, "slug": "login", "name": "X"},
        headers={"accept-language": "ko"},
    )
    assert r.status_code == 422
    assert field_errors(r.text) == {
        "slug": "'login'은(는) 대시보드 자체 페이지용으로 예약되어 있습니다"
    }
