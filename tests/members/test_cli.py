"""`budding members import` and `budding events import`: upserts, idempotent re-runs, and
bad lines named by their line number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from budding.core.cli import app
from budding.core.db import unit_of_work
from budding.members import service

runner = CliRunner()


def _members(program_id: int) -> dict[str, str | None]:
    with unit_of_work() as session:
        found, _ = service.search_members(session, program_id, limit=100)
        return {m.external_id: m.name for m in found}


def test_members_import_jsonl_and_csv_upserts(program, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    jsonl = tmp_path / "members.jsonl"
    rows = [{"external_id": "ann", "name": "Ann"}, {"external_id": "bob", "name": "Bob"}]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = runner.invoke(app, ["members", "import", str(jsonl), "--program", "acme"])
    assert result.exit_code == 0, result.output
    assert "created 2, updated 0, rejected 0" in result.output
    csv = tmp_path / "members.csv"
    csv.write_text('external_id,name,attributes\nann,Ann Lee,"{""lang"": ""ko""}"\n')
    again = runner.invoke(app, ["members", "import", str(csv), "--program", "acme"])
    assert again.exit_code == 0 and "created 0, updated 1, rejected 0" in again.output
    assert _members(program.id) == {"ann": "Ann Lee", "bob": "Bob"}


def test_members_import_names_lines_that_are_not_json(program, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "members.jsonl"
    path.write_text('{"external_id": "ann"}\nnot json\n["a list"]\n{"external_id": "bob"}\n')
    result = runner.invoke(app, ["members", "import", str(path), "--program", "acme"])
    assert result.exit_code == 1
    assert "line 2: not a JSON object" in result.output
    assert "line 3: not a JSON object" in result.output
    assert "external_id" not in result.output  # not blamed on a missing field
    assert "created 2, updated 0, rejected 2" in result.output
    assert set(_members(program.id)) == {"ann", "bob"}


def test_events_import_is_idempotent_and_names_bad_lines(program, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work() as session:
        from budding.programs import service as programs

        service.upsert_member(
            session, programs.get_program(session, "acme"), {"external_id": "ann"}
        )
    event = {"id": "e1", "type": "visit", "member": "ann", "occurred_at": "2026-01-01T00:00:00Z"}
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(event) + "\nnot json\n")
    first = runner.invoke(app, ["events", "import", str(path), "--program", "acme"])
    assert first.exit_code == 1
    assert "line 2: not a JSON object" in first.output and "__invalid__" not in first.output
    assert "accepted 1, duplicates 0, rejected 1" in first.output
    again = runner.invoke(app, ["events", "import", str(path), "--program", "acme"])
    assert "accepted 0, duplicates 1, rejected 1" in again.output


def test_settings_turn_auto_create_off(program, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shown = runner.invoke(app, ["members", "settings", "--program", "acme"])
    assert shown.exit_code == 0 and "auto_create: on" in shown.output
    off = runner.invoke(app, ["members", "settings", "--program", "acme", "--no-auto-create"])
    assert off.exit_code == 0 and "auto_create: off" in off.output
    event = {"id": "e1", "type": "visit", "member": "nobody", "occurred_at": "2026-01-01T00:00:00Z"}
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(event) + "\n")
    result = runner.invoke(app, ["events", "import", str(path), "--program", "acme"])
    assert result.exit_code == 1 and "unknown member" in result.output
    assert _members(program.id) == {}


def test_csv_that_is_not_utf8_is_refused_whole(program: Any, tmp_path: Path) -> None:
    path = tmp_path / "members.csv"
    path.write_bytes("external_id,name\nann,Ann\nminji,김민지\n".encode("cp949"))
    for command in ("members", "events"):
        result = runner.invoke(app, [command, "import", str(path), "--program", "acme"])
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit)  # no traceback
        assert "file: line 3 is not UTF-8 text" in result.output
    assert _members(program.id) == {}  # nothing imported, not even the good first row


def test_csv_saved_with_a_byte_order_mark(program: Any, tmp_path: Path) -> None:
    path = tmp_path / "members.csv"  # Excel's "CSV UTF-8" starts with a BOM
    path.write_bytes("external_id,name\nminji,김민지\nwei,王伟\n".encode("utf-8-sig"))
    result = runner.invoke(app, ["members", "import", str(path), "--program", "acme"])
    assert result.exit_code == 0, result.output
    assert "created 2, updated 0, rejected 0" in result.output
    assert _members(program.id) == {"minji": "김민지", "wei": "王伟"}


@pytest.mark.parametrize("command", ["members", "events"])
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("empty.jsonl", ""),
        ("empty.csv", ""),
        ("header.csv", "external_id,name\n"),
        ("bom-header.csv", "\ufeffid,type,member,occurred_at\r\n"),
        ("blank.jsonl", "\n  \n\n"),
    ],
)
def test_an_import_without_rows_is_refused(
    command: str, name: str, text: str, program: Any, tmp_path: Path
) -> None:
    """A file that holds no rows was "imported" with exit 0 and nothing said: it is refused,
    naming the file, and changes nothing."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, [command, "import", str(path), "--program", "acme"])
    assert result.exit_code == 1, result.output
    flat = " ".join(result.output.split())
    assert f"error: file: {path} holds no rows" in flat, result.output
    assert "created" not in result.output and "accepted" not in result.output
    assert _members(program.id) == {}


def test_an_import_with_some_rows_after_blank_lines_still_runs(
    program: Any, tmp_path: Path
) -> None:
    path = tmp_path / "members.jsonl"
    path.write_text('\n\n{"external_id": "ann"}\n\n', encoding="utf-8")
    result = runner.invoke(app, ["members", "import", str(path), "--program", "acme"])
    assert result.exit_code == 0, result.output
    assert "created 1, updated 0, rejected 0" in result.output
