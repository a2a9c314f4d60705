"""Discovery of what each capability contributes.

A capability is a sub-package of ``budding``. By convention it may hold:
``models`` (tables), ``api`` (``router`` under /api/v1), ``pages`` (``router``
for HTML pages), ``cli`` (a Typer ``app``, mounted as ``budding <name>``),
``privacy`` (``export(session, member)`` and ``erase(session, member)``) and
``listeners`` (``on_events(session, program, events)``, called in the same
transaction as newly accepted events). Discovery keeps capabilities from
editing shared files to plug themselves in.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

from budding.core.db import capability_names


@cache
def capability_modules(kind: str) -> tuple[tuple[str, ModuleType], ...]:
    found: list[tuple[str, ModuleType]] = []
    for name in capability_names():
        module_name = f"budding.{name}.{kind}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        found.append((name, module))
    return tuple(found)
