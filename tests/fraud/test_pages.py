"""The fraud review queue and settings pages."""

from __future__ import annotations

from budding.core.db import unit_of_work
from budding.fraud import service
from budding.fraud.checks import CHECKS
from budding.programs.service import get_program
from tests.accounts.helpers import staff_client
from tests.forms import field_errors


def _flag(slug: str, email: str) -> int:
    with unit_of_work() as session:
        program = get_program(session, slug)
        service.update_settings(session, program, {"checks": {"disposable_email": "hold"}})
        found = service.assess_signup(
            session,
            program,
            referrer_id=None,
            email=email,
            ip_hash=None,
            device_hash=None,
            properties={},
        )
        assert found.id is not None
        return found.id


def test_queue_shows_reasons_and_decides(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    csrf = staff_client(anon_client)
    first = _flag("acme", "a@yopmail.com")
    second = _flag("acme", "b@yopmail.com")
    page = anon_client.get("/admin/acme/fraud")
    assert page.status_code == 200
    assert page.text.count('data-testid="assessment-row"') == 2
    assert "Disposable e-mail domain" in page.text and "yopmail.com" in page.text
    r = anon_client.post(
        f"/admin/acme/fraud/{first}/approve",
        data={"csrf_token": csrf, "note": "ok"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = anon_client.post(f"/admin/acme/fraud/{second}/reject", data={"csrf_token": csrf})
    assert r.status_code == 200
    assert anon_client.get("/admin/acme/fraud").text.count('data-testid="assessment-row"') == 0
    done = anon_client.get("/admin/acme/fraud", params={"status": "all"}).text
    assert done.count('data-testid="assessment-row"') == 2
    ko = anon_client.get(
        "/admin/acme/fraud", params={"status": "all"}, headers={"accept-language": "ko"}
    )
    assert "일회용" in ko.text


def test_settings_page(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    csrf = staff_client(anon_client)
    assert anon_client.get("/admin/acme/fraud/settings").status_code == 200
    form = {f"check_{c}": "flag" for c in CHECKS}
    form.update(
        csrf_token=csrf,
        velocity_referrer_per_hour="7",
        velocity_ip_per_hour="3",
        ring_window_hours="12",
        ring_min_size="5",
    )
    r = anon_client.post("/admin/acme/fraud/settings", data=form, follow_redirects=False)
    assert r.status_code == 303
    with unit_of_work() as session:
        settings = service.fraud_settings(get_program(session, "acme"))
    assert settings.velocity_referrer_per_hour == 7 and settings.checks["self_email"] == "flag"
    form["ring_min_size"] = "1"
    r = anon_client.post("/admin/acme/fraud/settings", data=form)
    assert r.status_code == 422 and "field-error" in r.text
    # the bound in the staff's language, not pydantic's English
    r = anon_client.post("/admin/acme/fraud/settings", data=form, headers={"accept-language": "ko"})
    assert field_errors(r.text) == {"ring_min_size": "2 이상이어야 합니다."}
    with unit_of_work() as session:
        assert service.fraud_settings(get_program(session, "acme")).ring_min_size == 5


def test_queue_shows_no_bare_at_sign_without_a_domain(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    """An assessment kept without its e-mail domain (erased, or a signup with no address)
    showed a lone "@" under the member."""
    from budding.fraud.models import FraudAssessment

    staff_client(anon_client)
    found = _flag("acme", "a@yopmail.com")
    with unit_of_work() as session:
        row = session.get(FraudAssessment, found)
        assert row is not None
        row.email_domain = ""
    page = anon_client.get("/admin/acme/fraud")
    assert page.status_code == 200
    assert ">@<" not in page.text.replace(" ", "")


def test_unknown_checks_answer_in_english_and_read_in_the_staffs_language(client, program) -> None:  # type: ignore[no-untyped-def]
    """The settings schema's own check (its validator): the API's words stay English; a
    page (``field_messages``) says it in the reader's language, the names as given."""
    import pytest

    from budding.core import i18n
    from budding.core.errors import ValidationFailed, field_messages

    r = client.patch("/api/v1/fraud/settings", json={"checks": {"telepathy": "block"}})
    assert r.status_code == 422
    known = ", ".join(CHECKS)
    assert r.json()["error"]["fields"] == {"checks": f"unknown checks telepathy; known: {known}"}
    with unit_of_work() as session, pytest.raises(ValidationFailed) as caught:
        service.update_settings(
            session, get_program(session, "acme"), {"checks": {"telepathy": "block"}}
        )
    with i18n.use_locale("ko"):
        assert field_messages(caught.value) == {
            "checks": f"알 수 없는 검사 telepathy입니다. 사용할 수 있는 검사: {known}"
        }
