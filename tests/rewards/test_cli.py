"""``budding rewards …``, ``budding coupons …`` and ``budding fraud …``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from budding.core.cli import app
from budding.core.db import unit_of_work
from budding.fraud import service as fraud
from budding.programs.service import get_program
from tests.rewards.helpers import deliver, member, rewards, rule

runner = CliRunner()


def test_rules_and_coupons(program, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    codes = tmp_path / "codes.csv"
    codes.write_text("code\nC-1\nC-2\nC-2\n", encoding="utf-8")
    r = runner.invoke(app, ["coupons", "upload", str(codes), "--pool", "launch", "-p", "acme"])
    assert r.exit_code == 0, r.output
    assert "added 2, duplicates 1" in r.output
    r = runner.invoke(
        app,
        [
            "rewards",
            "rule-add",
            "-p",
            "acme",
            "--name",
            "Friend coupon",
            "--side",
            "referee",
            "--trigger",
            "conversion",
            "--kind",
            "coupon",
            "--pool",
            "launch",
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "rewards",
            "rule-add",
            "-p",
            "acme",
            "--name",
            "Bad",
            "--side",
            "referee",
            "--trigger",
            "conversion",
            "--kind",
            "points",
        ],
    )
    assert r.exit_code == 1 and "amount" in r.output
    r = runner.invoke(app, ["rewards", "rules", "-p", "acme", "--json"])
    assert [x["name"] for x in json.loads(r.output)] == ["Friend coupon"]
    # times as the API writes them (ISO 8601), not Python's str()
    assert "T" in json.loads(r.output)[0]["created_at"]
    r = runner.invoke(app, ["coupons", "list", "-p", "acme"])
    assert "launch" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("ok-1\nnot ok\n", encoding="utf-8")
    r = runner.invoke(app, ["coupons", "upload", str(bad), "--pool", "launch", "-p", "acme"])
    assert r.exit_code == 1 and "line 2" in r.output


def test_review_by_id_and_interactively(program) -> None:  # type: ignore[no-untyped-def]
    ann, bob = member(program, "ann"), member(program, "bob")
    rule(
        program,
        name="Vested",
        side="referrer",
        trigger="conversion",
        kind="points",
        amount=5,
        vesting_days=30,
    )
    now = datetime.now(UTC)
    for key in ("a", "b", "c"):
        deliver(
            program,
            referral_id=1,
            referrer_id=ann,
            referee_id=bob,
            trigger_key=key,
            occurred_at=now,
        )
    ids = sorted(r["id"] for r in rewards(program))
    r = runner.invoke(app, ["rewards", "review", "-p", "acme", "--approve", str(ids[0])])
    assert r.exit_code == 0 and "issued" in r.output
    # Newest first: c, then b. Reject c, approve b.
    r = runner.invoke(app, ["rewards", "review", "-p", "acme"], input="r\nnot real\na\n\n")
    assert r.exit_code == 0, r.output
    assert {x["id"]: x["status"] for x in rewards(program)} == {
        ids[0]: "issued",
        ids[1]: "issued",
        ids[2]: "rejected",
    }
    r = runner.invoke(app, ["rewards", "list", "-p", "acme", "--status", "rejected"])
    assert "real" in r.output  # the reason (the table wraps narrow terminals)
    r = runner.invoke(app, ["rewards", "review", "-p", "acme", "--approve", "99999"])
    assert r.exit_code == 1 and "no reward" in r.output


def test_vest_command(program) -> None:  # type: ignore[no-untyped-def]
    r = runner.invoke(app, ["rewards", "vest"])
    assert r.exit_code == 0 and "vested 0" in r.output


def test_fraud_commands(program) -> None:  # type: ignore[no-untyped-def]
    r = runner.invoke(
        app,
        [
            "fraud",
            "settings",
            "-p",
            "acme",
            "--set",
            "disposable_email=hold",
            "--set",
            "velocity_ip_per_hour=9",
        ],
    )
    assert r.exit_code == 0, r.output
    with unit_of_work() as session:
        prog = get_program(session, "acme")
        assert fraud.fraud_settings(prog).velocity_ip_per_hour == 9
        found = fraud.assess_signup(
            session,
            prog,
            referrer_id=None,
            email="z@yopmail.com",
            ip_hash=None,
            device_hash=None,
            properties={},
        )
    r = runner.invoke(app, ["fraud", "settings", "-p", "acme", "--set", "ring=explode"])
    assert r.exit_code == 1 and "checks.ring" in r.output
    # the API's spelling of a check, and names that are neither a check nor a setting
    r = runner.invoke(app, ["fraud", "settings", "-p", "acme", "--set", "checks.self_ip=off"])
    assert r.exit_code == 0, r.output
    with unit_of_work() as session:
        assert fraud.fraud_settings(get_program(session, "acme")).action("self_ip") == "off"
    r = runner.invoke(app, ["fraud", "settings", "-p", "acme", "--set", "colour=off"])
    assert r.exit_code == 1 and "unknown" in r.output and "self_ip" in r.output
    r = runner.invoke(app, ["fraud", "review", "-p", "acme"], input="r\nthrowaway\n")
    assert r.exit_code == 0, r.output
    assert "rejected" in r.output
    r = runner.invoke(app, ["fraud", "review", "-p", "acme", "--approve", str(found.id)])
    assert r.exit_code == 1 and "already rejected" in r.output
    r = runner.invoke(app, ["fraud", "evaluate", "--honest", "10", "--per-check", "1", "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    assert set(result) >= {"self_email", "ring", "any"}


def test_fraud_evaluate_refuses_negative_counts(database_url: str) -> None:
    for option in ("--honest", "--per-check"):
        r = runner.invoke(app, ["fraud", "evaluate", option, "-5"])
        assert r.exit_code == 2 and f"Invalid value for '{option}'" in r.output, r.output


def test_fraud_evaluate_leaves_no_checkpoint_behind(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The scratch database's folder is removed only once its WAL checkpoints have run: a
    checkpoint still running then failed with 'disk I/O error' and printed a traceback."""
    import time

    from budding.core import db
    from budding.fraud.scenarios import evaluate_in_scratch

    slow = db.WalCheckpointer._checkpoint

    def slowly(self: db.WalCheckpointer, conn: Any) -> None:
        time.sleep(0.3)
        slow(self, conn)

    monkeypatch.setattr(db, "SQLITE_CHECKPOINT_ROWS", 1)
    monkeypatch.setattr(db.WalCheckpointer, "_checkpoint", slowly)
    evaluate_in_scratch(honest=5, per_check=1)
    time.sleep(0.5)  # a checkpoint left running would fail by now
    assert not [r for r in caplog.records if "WAL checkpoint" in r.getMessage()]
