"""The webhook tests' receiver listens on loopback, which installations refuse by default
(SSRF protection, ``budding.webhooks.targets``): these tests allow private targets
explicitly. ``strict_targets`` puts the default back for the tests of that rule."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from budding.core.config import get_settings


def _set(monkeypatch: pytest.MonkeyPatch, allow: bool) -> None:
    monkeypatch.setenv("BUDDING_WEBHOOKS_ALLOW_PRIVATE", "true" if allow else "false")
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def allow_private_targets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    _set(monkeypatch, True)
    yield
    monkeypatch.delenv("BUDDING_WEBHOOKS_ALLOW_PRIVATE", raising=False)
    get_settings.cache_clear()


@pytest.fixture
def strict_targets(allow_private_targets: None, monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, False)
