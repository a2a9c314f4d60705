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
