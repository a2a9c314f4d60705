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
