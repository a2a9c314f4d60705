"""A job enqueued before a savepoint is handed over only at the real commit."""

from __future__ import annotations


def test_savepoint_release_does_not_dispatch(monkeypatch, program) -> None:
    from budding.core import jobs
    from budding.core.db import unit_of_work

    dispatched: list[object] = []
    monkeypatch.setattr(jobs, "_dispatch", lambda pending: dispatched.append(pending))
    with unit_of_work() as session:
        session.info.setdefault(jobs._PENDING, []).append("sentinel")
        with session.begin_nested():
            pass
        assert dispatched == [], "handed to the queue at a savepoint, before the commit"
    assert dispatched, "not handed over at the commit"
