"""The webhooks dashboard page: adding and editing endpoints."""

from __future__ import annotations

from typing import Any

from tests.accounts.helpers import staff_client
from tests.forms import field_errors


def test_an_endpoints_reasons_are_said_in_the_staffs_language(
    anon_client: Any, program: Any, strict_targets: None
) -> None:
    """The service's own checks of a URL and of the event types, under their inputs in the
    dashboard's language."""
    csrf = staff_client(anon_client, "owner")
    r = anon_client.post(
        "/admin/acme/webhooks",
        data={"csrf_token": csrf, "url": "https://hooks.example/a b"},
        headers={"accept-language": "ko"},
    )
    assert r.status_code == 422
    assert field_errors(r.text) == {
        "url": "공백을 포함할 수 없습니다",
        "event_types": "이벤트 유형을 하나 이상 선택하거나, 전체는 '*'를 선택하세요",
    }
    r = anon_client.post(
        "/admin/acme/webhooks",
        data={"csrf_token": csrf, "url": "http://127.0.0.1/in", "event_types": ["nope.x"]},
        headers={"accept-language": "es"},
    )
    errors = field_errors(r.text)
    # The address's kind and the host are data: filled in as given.
    assert errors["url"].startswith("no puede apuntar a una dirección loopback: 127.0.0.1;")
    assert errors["event_types"].startswith("desconocido: nope.x (conocidos: ")
