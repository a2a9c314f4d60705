"""HEAD is answered wherever GET is (RFC 9110 §9.3.2): uptime monitors and link checkers
ask with HEAD, and a 405 reads to them as a broken page."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(
    "path", ["/p/acme/sign-in", "/admin/login", "/healthz", "/api/v1/openapi.json"]
)
def test_head_answers_like_get_without_a_body(anon_client: Any, program: Any, path: str) -> None:
    got = anon_client.get(path)
    head = anon_client.head(path)
    assert got.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers["x-content-type-options"] == "nosniff"


def test_head_on_a_route_without_get_is_refused_like_get(anon_client: Any) -> None:
    # POST only: HEAD is refused as GET is, and still answers no body
    got = anon_client.get("/api/v1/influence/seeds")
    head = anon_client.head("/api/v1/influence/seeds")
    assert got.status_code == head.status_code == 405
    assert head.content == b""
