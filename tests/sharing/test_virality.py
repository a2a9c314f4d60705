"""Virality on a constructed fission tree, against values worked out by hand.

    week of D (a Monday)                 week of D+7
    A (D+0) ─┬─ C (D+2, whatsapp) ── E (D+5, whatsapp, converted)
             └─ D (D+4, copy_link)
    B (D+0)                              F (D+7) ── G (D+9, line)

7 members, 4 referrals: K = 4/7. Cycle times 2, 4, 3, 2 days: median 2.5. Generations
{A,B,F} {C,D,G} {E}: sizes 3, 3, 1; K_0 = 3/3, K_1 = 1/3, K_2 = 0. Cohorts: week D has
A..E (5 members, 3 referrals: K 0.6), week D+7 has F, G (1 referral: K 0.5). Invitations
(shares sent): A 3 whatsapp + 1 copy_link, C 2 whatsapp, F 1 line = 7, so i = 1 and
c = 4/7. Mature members (joined by D+9 - 2 x 2.5 days = D+4): A, B, C, D with 3
referrals: k_mature = 0.75, so the ceiling is N0/(1-K) = 3/0.25 = 12 and
U(2.5 days) = 3 (1 + 0.75) = 5.25, U(5) = 3 (1 + 0.75 + 0.5625) = 6.9375.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from budding.core.db import unit_of_work
from budding.members.models import Member
from budding.programs.service import get_program
from budding.sharing import service, virality
from budding.sharing.schemas import StepIn
from budding.sharing.sources import Edge
from tests.sharing.conftest import add_member, refer

D = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday
A, B, C, DD, E, F, G = 1, 2, 3, 4, 5, 6, 7


def day(n: float) -> datetime:
    return D + timedelta(days=n)


EDGES = [
    Edge(A, C, day(2), None, "whatsapp", 1),
    Edge(A, DD, day(4), None, "copy_link", 1),
    Edge(C, E, day(5), day(6), "whatsapp", 2),
    Edge(F, G, day(9), None, "line", 1),
]
SIGNUPS = {A: day(0), B: day(0), C: day(30), DD: day(30), E: day(30), F: day(7), G: day(30)}
INVITATIONS = {(A, "whatsapp"): 3, (A, "copy_link"): 1, (C, "whatsapp"): 2, (F, "line"): 1}


def test_constructed_tree_by_hand() -> None:
    r = virality.compute(SIGNUPS, EDGES, INVITATIONS, cohort="week", horizon_days=10)
    assert (r.members, r.seeds, r.referrals, r.invitations) == (7, 3, 4, 7)
    assert r.k == pytest.approx(4 / 7)
    assert r.k_converted == pytest.approx(1 / 7)
    assert r.cycle_time_days == pytest.approx(2.5)
    assert r.generation_sizes == {0: 3, 1: 3, 2: 1}
    gens = {row.key: row for row in r.by_generation}
    assert gens["0"].k == 1.0 and gens["1"].k == pytest.approx(1 / 3) and gens["2"].k == 0
    assert gens["0"].invitations == 5 and gens["1"].invitations == 2
    cohorts = {row.key: row for row in r.by_cohort}
    assert set(cohorts) == {"2025-01-06", "2025-01-13"}
    assert (cohorts["2025-01-06"].members, cohorts["2025-01-06"].referrals) == (5, 3)
    assert cohorts["2025-01-06"].k == pytest.approx(0.6)
    assert cohorts["2025-01-13"].k == pytest.approx(0.5)
    assert cohorts["2025-01-06"].conversions == 1
    channels = {row.key: row for row in r.by_channel}
    assert channels["whatsapp"].k == pytest.approx(2 / 7)
    assert channels["whatsapp"].invitations == 5 and channels[
        "whatsapp"
    ].conversion == pytest.approx(2 / 5)
    assert channels["copy_link"].k == pytest.approx(1 / 7) and channels["line"].k == pytest.approx(
        1 / 7
    )
    assert sum(row.k or 0 for row in r.by_channel) == pytest.approx(r.k)
    # K = i x c
    assert r.invitations / r.members * (r.referrals / r.invitations) == pytest.approx(r.k)
    assert r.maturity_days == pytest.approx(5.0)
    assert r.k_mature == pytest.approx(0.75) and r.projection_k == pytest.approx(0.75)
    assert r.ceiling == pytest.approx(12.0)
    points = {p.day: p.users for p in r.projection}
    assert points[0.0] == pytest.approx(3.0)
    assert points[5.0] == pytest.approx(6.9375)
    assert virality.projection(3, 0.75, 2.5, 2.5)[-1].users == pytest.approx(5.25)
    assert [p.users for p in r.actual][:3] == [2.0, 2.0, 3.0]  # A, B on day 0; C on day 2
    assert r.actual[-1].users == 7.0


def test_a_date_range_narrows_the_population() -> None:
    r = virality.compute(SIGNUPS, EDGES, INVITATIONS, since=day(7), until=day(14))
    assert (r.members, r.seeds, r.referrals) == (2, 1, 1)
    assert r.k == 0.5 and r.cycle_time_days == 2.0
    # Referees after ``until`` do not count yet.
    r = virality.compute(SIGNUPS, EDGES, INVITATIONS, until=day(4.5))
    assert r.members == 4 and r.referrals == 2  # A, B, C, D; E and F/G not yet


@pytest.mark.parametrize(
    ("k", "expected", "ceiling"),
    [
        (0.5, [10, 15, 17.5, 18.75], 20.0),
        (1.0, [10, 20, 30, 40], None),
        (2.0, [10, 30, 70, 150], None),
        (0.0, [10, 10, 10, 10], 10.0),
    ],
)
def test_projection_formula(k, expected, ceiling) -> None:
    points = virality.projection(10, k, 1.0, 3.0)
    by_day = {p.day: p.users for p in points}
    assert [by_day[float(t)] for t in range(4)] == pytest.approx(expected)
    assert virality.ceiling(10, k) == ceiling


def test_bad_parameters(client, program) -> None:
    with pytest.raises(Exception, match="cohort"):
        virality.compute({}, [], {}, cohort="year")
    assert client.get("/api/v1/metrics/virality", params={"cohort": "year"}).status_code == 422
    r = client.get(
        "/api/v1/metrics/virality",
        params={"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
    )
    assert r.status_code == 422 and "until" in r.json()["error"]["fields"]
    empty = client.get("/api/v1/metrics/virality").json()
    assert empty["members"] == 0 and empty["k"] is None and empty["projection"] == []


def _backdate(member: Member, at: datetime) -> None:
    with unit_of_work() as s:
        s.execute(update(Member).where(Member.id == member.id).values(created_at=at))


def _sent(member: Member, channel: str, n: int, at: datetime) -> None:
    with unit_of_work() as s:
        steps = [
            StepIn(
                id=f"inv-{member.id}-{channel}-{i}",
                type="share_sent",
                share_id=f"kit-{member.id}-{channel}",
                channel=channel,
                occurred_at=at,
            )
            for i in range(n)
        ]
        service.record_steps(s, get_program(s, "acme"), member, steps, "api")


@pytest.fixture
def tree(program) -> None:
    m = {name: add_member(name) for name in "ABCDEFG"}
    for name, n in (("A", 0), ("B", 0), ("F", 7)):
        _backdate(m[name], day(n))
    for name in "CDEG":
        _backdate(m[name], day(30))  # a referee's signup is the referral's, not the row's
    refer(m["A"], m["C"], day(2), "whatsapp")
    refer(m["A"], m["D"], day(4), "copy_link")
    refer(m["C"], m["E"], day(5), "whatsapp")
    refer(m["F"], m["G"], day(9), "line")
    from budding.members.events import ingest_events

    with unit_of_work() as s:
        ingest_events(
            s,
            get_program(s, "acme"),
            [
                {
                    "id": "e-buys",
                    "type": "purchase",
                    "member": "E",
                    "occurred_at": day(6),
                    "properties": {"amount": 50},
                },
            ],
        )
    _sent(m["A"], "whatsapp", 3, day(1))
    _sent(m["A"], "copy_link", 1, day(3))
    _sent(m["C"], "whatsapp", 2, day(4))
    _sent(m["F"], "line", 1, day(8))


def test_virality_api_on_real_referrals(client, tree) -> None:
    r = client.get("/api/v1/metrics/virality", params={"horizon_days": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["members"], body["seeds"], body["referrals"], body["invitations"]) == (7, 3, 4, 7)
    assert body["k"] == pytest.approx(4 / 7) and body["k_converted"] == pytest.approx(1 / 7)
    assert body["cycle_time_days"] == pytest.approx(2.5)
    assert body["generation_sizes"] == {"0": 3, "1": 3, "2": 1}
    assert body["ceiling"] == pytest.approx(12.0)
    r = client.get(
        "/api/v1/metrics/virality",
        params={"since": day(7).isoformat(), "until": day(14).isoformat()},
    )
    assert r.json()["k"] == 0.5


def test_virality_cli(tree) -> None:
    from budding.core.cli import app

    result = CliRunner().invoke(app, ["virality", "report", "-p", "acme"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "0.571" in result.output and "2.5" in result.output and "12.0" in result.output
    result = CliRunner().invoke(
        app, ["virality", "report", "-p", "acme", "--json", "--cohort", "month"]
    )
    assert result.exit_code == 0, result.output
    assert '"cohort": "month"' in result.output
    result = CliRunner().invoke(app, ["virality", "report", "-p", "acme", "--since", "Jan 1"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
