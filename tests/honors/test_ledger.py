"""The points ledger: idempotent credits, compensating reversals, balances."""

from __future__ import annotations

import threading

import pytest

from budding.core.db import unit_of_work
from budding.core.errors import Conflict, NotFound, ValidationFailed
from budding.honors import ledger
from budding.members import service as members


def _member(program, external_id: str = "ann") -> int:  # type: ignore[no-untyped-def]
    with unit_of_work() as session:
        member, _ = members.upsert_member(session, program, {"external_id": external_id})
        return member.id


def test_credit_is_idempotent_on_key(program) -> None:  # type: ignore[no-untyped-def]
    ann = _member(program)
    with unit_of_work() as session:
        first = ledger.credit(session, program, ann, 50, reason="welcome", key="k1")
        again = ledger.credit(session, program, ann, 50, reason="welcome", key="k1")
        assert first.id == again.id
        ledger.credit(session, program, ann, 20, reason="post", key="k2")
        assert ledger.balance(session, program, ann) == 70
        with pytest.raises(Conflict) as exc:
            ledger.credit(session, program, ann, 999, reason="welcome", key="k1")
        assert "key" in exc.value.fields


def test_reverse_writes_a_compensating_entry_once(program) -> None:  # type: ignore[no-untyped-def]
    ann = _member(program)
    with unit_of_work() as session:
        ledger.credit(session, program, ann, 30, reason="reward", key="reward:1")
        r1 = ledger.reverse(session, program, "reward:1", "refund")
        r2 = ledger.reverse(session, program, "reward:1", "refund again")
        assert r1.id == r2.id and r1.points == -30
        assert ledger.balance(session, program, ann) == 0
        rows = ledger.entries(session, program, ann)
        assert [e.points for e in rows] == [-30, 30]  # newest first; the original stays
        with pytest.raises(Conflict):
            ledger.reverse(session, program, r1.key, "reverse the reversal")
        with pytest.raises(NotFound):
            ledger.reverse(session, program, "nope", "x")


def test_bad_input_names_the_field(program) -> None:  # type: ignore[no-untyped-def]
    ann = _member(program)
    with unit_of_work() as session:
        for kwargs, name in (
            ({"points": 0, "key": "a", "reason": "r"}, "points"),
            ({"points": 5, "key": "", "reason": "r"}, "key"),
            ({"points": 5, "key": "x#reversal", "reason": "r"}, "key"),
            ({"points": 5, "key": "b", "reason": " "}, "reason"),
        ):
            with pytest.raises(ValidationFailed) as exc:
                ledger.credit(
                    session,
                    program,
                    ann,
                    kwargs["points"],
                    reason=kwargs["reason"],
                    key=kwargs["key"],
                )
            assert name in exc.value.fields


def test_member_of_another_program_is_refused(program, other_program) -> None:  # type: ignore[no-untyped-def]
    stranger = _member(other_program, "zed")
    with unit_of_work() as session, pytest.raises(NotFound):
        ledger.credit(session, program, stranger, 5, reason="r", key="k")


def test_concurrent_credits_with_one_key_store_one_entry(program) -> None:  # type: ignore[no-untyped-def]
    ann = _member(program)
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            with unit_of_work() as session:
                ledger.credit(session, program, ann, 10, reason="race", key="same")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with unit_of_work() as session:
        assert ledger.balance(session, program, ann) == 10
        assert len(ledger.entries(session, program, ann)) == 1


def test_points_api(client, program) -> None:  # type: ignore[no-untyped-def]
    ann = _member(program)
    with unit_of_work() as session:
        for i in range(3):
            ledger.credit(session, program, ann, 10 * (i + 1), reason="r", key=f"k{i}")
    r = client.get("/api/v1/members/ann/points", params={"limit": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["balance"] == 60 and len(body["entries"]) == 2 and body["next_cursor"]
    rest = client.get("/api/v1/members/ann/points", params={"cursor": body["next_cursor"]}).json()
    assert [e["points"] for e in rest["entries"]] == [10]
    assert client.get("/api/v1/members/nobody/points").status_code == 404
    bad = client.get("/api/v1/members/ann/points", params={"cursor": "!!"})
    assert bad.status_code == 422 and "cursor" in bad.json()["error"]["fields"]


def test_points_api_takes_the_largest_page_it_documents(client, program) -> None:  # type: ignore[no-untyped-def]
    """limit=1000 is within the documented bounds: the route asks the ledger for one more
    entry (to know whether a next page exists), which must not be refused."""
    _member(program)
    r = client.get("/api/v1/members/ann/points", params={"limit": 1000})
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    with unit_of_work() as session, pytest.raises(ValidationFailed):
        ledger.entries(session, program, limit=1002)
