"""Every API route, including those capabilities add later, refuses requests without a key."""

from __future__ import annotations

import re

# Routes that are public by design (none under /api/v1 today besides the OpenAPI document).
PUBLIC = {"/api/v1/openapi.json"}


def _api_routes(app):  # type: ignore[no-untyped-def]
    # The OpenAPI document lists every mounted route, whichever capability added it.
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/api/v1") and path not in PUBLIC:
            for method in operations:
                yield method.upper(), re.sub(r"\{[^}]+\}", "x", path)


def test_every_api_route_needs_a_key(app, anon_client) -> None:
    routes = list(_api_routes(app))
    assert routes, "no API routes found"
    for method, path in routes:
        r = anon_client.request(method, path, json={})
        assert r.status_code == 401, f"{method} {path} answered {r.status_code} without a key"
        assert r.json()["error"]["code"] in {"missing_api_key", "bad_api_key"}


def test_revoked_and_malformed_keys(anon_client, program) -> None:
    from budding.accounts import service as accounts
    from budding.core.db import unit_of_work
    from tests.factories import make_api_key

    key = make_api_key(program.id)
    assert (
        anon_client.get("/api/v1/members", headers={"Authorization": f"Bearer {key}"}).status_code
        == 200
    )
    prefix = key.split("_")[1]
    with unit_of_work() as session:
        accounts.revoke_api_key(session, program_id=program.id, prefix=prefix)
    assert (
        anon_client.get("/api/v1/members", headers={"Authorization": f"Bearer {key}"}).status_code
        == 401
    )
    assert (
        anon_client.get("/api/v1/members", headers={"Authorization": "Bearer nonsense"}).status_code
        == 401
    )
    assert (
        anon_client.get("/api/v1/members", headers={"Authorization": "Basic abc"}).status_code
        == 401
    )


def test_other_programs_data_is_invisible(client, anon_client, other_program) -> None:
    from tests.factories import make_api_key

    client.post("/api/v1/members", json={"external_id": "secret-member", "email": "s@example.com"})
    other = {"Authorization": f"Bearer {make_api_key(other_program.id)}"}
    assert anon_client.get("/api/v1/members/secret-member", headers=other).status_code == 404
    assert anon_client.get("/api/v1/members/secret-member/export", headers=other).status_code == 404
    assert anon_client.delete("/api/v1/members/secret-member", headers=other).status_code == 404
    assert anon_client.get("/api/v1/members", headers=other).json()["members"] == []
    # The other program may create its own member with the same external id and e-mail.
    r = anon_client.post(
        "/api/v1/members",
        json={"external_id": "secret-member", "email": "s@example.com"},
        headers=other,
    )
    assert r.status_code == 201
    assert client.get("/api/v1/members/secret-member").json()["email"] == "s@example.com"


def test_health_and_metrics(anon_client) -> None:
    assert anon_client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    anon_client.get("/api/v1/members")
    text = anon_client.get("/metrics").text
    assert "budding_http_requests_total" in text


def test_openapi_and_docs(anon_client) -> None:
    spec = anon_client.get("/api/v1/openapi.json").json()
    assert "/api/v1/events" in spec["paths"]
    assert anon_client.get("/api/docs").status_code == 200


def test_errors_never_leak_a_stack_trace(client) -> None:
    r = client.get("/api/v1/events", params={"since": "yesterday"})
    assert r.status_code == 422
    assert "since" in r.json()["error"]["fields"]
    assert "Traceback" not in r.text
