"""`budding serve` behind a load balancer: X-Forwarded-For counts only from trusted proxies.

The app is wrapped exactly as `budding serve` has uvicorn wrap it (uvicorn's own
``Config.load``), and the login rate limit's recorded address is checked.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from budding.accounts.models import LoginAttempt
from budding.core.cli import proxy_options
from budding.core.config import Settings
from budding.core.db import unit_of_work
from budding.core.security import keyed_hash
from tests.accounts.helpers import login

PROXY = "10.0.0.5"
CLIENT = "203.0.113.7"


def _served(app: Any, forwarded_allow_ips: str) -> Any:
    import uvicorn
    from fastapi.testclient import TestClient

    options = proxy_options(Settings(forwarded_allow_ips=forwarded_allow_ips))
    config = uvicorn.Config(app, **options)
    config.load()
    # Every request comes from the load balancer's address.
    return TestClient(config.loaded_app, raise_server_exceptions=False, client=(PROXY, 40000))


def _recorded_ip_hashes() -> list[str]:
    with unit_of_work() as s:
        return list(s.scalars(select(LoginAttempt.ip_hash)))


def test_no_proxy_is_trusted_by_default() -> None:
    assert proxy_options(Settings()) == {"proxy_headers": False, "forwarded_allow_ips": ""}
    assert proxy_options(Settings(forwarded_allow_ips=" 10.0.0.5, 10.1.0.0/16 ")) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.5", "10.1.0.0/16"],
    }


@pytest.mark.parametrize(
    ("allow", "keyed_on"),
    [
        ("", PROXY),  # the default: the header is ignored
        ("10.9.9.9", PROXY),  # another proxy is trusted, not this one
        (PROXY, CLIENT),
        ("10.0.0.0/8", CLIENT),
    ],
)
def test_login_limiter_keys_on_the_forwarded_address_only_from_a_trusted_proxy(
    app, database_url, allow: str, keyed_on: str
) -> None:
    with _served(app, allow) as browser:
        browser.headers["X-Forwarded-For"] = CLIENT
        r = login(browser, "nobody@example.com", "wrong password")
        assert r.status_code in (200, 401, 422)
    assert _recorded_ip_hashes() == [keyed_hash(keyed_on, "login-ip")]


def test_a_spoofed_header_does_not_escape_the_limit(app, database_url) -> None:
    """Untrusted, X-Forwarded-For cannot spread one client's failures over many keys."""
    with _served(app, "") as browser:
        for i in range(3):
            browser.headers["X-Forwarded-For"] = f"198.51.100.{i}"
            login(browser, "nobody@example.com", "wrong password")
    assert set(_recorded_ip_hashes()) == {keyed_hash(PROXY, "login-ip")}
