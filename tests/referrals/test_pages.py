"""Pages: the public join page (an invite-only launch in the browser), the portal's invite
button, and the admin dashboard (settings, invites, waitlist, fission tree)."""

from __future__ import annotations

import re

from tests.accounts.helpers import staff_client
from tests.forms import field_errors
from tests.referrals.conftest import set_settings, settings_form

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _invite(client, issuer: str = "ann") -> str:  # type: ignore[no-untyped-def]
    client.post(
        "/api/v1/members",
        json={"external_id": issuer, "email": f"{issuer}@example.com", "name": "Ann"},
    )
    return client.post(f"/api/v1/members/{issuer}/invites", json={"count": 1}).json()["codes"][0][
        "code"
    ]


def test_invite_only_launch_in_the_browser(client, anon_client, program) -> None:  # type: ignore[no-untyped-def]
    set_settings(program.slug, mode="invite_only", invite_quota=2)
    code = _invite(client)
    start = anon_client.get("/p/acme/join")
    assert start.status_code == 200 and 'data-testid="invite-code"' in start.text
    r = anon_client.get("/p/acme/join", params={"code": code.lower()}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/p/acme/join/{code}"
    page = anon_client.get(f"/p/acme/join/{code}")
    assert page.status_code == 200 and "Ann invited you" in page.text
    r = anon_client.post(f"/p/acme/join/{code}", data={"name": "Bob", "email": "not an address"})
    assert r.status_code == 422 and 'data-testid="join-error"' in r.text
    r = anon_client.post(
        f"/p/acme/join/{code}",
        data={"name": "Bob", "email": "Bob@Example.com"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/p/acme/welcome"
    welcome = anon_client.get("/p/acme/welcome")
    assert welcome.status_code == 200
    assert "You joined through Ann" in welcome.text and "Invites left: 2 of 2" in welcome.text
    # Bob takes an invite code of his own from the page (a POST with the member's CSRF token).
    token = CSRF.search(welcome.text).group(1)  # type: ignore[union-attr]
    r = anon_client.post(
        "/p/acme/invites", data={"next": "/p/acme/welcome"}, follow_redirects=False
    )
    assert r.status_code == 403  # no CSRF token
    r = anon_client.post(
        "/p/acme/invites",
        data={"csrf_token": token, "next": "/p/acme/welcome"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    # the member's own code reads the same on this page as in the share kit
    welcome = anon_client.get("/p/acme/welcome").text
    assert "Ready to share" in welcome and "Available" not in welcome
    assert "Ready to share" in anon_client.get("/p/acme/invite").text
    bob = client.get("/api/v1/members/bob@example.com/invites").json()
    assert bob["issued"] == 1 and bob["left"] == 1
    tree = client.get("/api/v1/fission-tree", params={"root": "ann"}).json()
    assert [n["external_id"] for n in tree["nodes"]] == ["ann", "bob@example.com"]
    # The code is spent: its page says so and a second friend cannot use it.
    other = anon_client.get(f"/p/acme/join/{code}")
    assert other.status_code == 410 and 'data-testid="refusal"' in other.text
    assert anon_client.get("/p/acme/join/ZZZZZZZZZZZZ").status_code == 404


def test_join_page_in_spanish(client, anon_client) -> None:  # type: ignore[no-untyped-def]
    code = _invite(client)
    page = anon_client.get(f"/p/acme/join/{code}", headers={"accept-language": "es"})
    assert page.status_code == 200 and "Aceptar la invitación" in page.text


def test_admin_pages(client, anon_client, program) -> None:  # type: ignore[no-untyped-def]
    code = _invite(client)
    client.post(
        f"/api/v1/invites/{code}/redeem", json={"external_id": "bob", "email": "bob@example.com"}
    )
    assert anon_client.get("/admin/acme/referrals", follow_redirects=False).status_code == 303
    csrf = staff_client(anon_client)
    for path, marker in [
        ("/admin/acme/referrals", 'data-testid="referral-settings"'),
        ("/admin/acme/invites", 'data-testid="invite-table"'),
        ("/admin/acme/waitlist", 'data-testid="waitlist-table"'),
        ("/admin/acme/fission-tree", 'data-testid="fission-tree"'),
    ]:
        page = anon_client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert marker in page.text, path
    roots = anon_client.get("/admin/acme/fission-tree/children.json").json()
    assert roots["total"] == 1 and roots["nodes"][0]["id"] == "ann"
    kids = anon_client.get("/admin/acme/fission-tree/children.json", params={"node": "ann"}).json()
    assert [n["id"] for n in kids["nodes"]] == ["bob"]
    found = anon_client.get("/admin/acme/fission-tree/search.json", params={"q": "bob"}).json()
    assert found["results"][0]["path"] == ["ann", "bob"]
    sub = anon_client.get("/admin/acme/fission-tree/subtree.json", params={"root": "ann"}).json()
    assert len(sub["nodes"]) == 2
    # The view's data routes answer errors in JSON too, which its script can read.
    missing = anon_client.get("/admin/acme/fission-tree/children.json", params={"node": "zed"})
    assert missing.status_code == 404 and "error" in missing.json()
    bad = anon_client.get("/admin/acme/fission-tree/children.json", params={"limit": 0})
    assert bad.status_code == 422 and "limit" in bad.json()["error"]["fields"]
    # Settings: a bad value names its field and saves nothing; a good one is saved.
    r = anon_client.post(
        "/admin/acme/referrals/settings",
        data=settings_form(csrf, mode="invite_only", invite_quota="lots"),
    )
    assert r.status_code == 422 and "invite_quota" in r.text
    assert client.get("/api/v1/referrals/settings").json()["mode"] == "open"
    r = anon_client.post(
        "/admin/acme/referrals/settings",
        data=settings_form(
            csrf,
            mode="invite_only",
            invite_quota="5",
            code_expiry_days="",
            attribution_window_days="14",
            attribution_model="first_touch",
            conversion_condition="amount >= 20",
        ),
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    saved = client.get("/api/v1/referrals/settings").json()
    assert saved["mode"] == "invite_only" and saved["invite_quota"] == 5
    assert (
        saved["attribution_model"] == "first_touch"
        and saved["conversion_condition"] == "amount >= 20"
    )
    assert saved["waitlist_require_confirmation"] is False  # an unticked box
    # Issue team codes and revoke one from the invites page.
    r = anon_client.post(
        "/admin/acme/invites",
        data={"csrf_token": csrf, "count": "2", "uses": "5"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "issued=" in r.headers["location"]
    issued = r.headers["location"].split("issued=")[1].split(",")
    page = anon_client.get(r.headers["location"])
    assert 'data-testid="issued-codes"' in page.text
    r = anon_client.post(
        f"/admin/acme/invites/{issued[0]}/revoke", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert r.status_code == 303
    assert client.get(f"/api/v1/invites/{issued[0]}").json()["status"] == "revoked"
    r = anon_client.post(
        "/admin/acme/invites", data={"csrf_token": csrf, "count": "9", "member": "ann"}
    )
    assert r.status_code == 409
    assert field_errors(r.text)["count"].startswith("at most ")
    # numbers that are not numbers are named on the page, and issue nothing
    before = len(client.get("/api/v1/invites").json())
    for data in ({"count": "2", "uses": "-1"}, {"count": "2", "uses": "many"}, {"count": "abc"}):
        r = anon_client.post("/admin/acme/invites", data={"csrf_token": csrf, **data})
        assert r.status_code == 422 and 'data-testid="invite-table"' in r.text, data
        assert set(field_errors(r.text)) == {"uses" if "uses" in data else "count"}
    assert len(client.get("/api/v1/invites").json()) == before


def test_admin_waitlist_release(client, anon_client, program) -> None:  # type: ignore[no-untyped-def]
    set_settings(program.slug, mode="waitlist", waitlist_require_confirmation=False)
    for i in range(3):
        client.post("/api/v1/waitlist", json={"email": f"p{i}@example.com"})
    csrf = staff_client(anon_client)
    page = anon_client.get("/admin/acme/waitlist")
    assert "p0@example.com" in page.text
    entry_id = re.search(r"/waitlist/entry/(\d+)", page.text).group(1)  # type: ignore[union-attr]
    history = anon_client.get(f"/admin/acme/waitlist/entry/{entry_id}")
    assert history.status_code == 200 and "Joined the waitlist" in history.text
    r = anon_client.post(
        "/admin/acme/waitlist/release",
        data={"csrf_token": csrf, "count": "2"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "released=2" in r.headers["location"]
    assert client.get("/api/v1/waitlist/p0@example.com").json()["status"] == "released"
    assert client.get("/api/v1/waitlist/p2@example.com").json()["position"] == 1
    # a count that is not a whole number is named on the waitlist page, which keeps its form
    for count in ("", "0", "-5", "ten", "1000000000000"):
        r = anon_client.post(
            "/admin/acme/waitlist/release", data={"csrf_token": csrf, "count": count}
        )
        assert r.status_code == 422 and "p2@example.com" in r.text, count
        assert set(field_errors(r.text)) == {"count"}
    assert client.get("/api/v1/waitlist/p2@example.com").json()["status"] == "waiting"


def test_admin_forms_name_any_bad_field_on_their_page(client, anon_client, program) -> None:  # type: ignore[no-untyped-def]
    """However long or odd what was typed, the invites and waitlist forms answer with their
    page and the field named, never a bare error page (or a 500)."""
    set_settings(program.slug, mode="waitlist", waitlist_require_confirmation=False)
    client.post("/api/v1/waitlist", json={"email": "p0@example.com"})
    csrf = staff_client(anon_client)
    for count in ("1" * 21, "9" * 5000, "²", "٣", "0" * 40):
        r = anon_client.post(
            "/admin/acme/waitlist/release", data={"csrf_token": csrf, "count": count}
        )
        assert r.status_code == 422 and 'data-testid="release-form"' in r.text, count[:30]
        assert "p0@example.com" in r.text and set(field_errors(r.text)) == {"count"}
    assert client.get("/api/v1/waitlist/p0@example.com").json()["status"] == "waiting"
    before = len(client.get("/api/v1/invites").json())
    for data, name in (
        ({"count": "1" * 11}, "count"),
        ({"count": "2", "uses": "1" * 11}, "uses"),
        ({"count": "2", "uses": "²"}, "uses"),
        ({"count": "1", "note": "n" * 201}, "note"),
        ({"count": "1", "member": "m" * 201}, "member"),
    ):
        r = anon_client.post("/admin/acme/invites", data={"csrf_token": csrf, **data})
        assert r.status_code == 422 and 'data-testid="issue-form"' in r.text, name
        assert set(field_errors(r.text)) == {name}, name
    assert len(client.get("/api/v1/invites").json()) == before
    # a leading zero is still a number
    r = anon_client.post(
        "/admin/acme/invites",
        data={"csrf_token": csrf, "count": "02", "note": "n" * 200},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]
    assert len(client.get("/api/v1/invites").json()) == before + 2
    page = anon_client.get("/admin/acme/invites", params={"member": "m" * 201})
    assert page.status_code == 200 and 'data-testid="issue-form"' in page.text
    assert "No member mmm" in page.text


def test_analyst_cannot_change_settings(client, anon_client) -> None:  # type: ignore[no-untyped-def]
    csrf = staff_client(anon_client, role="analyst")
    r = anon_client.post(
        "/admin/acme/referrals/settings", data={"csrf_token": csrf, "mode": "waitlist"}
    )
    assert r.status_code == 403
    assert client.get("/api/v1/referrals/settings").json()["mode"] == "open"


def _input(html: str, name: str) -> str:
    """The opening tag of the form control named ``name``."""
    at = html.index(f'name="{name}"')
    return html[html.rindex("<", 0, at) : html.index(">", at) + 1]


def test_referral_settings_errors_keep_what_was_typed(client, anon_client, program) -> None:  # type: ignore[no-untyped-def]
    """A refused settings form comes back as it was typed, each reason under its field in
    the dashboard's field-error style, tied to its input for screen readers."""
    csrf = staff_client(anon_client)
    r = anon_client.post(
        "/admin/acme/referrals/settings",
        data={
            "csrf_token": csrf,
            "mode": "waitlist",
            "invite_quota": "lots",
            "code_uses": "4",
            "code_expiry_days": "",
            "attribution_window_days": "14",
            "attribution_model": "first_touch",
            "conversion_event": "Not An Event",
            "conversion_condition": "amount >= 20",
            "waitlist_skip_places": "7",
            "waitlist_skip_cap": "70",
            "waitlist_protected_top": "3",
        },
    )
    assert r.status_code == 422
    html = r.text
    assert '<small class="error">' not in html
    errors = field_errors(html)
    assert set(errors) == {"invite_quota", "conversion_event"}
    assert "must be an event type" in errors["conversion_event"]
    # what was typed, not the saved settings (open, 3, 1, 30, last touch, purchase, ...)
    assert 'value="lots"' in _input(html, "invite_quota")
    assert 'value="4"' in _input(html, "code_uses")
    assert 'value="14"' in _input(html, "attribution_window_days")
    assert 'value="Not An Event"' in _input(html, "conversion_event")
    assert 'value="amount &gt;= 20"' in _input(html, "conversion_condition")
    assert 'value="70"' in _input(html, "waitlist_skip_cap")
    assert '<option value="waitlist" selected>' in html
    assert '<option value="first_touch" selected>' in html
    assert "checked" not in _input(html, "waitlist_require_confirmation")  # left unticked
    assert client.get("/api/v1/referrals/settings").json()["mode"] == "open"  # nothing saved
    # A fresh page shows the saved settings and no errors.
    page = anon_client.get("/admin/acme/referrals")
    assert field_errors(page.text) == {}
    assert 'value="3"' in _input(page.text, "invite_quota")
    assert "checked" in _input(page.text, "waitlist_require_confirmation")


def test_join_and_waitlist_forms_tie_errors_to_their_inputs(client, anon_client, program) -> None:  # type: ignore[no-untyped-def]
    set_settings(program.slug, mode="invite_only")
    code = _invite(client)
    assert field_errors(anon_client.get(f"/p/acme/join/{code}").text) == {}
    r = anon_client.post(f"/p/acme/join/{code}", data={"name": "Bob", "email": "not an address"})
    assert r.status_code == 422
    assert field_errors(r.text) == {"email": "Enter a valid e-mail address."}
    assert 'value="not an address"' in _input(r.text, "email")
    r = anon_client.post(
        f"/p/acme/join/{code}", data={"email": "nope"}, headers={"Accept-Language": "es"}
    )
    assert field_errors(r.text) == {"email": "Escribe una dirección de correo válida."}
    # A code that does not exist is the code field's error.
    r = anon_client.get("/p/acme/join", params={"code": "!!"})
    assert field_errors(r.text) == {
        "code": "This invite code does not exist. Check it and try again."
    }
    r = anon_client.get("/p/acme/join/ZZZZZZZZZZZZ")
    assert r.status_code == 404
    assert field_errors(r.text) == {
        "code": "This invite code does not exist. Check it and try again."
    }
    # The waitlist's e-mail field.
    set_settings(program.slug, mode="waitlist")
    r = anon_client.post("/p/acme/waitlist", data={"email": "nope"})
    assert r.status_code == 422
    assert field_errors(r.text) == {"email": "Enter a valid e-mail address."}
    # A refusal that is no field's stays above the form, and marks no input.
    client.post("/api/v1/members", json={"external_id": "cy", "email": "cy@example.com"})
    r = anon_client.post("/p/acme/waitlist", data={"email": "cy@example.com"})
    assert 'data-testid="waitlist-error"' in r.text and field_errors(r.text) == {}


def test_settings_form_takes_only_known_event_types(client, anon_client, program) -> None:  # type: ignore[no-untyped-def]
    """The qualifying conversion's event type is one the program knows (offered by the
    form); another is refused under its field, since no such event would be accepted."""
    csrf = staff_client(anon_client)
    client.post("/api/v1/event-types", json={"name": "order.paid"})
    page = anon_client.get("/admin/acme/referrals").text
    assert 'list="conversion-event-types"' in _input(page, "conversion_event")
    assert '<option value="order.paid">' in page and '<option value="purchase">' in page
    form = settings_form(csrf, conversion_event="order.refunded")
    r = anon_client.post("/admin/acme/referrals/settings", data=form)
    assert r.status_code == 422
    errors = field_errors(r.text)
    assert set(errors) == {"conversion_event"} and "order.paid" in errors["conversion_event"]
    assert client.get("/api/v1/referrals/settings").json()["conversion_event"] == "purchase"
    form["conversion_event"] = "order.paid"
    r = anon_client.post("/admin/acme/referrals/settings", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert client.get("/api/v1/referrals/settings").json()["conversion_event"] == "order.paid"


def test_settings_say_the_services_reason_in_the_staffs_language(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    """An unknown conversion event (the service's own check, not pydantic's) is said under
    its input in the dashboard's language; the event type and the known ones are data."""
    csrf = staff_client(anon_client, "owner")
    r = anon_client.post(
        "/admin/acme/referrals/settings",
        data=settings_form(csrf, conversion_event="nope"),
        headers={"accept-language": "ko"},
    )
    assert r.status_code == 422
    reason = field_errors(r.text)["conversion_event"]
    assert reason.startswith("'nope'은(는) 이 프로그램의 이벤트 유형이 아닙니다."), reason
    assert "purchase" in reason


def test_invite_and_release_forms_say_why_in_the_staffs_language(
    client, anon_client, program
) -> None:  # type: ignore[no-untyped-def]
    """The invites and waitlist forms name each bad field under its input in the
    dashboard's language (the page's own checks and the services' alike), with a banner in
    that language too: never the API's English message."""
    set_settings(program.slug, mode="waitlist", invite_quota=2, waitlist_require_confirmation=False)
    client.post("/api/v1/waitlist", json={"email": "p0@example.com"})
    client.post("/api/v1/members", json={"external_id": "ann", "email": "ann@example.com"})
    csrf = staff_client(anon_client)
    ko = {"accept-language": "ko"}
    es = {"accept-language": "es"}
    r = anon_client.post(
        "/admin/acme/invites", data={"csrf_token": csrf, "member": "ghost"}, headers=ko
    )
    assert r.status_code == 404
    assert field_errors(r.text) == {"member": "알 수 없는 회원입니다"}
    assert "코드를 발급하지 않았어요. 아래 항목을 확인해 주세요." in r.text
    assert "unknown member" not in r.text and "no member" not in r.text
    r = anon_client.post(
        "/admin/acme/invites", data={"csrf_token": csrf, "count": "abc"}, headers=es
    )
    assert r.status_code == 422
    assert field_errors(r.text) == {"count": "debe ser un número entero de 1 o más"}
    r = anon_client.post(
        "/admin/acme/invites",
        data={"csrf_token": csrf, "count": "1", "note": "n" * 201},
        headers=es,
    )
    assert field_errors(r.text) == {"note": "debe tener como máximo 200 caracteres"}
    r = anon_client.post(
        "/admin/acme/invites", data={"csrf_token": csrf, "count": "20000"}, headers=es
    )
    assert field_errors(r.text) == {"count": "debe estar entre 1 y 10000"}
    r = anon_client.post(
        "/admin/acme/invites", data={"csrf_token": csrf, "count": "9", "member": "ann"}, headers=ko
    )
    assert r.status_code == 409
    assert field_errors(r.text) == {"count": "최대 2개"}
    assert "invites left" not in r.text
    for count, reason in (
        ("ten", "1 이상의 정수여야 합니다"),
        ("20000", "1에서 10000 사이여야 합니다"),
    ):
        r = anon_client.post(
            "/admin/acme/waitlist/release", data={"csrf_token": csrf, "count": count}, headers=ko
        )
        assert r.status_code == 422 and 'data-testid="release-form"' in r.text
        assert field_errors(r.text) == {"count": reason}, count
        assert "아무도 내보내지 않았어요. 아래 항목을 확인해 주세요." in r.text
        assert "count:" not in r.text
    assert client.get("/api/v1/waitlist/p0@example.com").json()["status"] == "waiting"


def test_settings_say_the_schemas_reasons_in_the_staffs_language(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    """The settings schema's own checks (its validators: an event type's form, a
    condition) under their inputs in the dashboard's language; what was typed is data."""
    csrf = staff_client(anon_client, "owner")
    form = settings_form(csrf, conversion_event="Order Paid", conversion_condition="amount >= lots")
    r = anon_client.post(
        "/admin/acme/referrals/settings", data=form, headers={"accept-language": "es"}
    )
    assert r.status_code == 422
    assert field_errors(r.text) == {
        "conversion_event": "debe ser un tipo de evento: letras minúsculas, dígitos, '_' o '.'",
        "conversion_condition": ">= compara números; 'lots' no es un número",
    }
