"""Checks over every capability's templates."""

from __future__ import annotations

from pathlib import Path

import budding


def test_forms_ask_once() -> None:
    """budding.js asks before submitting a form[data-confirm]; an inline onsubmit confirm
    on the same form asked twice (the webhooks page did)."""
    root = Path(budding.__path__[0])
    twice = [
        str(path.relative_to(root))
        for path in root.glob("*/templates/**/*.html")
        if "data-confirm" in (text := path.read_text()) and "onsubmit=" in text
    ]
    assert twice == []


def test_pages_name_an_icon_that_exists(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    """Without a declared icon the browser asked for /favicon.ico, a 404 that showed up as a
    console error on the first page of every visit (admin and portal alike)."""
    import re

    for path in ("/admin/login", "/p/acme/sign-in"):
        page = anon_client.get(path)
        assert page.status_code == 200, path
        found = re.search(r'<link rel="icon"[^>]* href="([^"]+)"', page.text)
        assert found, path
        icon = anon_client.get(found.group(1))
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/")
