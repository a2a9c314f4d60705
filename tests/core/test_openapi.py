"""The OpenAPI document states what the validation enforces: a request the schema calls
valid is not refused for a bound, pattern, enum or null that only a validator or the
service knew (found with schemathesis's positive data; cross-field and stored-state rules
such as "until after since" or "no members yet" cannot be stated and are left out)."""

from __future__ import annotations

import re
from typing import Any


def _op(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return spec["paths"][path][method]  # type: ignore[no-any-return]


def _param(spec: dict[str, Any], method: str, path: str, name: str) -> dict[str, Any]:
    params = _op(spec, method, path)["parameters"]
    return next(p["schema"] for p in params if p["name"] == name)  # type: ignore[no-any-return]


def _body(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    ref = _op(spec, method, path)["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]


def test_the_schema_states_the_constraints_the_api_enforces(client) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/api/v1/openapi.json").json()
    # enums the services check
    assert _param(spec, "get", "/api/v1/referrals", "status")["enum"] == [
        "active",
        "held",
        "approved",
        "rejected",
    ]
    assert "revoked" in _param(spec, "get", "/api/v1/invites", "status")["enum"]
    assert (
        "zh-Hans" in _param(spec, "put", "/api/v1/share-templates/{key}/{locale}", "locale")["enum"]
    )
    # settings patches: the settings' bounds, and no null where the setting takes none
    referrals = _body(spec, "patch", "/api/v1/referrals/settings")["properties"]
    assert referrals["mode"]["enum"] == ["open", "invite_only", "waitlist"]
    assert "anyOf" not in referrals["mode"] and "default" not in referrals["mode"]
    assert referrals["attribution_window_days"]["maximum"] == 365
    assert referrals["code_expiry_days"]["anyOf"][1] == {"type": "null"}  # none: no expiry
    fraud = _body(spec, "patch", "/api/v1/fraud/settings")["properties"]
    assert fraud["ring_min_size"]["anyOf"][0]["minimum"] == 2
    sharing = _body(spec, "patch", "/api/v1/sharing/settings")["properties"]
    assert sharing["channels"]["minItems"] == 1 and sharing["channels"]["type"] == "array"
    # patterns the validators check, in their own words
    name = _body(spec, "post", "/api/v1/event-types")["properties"]["name"]
    assert re.match(name["pattern"], "order.paid") and not re.match(name["pattern"], "Order")
    assert "purchase" in name["not"]["enum"]
    external_id = _body(spec, "post", "/api/v1/members")["properties"]["external_id"]
    assert external_id["maxLength"] == 200 and not re.match(external_id["pattern"], "  ")
    condition = referrals["conversion_condition"]["anyOf"][0]["pattern"]  # null: none
    assert re.match(condition, "amount >= 20") and not re.match(condition, "amount >= lots")
    webhook = _body(spec, "post", "/api/v1/webhooks")["properties"]
    assert not re.match(webhook["url"]["pattern"], "ftp://example.com")
    assert "referral.converted" in webhook["event_types"]["items"]["enum"]


def test_the_stated_constraints_keep_the_api_s_words(client) -> None:  # type: ignore[no-untyped-def]
    """Stating a rule in the schema changed none of the reasons a refusal gives."""
    r = client.get("/api/v1/referrals", params={"status": "bogus"})
    assert r.json()["error"]["fields"] == {
        "status": "must be one of active, held, approved, rejected"
    }
    r = client.post("/api/v1/event-types", json={"name": "Order"})
    assert "must be lower-case letters" in r.json()["error"]["fields"]["name"]
    r = client.post("/api/v1/members", json={"external_id": " "})
    assert r.json()["error"]["fields"]["external_id"] == (
        "must be 1-200 characters without control characters"
    )
    r = client.patch("/api/v1/referrals/settings", json={"mode": None})
    assert r.status_code == 422 and "mode" in r.json()["error"]["fields"]
    r = client.patch("/api/v1/fraud/settings", json={"ring_min_size": 1})
    assert r.json()["error"]["fields"] == {
        "ring_min_size": "Input should be greater than or equal to 2"
    }
    r = client.patch("/api/v1/sharing/settings", json={"channels": []})
    assert r.json()["error"]["fields"] == {"channels": "offer at least one channel"}
