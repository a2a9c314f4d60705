"""Errors answered as JSON keep their machine-readable fields and say what happened in the
request's language (the portal's language cookie, then Accept-Language), like the error
pages do."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, ValidationError

from budding.core.errors import from_pydantic
from budding.core.i18n import LOCALE_COOKIE

SERVER_ERROR = {
    "en": "Something went wrong on our side. Please try again later.",
    "ko": "저희 쪽에서 문제가 생겼어요. 나중에 다시 시도해 주세요.",
    "es": "Algo salió mal de nuestro lado. Vuelve a intentarlo más tarde.",
}
CROSS_SITE = {
    "en": "This form was sent from another site, so it was not accepted. "
    "Open the page on this site and try again.",
    "ko": "다른 사이트에서 보낸 양식이라 받지 않았어요. "
    "이 사이트에서 페이지를 열고 다시 시도해 주세요.",
    "zh_Hans": "此表单是从其他网站提交的，因此未被接受。请在本网站打开页面后重试。",
}

TOO_LARGE = {
    "en": "What you sent is too large, so it was not accepted. Shorten it and try again.",
    "ko": "보낸 내용이 너무 커서 받지 않았어요. 줄여서 다시 시도해 주세요.",
    "es": "Lo que enviaste es demasiado grande, así que no se aceptó. Acórtalo y vuelve a "
    "intentarlo.",
    "id": "Yang kamu kirim terlalu besar, jadi tidak diterima. Persingkat lalu coba lagi.",
    "zh_Hans": "你发送的内容太大，因此未被接受。请缩短后重试。",
}
# What RequestGuard adds to every answer.
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "same-origin"}


def _too_large() -> bytes:
    from budding.core.config import get_settings

    return b"x" * (get_settings().max_request_bytes + 1)


@pytest.fixture
def failing_client(app: Any) -> Any:
    @app.get("/test-failure")
    def _fail() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    ("headers", "cookie", "locale"),
    [
        ({}, None, "en"),
        ({"Accept-Language": "ko-KR,ko;q=0.9"}, None, "ko"),
        # The language chosen on the portal beats the browser's, as on every page.
        ({"Accept-Language": "ko"}, "es", "es"),
    ],
)
def test_unexpected_error_speaks_the_requests_language(
    failing_client: Any, headers: dict[str, str], cookie: str | None, locale: str
) -> None:
    if cookie:
        failing_client.cookies.set(LOCALE_COOKIE, cookie)
    r = failing_client.get("/test-failure", headers={"Accept": "application/json", **headers})
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {
        "error": {"code": "internal_error", "message": SERVER_ERROR[locale], "fields": {}}
    }


@pytest.mark.parametrize(
    ("headers", "locale"),
    [({}, "en"), ({"Accept-Language": "ko"}, "ko"), ({"Accept-Language": "zh-CN"}, "zh_Hans")],
)
def test_cross_site_refusal_speaks_the_requests_language(
    anon_client: Any, program: Any, headers: dict[str, str], locale: str
) -> None:
    r = anon_client.post(
        "/p/acme/sign-in",
        data={"email": "ann@example.com"},
        headers={"Origin": "https://evil.example", "Accept": "application/json", **headers},
    )
    assert r.status_code == 403
    assert r.json() == {
        "error": {"code": "cross_origin", "message": CROSS_SITE[locale], "fields": {}}
    }


@pytest.mark.parametrize(
    ("headers", "cookie", "locale"),
    [
        ({}, None, "en"),
        ({"Accept-Language": "ko-KR,ko;q=0.9"}, None, "ko"),
        ({"Accept-Language": "ko"}, "es", "es"),
        ({"Accept-Language": "id"}, None, "id"),
        ({"Accept-Language": "zh-CN"}, None, "zh_Hans"),
    ],
)
def test_too_large_a_form_speaks_the_requests_language(
    anon_client: Any, program: Any, headers: dict[str, str], cookie: str | None, locale: str
) -> None:
    if cookie:
        anon_client.cookies.set(LOCALE_COOKIE, cookie)
    r = anon_client.post(
        "/p/acme/sign-in",
        content=_too_large(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            **headers,
        },
    )
    assert r.status_code == 413
    assert r.json() == {
        "error": {"code": "payload_too_large", "message": TOO_LARGE[locale], "fields": {}}
    }


BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": "ko"}


def test_a_browser_gets_the_error_page_in_its_language(failing_client: Any, program: Any) -> None:
    """A member's browser is shown the error page (in Korean here), not raw JSON: the
    guard's refusals and the 500 alike."""
    answers = {
        403: failing_client.post(
            "/p/acme/sign-in",
            data={"email": "ann@example.com"},
            headers={"Origin": "https://evil.example", **BROWSER},
        ),
        413: failing_client.post(
            "/p/acme/sign-in",
            content=_too_large(),
            headers={"Content-Type": "application/x-www-form-urlencoded", **BROWSER},
        ),
        500: failing_client.get("/test-failure", headers=BROWSER),
    }
    details = {403: CROSS_SITE["ko"], 413: TOO_LARGE["ko"], 500: SERVER_ERROR["ko"]}
    for status, r in answers.items():
        assert r.status_code == status
        assert r.headers["content-type"].startswith("text/html"), status
        assert 'data-testid="error-explanation"' in r.text and details[status] in r.text
        assert 'lang="ko"' in r.text
        assert "<details" not in r.text  # the message is in Korean too: nothing to fold away


def test_the_systems_english_words_are_folded_away_and_marked_english(
    anon_client: Any, program: Any
) -> None:
    """A domain error's message is the system's English: under a Korean page it sits in a
    closed "details" marked lang="en" (screen readers switch voice), for support to read."""
    r = anon_client.get("/w/acme", params={"token": "not-a-token"}, headers=BROWSER)
    assert 400 <= r.status_code < 500 and r.headers["content-type"].startswith("text/html")
    assert '<details class="muted small" lang="en">' in r.text
    assert "<summary>자세한 내용</summary>" in r.text
    english = anon_client.get(
        "/w/acme", params={"token": "not-a-token"}, headers={**BROWSER, "Accept-Language": "en"}
    )
    assert "<details" not in english.text


def test_too_large_an_api_request_keeps_its_message(client: Any) -> None:
    """The API's callers are programs: the message stays the system's own words."""
    from budding.core.config import get_settings

    r = client.post(
        "/api/v1/events",
        content=_too_large(),
        headers={"Content-Type": "application/json", "Accept-Language": "ko"},
    )
    assert r.status_code == 413
    limit = get_settings().max_request_bytes
    assert r.json()["error"] == {
        "code": "payload_too_large",
        "message": f"request body over {limit} bytes",
        "fields": {},
    }


def test_every_answer_carries_the_security_headers(failing_client: Any, program: Any) -> None:
    """Pages, the guard's own refusals (cross-site 403, oversize 413) and the 500 alike."""
    answers = {
        200: failing_client.get("/p/acme/sign-in"),
        403: failing_client.post(
            "/p/acme/sign-in",
            data={"email": "ann@example.com"},
            headers={"Origin": "https://evil.example"},
        ),
        413: failing_client.post("/api/v1/events", content=_too_large()),
        500: failing_client.get("/test-failure"),
    }
    for status, r in answers.items():
        assert r.status_code == status
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, f"{status}: {name} is {r.headers.get(name)!r}"


def test_from_pydantic_keeps_each_fields_kind_out_of_the_body() -> None:
    """A page can say a field's error in its own words (``kinds``); the JSON stays as it was."""

    class Form(BaseModel):
        name: str = Field(max_length=3)
        age: int

    with pytest.raises(ValidationError) as caught:
        Form.model_validate({"name": "Annabel"})
    error = from_pydantic(caught.value)
    assert error.kinds == {
        "name": ("string_too_long", {"max_length": 3}),
        "age": ("missing", {}),
    }
    assert error.to_dict() == {
        "error": {
            "code": "validation_failed",
            "message": "name: String should have at most 3 characters",
            "fields": {
                "name": "String should have at most 3 characters",
                "age": "Field required",
            },
        }
    }


def test_the_guards_refusals_are_counted(anon_client: Any, program: Any) -> None:
    """/metrics counts the requests the guard refuses before any route, like the others."""
    import re

    def refused(status: int) -> float:
        text = anon_client.get("/metrics").text
        line = rf'^budding_http_requests_total\{{method="POST",route="unmatched",status="{status}"\}} (\S+)$'
        found = re.search(line, text, re.M)
        return float(found.group(1)) if found else 0.0

    before = refused(403), refused(413)
    anon_client.post("/p/acme/sign-in", data={"email": "a@example.com"},
                     headers={"Origin": "https://evil.example"})  # fmt: skip
    anon_client.post("/p/acme/sign-in", content=_too_large())
    assert (refused(403), refused(413)) == (before[0] + 1, before[1] + 1)


def test_from_pydantic_says_a_validators_reason_without_pydantics_prefix() -> None:
    """A validator's own reason reaches the reader as written ("use 1-64 lowercase ...",
    not "Value error, use 1-64 lowercase ...")."""
    from pydantic import field_validator

    class Form(BaseModel):
        slug: str

        @field_validator("slug")
        @classmethod
        def _slug(cls, value: str) -> str:
            raise ValueError("use lowercase letters")

    with pytest.raises(ValidationError) as caught:
        Form.model_validate({"slug": "Not A Slug!"})
    error = from_pydantic(caught.value)
    assert error.fields == {"slug": "use lowercase letters"}
    assert error.message == "slug: use lowercase letters"
