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


# --- errors: the document states the API's own error body, and the codes it answers -----

WRITE_METHODS = {"post", "put", "patch", "delete"}


def _operations(spec: dict[str, Any]):  # type: ignore[no-untyped-def]
    for path, item in spec["paths"].items():
        if path.startswith("/api/v1/"):
            for method, op in item.items():
                yield method, path, op


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _conforms(spec: dict[str, Any], value: Any, schema: dict[str, Any], where: str = "") -> None:
    """``value`` fits ``schema`` (the subset of JSON Schema the error model uses: objects,
    required and additional properties, strings); jsonschema is not a dependency."""
    schema = _resolve(spec, schema)
    kind = schema.get("type")
    if kind == "string":
        assert isinstance(value, str), f"{where}: {value!r} is not a string"
    elif kind == "object":
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        for name in schema.get("required", []):
            assert name in value, f"{where}: {name!r} missing"
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                _conforms(spec, item, properties[name], f"{where}.{name}")
            else:
                assert extra is not False, f"{where}: {name!r} is not allowed"
                if isinstance(extra, dict):
                    _conforms(spec, item, extra, f"{where}.{name}")


def _documented(spec: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    responses = _op(spec, method, path)["responses"]
    assert str(status) in responses, f"{method.upper()} {path}: {status} not documented"
    return responses[str(status)]  # type: ignore[no-any-return]


def _error_schema(spec: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    return _documented(spec, method, path, status)["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


def test_errors_are_documented_as_the_api_answers_them(client) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/api/v1/openapi.json").json()
    schemas = spec["components"]["schemas"]
    # FastAPI's own 422 body ({"detail": [...]}) is nowhere: the API never answers it
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    error = schemas["ErrorOut"]
    detail = _resolve(spec, error["properties"]["error"])
    assert set(detail["required"]) == {"code", "message", "fields"}
    assert detail["additionalProperties"] is True  # extra keys: `remaining`, `job_id`, ...
    assert "validation_failed" in detail["properties"]["code"]["description"]
    for method, path, op in _operations(spec):
        responses = op["responses"]
        name = f"{method.upper()} {path}"
        for status, response in responses.items():
            if status >= "400":
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorOut", f"{name}: {status}"
        # every API route needs a key (tests/core/test_api_security.py)
        assert "401" in responses, name
        # only a route that changes something refuses a read-only key
        if method == "get":
            assert "403" not in responses, name
        elif path != "/api/v1/influence/seeds":  # a POST that only computes: any key
            assert "403" in responses, name
        # any request: 422 for the NUL character in its path, query or body (RequestGuard,
        # before the route: a query parameter the route does not read included)
        assert "422" in responses, name
        if "requestBody" in op:
            assert "400" in responses, name  # a body it cannot read (malformed JSON, ...)
        # any request: too large a Content-Length (RequestGuard, before the route), and
        # the unexpected error
        assert {"413", "500"} <= responses.keys(), name
    # per route: what its service answers
    assert "404" in _op(spec, "get", "/api/v1/members/{external_id}")["responses"]
    assert "404" not in _op(spec, "get", "/api/v1/members")["responses"]
    redeem = _op(spec, "post", "/api/v1/invites/{code}/redeem")["responses"]
    assert {"403", "404", "409", "410"} <= redeem.keys()
    assert "429" in _op(spec, "post", "/api/v1/members/{external_id}/tell-a-friend")["responses"]
    assert "429" not in _op(spec, "post", "/api/v1/members")["responses"]


def test_real_error_answers_fit_the_documented_schema(client, anon_client, program) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import make_api_key

    spec = client.get("/api/v1/openapi.json").json()
    client.post("/api/v1/members", json={"external_id": "ana", "email": "ana@example.com"})
    read_only = {"Authorization": f"Bearer {make_api_key(program.id, role='analyst')}"}
    cases = [
        # (method, documented path, answer)
        ("post", "/api/v1/members", client.post("/api/v1/members", json={"external_id": ""})),
        ("get", "/api/v1/members/{external_id}", client.get("/api/v1/members/nobody")),
        ("get", "/api/v1/members", anon_client.get("/api/v1/members")),
        (
            "post",
            "/api/v1/members",
            anon_client.post("/api/v1/members", json={"external_id": "x"}, headers=read_only),
        ),
        (
            "post",
            "/api/v1/members",
            client.post(
                "/api/v1/members", content=b"{", headers={"content-type": "application/json"}
            ),
        ),
        (
            "post",
            "/api/v1/members/{external_id}/invites",
            client.post("/api/v1/members/ana/invites", json={"count": 100}),
        ),
    ]
    statuses = [answer.status_code for _, _, answer in cases]
    assert statuses == [422, 404, 401, 403, 400, 409]
    for method, path, answer in cases:
        schema = _error_schema(spec, method, path, answer.status_code)
        _conforms(spec, answer.json(), schema, f"{method} {path} {answer.status_code}")
    assert cases[-1][2].json()["error"]["remaining"] >= 0  # an extra key, allowed


def test_an_oversized_request_is_refused_as_documented_on_every_operation(client) -> None:  # type: ignore[no-untyped-def]
    """RequestGuard refuses any /api/ request whose Content-Length is over the limit, before
    a route is chosen, a GET's as a POST's: each operation lists that 413, with the API's
    error body."""
    from budding.core.config import get_settings

    spec = client.get("/api/v1/openapi.json").json()
    too_large = str(get_settings().max_request_bytes + 1)
    seen = 0
    for method, path, _ in _operations(spec):
        url = re.sub(r"\{[^}]+\}", "1", path)
        answer = client.request(method, url, headers={"Content-Length": too_large})
        assert answer.status_code == 413, f"{method.upper()} {path}: {answer.status_code}"
        schema = _error_schema(spec, method, path, 413)
        _conforms(spec, answer.json(), schema, f"{method} {path} 413")
        assert answer.json()["error"]["code"] == "payload_too_large"
        seen += method == "get"
    assert seen > 10  # GET operations, which take no body, among them


def test_nul_in_any_request_is_refused_as_documented_on_every_operation(client) -> None:  # type: ignore[no-untyped-def]
    """RequestGuard refuses the NUL character in a query parameter of any /api/ request,
    one the route does not read too, before a route is chosen: each operation lists that
    422, with the API's error body."""
    spec = client.get("/api/v1/openapi.json").json()
    for method, path, _ in _operations(spec):
        url = re.sub(r"\{[^}]+\}", "1", path) + "?unread=a%00b"
        answer = client.request(method, url)
        assert answer.status_code == 422, f"{method.upper()} {path}: {answer.status_code}"
        _conforms(spec, answer.json(), _error_schema(spec, method, path, 422), f"{method} {path}")
        assert answer.json()["error"]["fields"] == {
            "unread": "must not contain the NUL character (U+0000)"
        }


def test_an_unexpected_error_on_an_api_route_answers_the_documented_body(  # type: ignore[no-untyped-def]
    client, monkeypatch
) -> None:
    """An exception no handler knows (a bug, a lost database): 500 with the API's error body,
    ``internal_error``, and nothing of the exception or its traceback in the answer."""
    from budding.rewards import coupons

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret-detail: the pool table is on fire")

    monkeypatch.setattr(coupons, "pool_stats", broken)
    spec = client.get("/api/v1/openapi.json").json()
    answer = client.get("/api/v1/coupon-pools")
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {
        "error": {
            "code": "internal_error",
            "message": "Something went wrong on our side. Please try again later.",
            "fields": {},
        }
    }
    for leak in ("secret-detail", "RuntimeError", "Traceback", "coupons.py"):
        assert leak not in answer.text
    schema = _error_schema(spec, "get", "/api/v1/coupon-pools", 500)
    _conforms(spec, answer.json(), schema, "get /api/v1/coupon-pools 500")


def test_every_status_code_answered_is_documented(client, anon_client, program) -> None:  # type: ignore[no-untyped-def]
    """Representative requests, successes and refusals: each status code they got is one
    the document lists for the operation (what schemathesis's status-code check found
    missing before: 404 for unknown resources, 409 and 410 from the services, ...)."""
    from tests.factories import make_api_key

    spec = client.get("/api/v1/openapi.json").json()
    read_only = {"Authorization": f"Bearer {make_api_key(program.id, role='analyst')}"}
    member = {"external_id": "ana", "email": "ana@example.com"}
    staff_code = client.post("/api/v1/invites", json={"count": 1}).json()["codes"][0]["code"]
    client.post(f"/api/v1/invites/{staff_code}/revoke")
    hook = client.post(
        "/api/v1/webhooks", json={"url": "https://hooks.example.com/in", "event_types": ["*"]}
    ).json()
    requests = [
        ("post", "/api/v1/members", lambda: client.post("/api/v1/members", json=member)),  # 201
        ("post", "/api/v1/members", lambda: client.post("/api/v1/members", json=member)),  # 200
        (
            "post",
            "/api/v1/members",
            lambda: client.post("/api/v1/members", json={**member, "external_id": "bo"}),
        ),  # 409
        (
            "post",
            "/api/v1/members",
            lambda: client.post(
                "/api/v1/members",
                content=b"x" * 2_000_001,
                headers={"content-type": "application/json"},
            ),
        ),  # 413
        ("get", "/api/v1/members/{external_id}", lambda: client.get("/api/v1/members/bo")),
        ("get", "/api/v1/events", lambda: client.get("/api/v1/events", params={"member": "bo"})),
        ("get", "/api/v1/rewards", lambda: client.get("/api/v1/rewards", params={"member": "bo"})),
        ("get", "/api/v1/fission-tree", lambda: client.get("/api/v1/fission-tree?root=bo")),
        ("get", "/api/v1/jobs/{job_id}", lambda: client.get("/api/v1/jobs/99")),
        ("get", "/api/v1/jobs/{job_id}", lambda: client.get("/api/v1/jobs/0")),  # 422
        (
            "delete",
            "/api/v1/members/{external_id}",
            lambda: anon_client.delete("/api/v1/members/ana", headers=read_only),
        ),  # 403
        (
            "post",
            "/api/v1/invites/{code}/redeem",
            lambda: client.post(
                f"/api/v1/invites/{staff_code}/redeem",
                json={"external_id": "c", "email": "c@example.com"},
            ),
        ),  # 410
        (
            "post",
            "/api/v1/invites/{code}/redeem",
            lambda: client.post(
                "/api/v1/invites/NOPE/redeem", json={"external_id": "c", "email": "c@example.com"}
            ),
        ),  # 404
        (
            "post",
            "/api/v1/members/{external_id}/invites",
            lambda: client.post("/api/v1/members/ana/invites", json={"count": 100}),
        ),  # 409
        (
            "get",
            "/api/v1/webhooks/deliveries/{delivery_id}",
            lambda: client.get("/api/v1/webhooks/deliveries/dlv_x"),
        ),
        (
            "post",
            "/api/v1/webhooks/{webhook_id}/test",
            lambda: client.post(f"/api/v1/webhooks/{hook['id']}/test"),
        ),  # 202
        (
            "delete",
            "/api/v1/reward-rules/{rule_id}",
            lambda: client.delete("/api/v1/reward-rules/5"),
        ),
        (
            "put",
            "/api/v1/share-templates/{key}/{locale}",
            lambda: client.put("/api/v1/share-templates/nope/en", json={"body": "hi {link}"}),
        ),
    ]
    seen = set()
    for method, path, send in requests:
        status = send().status_code
        seen.add(status)
        _documented(spec, method, path, status)
    assert {200, 201, 202, 403, 404, 409, 410, 413, 422} <= seen


def test_schemathesis_finds_no_undocumented_answer(app, client, program) -> None:  # type: ignore[no-untyped-def]
    """Every operation, with data that fits its schema and data that does not: each answer's
    status code is one the document lists, and its body fits the documented schema (the
    status-code and response-schema checks of schemathesis; about 20 s). Every operation
    documents 500, so that check alone would let one pass: no answer may be a 500."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import FailureGroup
    from schemathesis.specs.openapi.checks import (
        response_schema_conformance,
        status_code_conformance,
    )

    # something to find: members (``u0``...), an invite, a webhook
    for i in range(3):
        client.post("/api/v1/members", json={"external_id": f"u{i}"})
    client.post("/api/v1/invites", json={"count": 1})
    client.post(
        "/api/v1/webhooks", json={"url": "https://hooks.example.com/in", "event_types": ["*"]}
    )
    # the influence kernels compile at their first call (numba; a fresh checkout has no
    # cache): seconds that would pass the sweep's 10-second read timeout
    assert client.get("/api/v1/influence/leaders").status_code == 200
    assert client.post("/api/v1/influence/seeds", json={"k": 1}).status_code == 200
    headers = {"Authorization": client.headers["Authorization"]}
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:
            # derandomized: the same cases every run, so the test fails for a change only
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=10 if mode == GenerationMode.POSITIVE else 3,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case):  # type: ignore[no-untyped-def]
                case.call_and_validate(
                    headers=headers,
                    checks=[
                        status_code_conformance,
                        response_schema_conformance,
                        not_a_server_error,
                    ],
                )

            try:
                check()
            except Unsatisfiable:  # negative data for an operation that takes no input
                continue
            except (Exception, FailureGroup) as exc:  # a group of the checks' failures
                failures.append(f"{operation.label} ({mode}): {exc}")
    assert not failures, "\n\n".join(failures)
