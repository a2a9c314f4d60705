"""The share funnel: steps recorded by API, portal and widget land in the event log; launch
cost per channel on a constructed funnel with known medians; before/after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from budding.core.db import unit_of_work
from budding.members.models import Member
from budding.programs.service import get_program
from budding.sharing import funnel, service
from budding.sharing.schemas import StepIn
from tests.sharing.conftest import add_member, refer, referrals

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)


def steps(
    member: Member, share_id: str, opened: datetime, *actions: tuple[int, str, str | None]
) -> None:
    """One share session: opened at ``opened``, then (seconds, type, channel) actions."""
    items = [
        StepIn(id=f"{share_id}-open", type="share_opened", share_id=share_id, occurred_at=opened)
    ]
    for n, (seconds, kind, channel) in enumerate(actions):
        items.append(
            StepIn(
                id=f"{share_id}-{n}",
                type=kind,  # type: ignore[arg-type]
                share_id=share_id,
                channel=channel,
                occurred_at=opened + timedelta(seconds=seconds),
            )
        )
    with unit_of_work() as s:
        service.record_steps(s, get_program(s, "acme"), member, items, "api")


def clicks(member: Member, channel: str, n: int, at: datetime) -> None:
    with unit_of_work() as s:
        p = get_program(s, "acme")
        for i in range(n):
            service.record_funnel_event(
                s,
                p,
                member,
                "link_click",
                event_id=f"click-{member.id}-{channel}-{i}",
                channel=channel,
                occurred_at=at + timedelta(minutes=i),
            )


@pytest.fixture
def constructed(program) -> dict[str, Member]:
    """Seven share sessions on T0 (see the module's expected figures), clicks, referrals."""
    ann = add_member("ann", name="Ann")
    bob = add_member("bob", name="Bob")
    cat = add_member("cat", name="Cat")
    W, C = "whatsapp", "copy_link"
    steps(ann, "session01", T0, (5, "channel_chosen", W), (10, "share_sent", W))
    steps(
        bob,
        "session02",
        T0 + timedelta(hours=1),
        (4, "channel_chosen", "x"),
        (12, "channel_chosen", W),
        (20, "share_sent", W),
    )
    steps(
        cat,
        "session03",
        T0 + timedelta(hours=2),
        (10, "channel_chosen", W),
        (30, "share_sent", W),
        (35, "channel_chosen", C),
        (40, "share_sent", C),
    )
    steps(ann, "session04", T0 + timedelta(hours=3), (2, "channel_chosen", C), (4, "share_sent", C))
    steps(bob, "session05", T0 + timedelta(hours=4), (3, "channel_chosen", C), (6, "share_sent", C))
    steps(cat, "session06", T0 + timedelta(hours=5))
    steps(ann, "session07", T0 + timedelta(hours=6), (5, "channel_chosen", "email"))
    clicks(ann, W, 6, T0 + timedelta(hours=7))
    clicks(ann, C, 2, T0 + timedelta(hours=7))
    friends = [add_member(f"friend{i}") for i in range(4)]
    for i, friend in enumerate(friends):
        refer(ann, friend, T0 + timedelta(hours=8 + i), W if i < 3 else C)
    return {"ann": ann, "bob": bob, "cat": cat, **{f"friend{i}": f for i, f in enumerate(friends)}}


def test_launch_cost_on_a_constructed_funnel(constructed) -> None:
    with unit_of_work() as s:
        p = get_program(s, "acme")
        # A qualifying conversion of one WhatsApp referee (a purchase event).
        from budding.members.events import ingest_events

        ingest_events(
            s,
            p,
            [
                {
                    "id": "buy-1",
                    "type": "purchase",
                    "member": "friend0",
                    "occurred_at": T0 + timedelta(hours=20),
                    "properties": {"amount": 30},
                }
            ],
        )
    with unit_of_work() as s:
        report = funnel.launch_cost(s, get_program(s, "acme"), T0, T1)
    rows = {r.channel: r for r in report.channels}
    assert report.opened == 7
    assert report.sessions_sent == 5
    assert report.share_rate == pytest.approx(5 / 7)
    assert report.median_seconds == 10  # first sends: 10, 20, 30, 4, 6
    w, c, e = rows["whatsapp"], rows["copy_link"], rows["email"]
    assert (w.chosen, w.sent, w.sessions_sent, w.timed) == (3, 3, 3, 3)
    assert w.median_seconds == 20 and w.median_steps == 3  # (10, 20, 30) and (3, 4, 3)
    assert w.share_rate == pytest.approx(3 / 7)
    assert (c.chosen, c.sent, c.sessions_sent) == (3, 3, 3)
    assert c.median_seconds == 6 and c.median_steps == 3  # (40, 4, 6) and (5, 3, 3)
    assert (e.chosen, e.sent, e.share_rate, e.median_seconds) == (1, 0, 0.0, None)
    assert rows["x"].chosen == 1 and rows["x"].sent == 0
    assert w.clicks == 6 and c.clicks == 2
    assert w.click_through == 2.0 and c.click_through == pytest.approx(2 / 3)
    assert (w.signups, c.signups) == (3, 1)
    assert w.signup_rate == pytest.approx(3 / 6) and c.signup_rate == pytest.approx(1 / 2)
    assert w.conversions == 1 and w.conversion_rate == pytest.approx(1 / 3)
    assert c.conversions == 0 and c.conversion_rate == 0
    assert report.cheapest == "copy_link"
    assert report.clicks_source == "events"
    assert w.designed_steps == 4 and rows["x"].designed_steps == 3


def test_a_conversion_is_logged_as_a_funnel_event(constructed, client) -> None:
    r = client.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "id": "buy-2",
                    "type": "purchase",
                    "member": "friend1",
                    "occurred_at": (T0 + timedelta(hours=20)).isoformat(),
                    "properties": {"amount": 25},
                },
                {
                    "id": "buy-3",
                    "type": "purchase",
                    "member": "bob",  # not referred: no conversion
                    "occurred_at": (T0 + timedelta(hours=20)).isoformat(),
                    "properties": {"amount": 25},
                },
            ]
        },
    )
    assert r.json()["accepted"] == 2
    log = client.get("/api/v1/events", params={"type": "conversion"}).json()["events"]
    assert len(log) == 1
    assert (log[0]["member"], log[0]["target"]) == ("ann", "friend1")
    assert log[0]["properties"]["channel"] == "whatsapp"
    assert log[0]["id"] == "conversion.buy-2"


def test_clicks_on_referral_links_count(constructed) -> None:
    """Clicks logged by /r/{code} (the referrals capability) add to link_click events."""
    with unit_of_work() as s:
        p = get_program(s, "acme")
        code = referrals.referral_code_for(s, p, constructed["ann"])
        referrals.record_click(s, code, channel="whatsapp")
        referrals.record_click(s, code, channel="line")
    with unit_of_work() as s:
        report = funnel.launch_cost(s, get_program(s, "acme"))
    rows = {r.channel: r for r in report.channels}
    assert rows["whatsapp"].clicks == 7 and rows["line"].clicks == 1
    assert report.clicks_source == "referrals and events"


def test_the_range_bounds_the_funnel(constructed) -> None:
    with unit_of_work() as s:
        empty = funnel.launch_cost(s, get_program(s, "acme"), T1, T1 + timedelta(days=1))
    assert empty.opened == 0 and empty.share_rate is None and empty.cheapest is None
    assert all(r.sent == 0 and r.signups == 0 for r in empty.channels)


def test_before_and_after(constructed, client) -> None:
    ann = constructed["ann"]
    steps(
        ann,
        "session08",
        T1 + timedelta(hours=1),
        (2, "channel_chosen", "whatsapp"),
        (4, "share_sent", "whatsapp"),
    )
    r = client.get(
        "/api/v1/metrics/launch-cost/compare",
        params={
            "before_since": T0.isoformat(),
            "before_until": T1.isoformat(),
            "after_since": T1.isoformat(),
            "after_until": (T1 + timedelta(days=1)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    deltas = {d["channel"]: d for d in body["deltas"]}
    assert body["before"]["opened"] == 7 and body["after"]["opened"] == 1
    assert deltas["whatsapp"]["median_seconds"] == pytest.approx(4 - 20)
    assert deltas["whatsapp"]["share_rate"] == pytest.approx(1 - 3 / 7)
    assert deltas["all"]["median_seconds"] == pytest.approx(4 - 10)
    bad = client.get(
        "/api/v1/metrics/launch-cost/compare",
        params={
            "before_since": T1.isoformat(),
            "before_until": T0.isoformat(),
            "after_since": T0.isoformat(),
            "after_until": T1.isoformat(),
        },
    )
    assert bad.status_code == 422 and "before_until" in bad.json()["error"]["fields"]


def test_launch_cost_api_and_cli(constructed, client) -> None:
    r = client.get(
        "/api/v1/metrics/launch-cost", params={"since": T0.isoformat(), "until": T1.isoformat()}
    )
    assert r.status_code == 200
    assert r.json()["cheapest"] == "copy_link"
    assert (
        client.get(
            "/api/v1/metrics/launch-cost", params={"since": "2025-01-01T00:00:00"}
        ).status_code
        == 422
    )

    from budding.core.cli import app

    result = CliRunner().invoke(
        app,
        ["sharing", "funnel", "-p", "acme", "--since", "2025-03-03", "--until", "2025-03-03"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "copy_link (cheapest)" in result.output
    result = CliRunner().invoke(app, ["sharing", "funnel", "-p", "acme", "--json"])
    assert result.exit_code == 0 and '"cheapest": "copy_link"' in result.output
    result = CliRunner().invoke(
        app,
        [
            "sharing",
            "compare",
            "-p",
            "acme",
            "--before",
            "2025-03-03..2025-03-03",
            "--after",
            "2025-03-04..2025-03-04",
        ],
    )
    assert result.exit_code == 0, result.output


def test_steps_land_in_the_event_log(client, program) -> None:
    add_member("ann")
    at = datetime(2025, 5, 1, 12, tzinfo=UTC).isoformat()
    body = {
        "steps": [
            {
                "id": "step-aaaa-1",
                "type": "share_opened",
                "share_id": "kit-0001",
                "occurred_at": at,
            },
            {
                "id": "step-aaaa-2",
                "type": "channel_chosen",
                "share_id": "kit-0001",
                "channel": "line",
            },
            {"id": "step-aaaa-3", "type": "share_sent", "share_id": "kit-0001", "channel": "line"},
        ]
    }
    r = client.post("/api/v1/members/ann/share-events", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3, "duplicates": 0}
    again = client.post("/api/v1/members/ann/share-events", json=body)
    assert again.json() == {"accepted": 0, "duplicates": 3}
    log = client.get("/api/v1/events", params={"member": "ann"}).json()["events"]
    assert [e["type"] for e in log] == ["share_opened", "channel_chosen", "share_sent"]
    assert log[2]["properties"] == {"share_id": "kit-0001", "channel": "line", "surface": "api"}
    types = {t["name"] for t in client.get("/api/v1/event-types").json()}
    assert {"share_opened", "channel_chosen", "share_sent", "link_click", "conversion"} <= types


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"id": "step-bbbb-1", "type": "share_sent", "share_id": "kit-0002"}, "steps.0.channel"),
        (
            {
                "id": "step-bbbb-1",
                "type": "share_sent",
                "share_id": "kit-0002",
                "channel": "myspace",
            },
            "steps.0.channel",
        ),
        (
            {"id": "x", "type": "share_sent", "share_id": "kit-0002", "channel": "line"},
            "steps.0.id",
        ),
        ({"id": "step-bbbb-1", "type": "shared", "share_id": "kit-0002"}, "steps.0.type"),
        (  # clicks go to /api/v1/events
            {"id": "step-bbbb-1", "type": "link_click", "share_id": "kit-0002", "channel": "x"},
            "steps.0.type",
        ),
        (
            {"id": "step-bbbb-1", "type": "share_opened", "share_id": "k" * 65},
            "steps.0.share_id",
        ),
    ],
)
def test_bad_steps_name_the_field(client, program, step, field) -> None:
    add_member("ann")
    r = client.post("/api/v1/members/ann/share-events", json={"steps": [step]})
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]["fields"]


def _csrf(html: str) -> str:
    return html.split('data-csrf="', 1)[1].split('"', 1)[0]


def _share_id(html: str) -> str:
    return html.split('data-share-id="', 1)[1].split('"', 1)[0]


def test_portal_page_and_beacon_record_the_funnel(portal, client) -> None:
    page = portal.get("/p/acme/invite")
    assert page.status_code == 200, page.text
    share_id, csrf = _share_id(page.text), _csrf(page.text)
    beacon = {
        "steps": [
            {
                "id": "beacon-0001",
                "type": "channel_chosen",
                "share_id": share_id,
                "channel": "kakaotalk",
            },
            {
                "id": "beacon-0002",
                "type": "share_sent",
                "share_id": share_id,
                "channel": "kakaotalk",
            },
        ]
    }
    assert portal.post("/p/acme/invite/steps", json=beacon).status_code == 403  # no CSRF token
    r = portal.post("/p/acme/invite/steps", json=beacon, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    # The page may not claim an opening: only the server opens share sessions.
    forged = {"steps": [{"id": "beacon-0003", "type": "share_opened", "share_id": share_id}]}
    assert (
        portal.post("/p/acme/invite/steps", json=forged, headers={"X-CSRF-Token": csrf}).status_code
        == 422
    )
    report = client.get("/api/v1/metrics/launch-cost").json()
    kakao = next(r for r in report["channels"] if r["channel"] == "kakaotalk")
    assert report["opened"] == 1 and kakao["sent"] == 1 and kakao["share_rate"] == 1.0
    log = client.get("/api/v1/events", params={"member": "ann", "type": "share_opened"}).json()
    assert log["events"][0]["properties"]["surface"] == "portal"


def test_widget_beacon_uses_the_token(client, anon_client, program) -> None:
    add_member("ann")
    token = client.post("/api/v1/members/ann/widget-token").json()["token"]
    page = anon_client.get("/w/acme", params={"token": token})
    share_id = _share_id(page.text)
    step = {"id": "widget-0001", "type": "share_sent", "share_id": share_id, "channel": "copy_link"}
    assert anon_client.post("/w/acme/steps", json={"steps": [step]}).status_code == 401
    r = anon_client.post("/w/acme/steps", json={"token": token, "steps": [step]})
    assert r.status_code == 200 and r.json()["accepted"] == 1
    log = client.get("/api/v1/events", params={"type": "share_sent"}).json()["events"]
    assert log[0]["properties"]["surface"] == "widget"


def test_rebuild_replays_the_log(client, program) -> None:
    add_member("ann")
    client.post(
        "/api/v1/members/ann/share-events",
        json={
            "steps": [
                {"id": "step-cccc-1", "type": "share_opened", "share_id": "kit-0003"},
                {
                    "id": "step-cccc-2",
                    "type": "share_sent",
                    "share_id": "kit-0003",
                    "channel": "qq",
                },
            ]
        },
    )
    from sqlalchemy import delete, func, select

    from budding.sharing.models import ShareStep

    with unit_of_work() as s:
        s.execute(delete(ShareStep))
    from budding.core.cli import app

    result = CliRunner().invoke(app, ["sharing", "rebuild", "-p", "acme"])
    assert result.exit_code == 0, result.output
    assert "projected 2 new share steps" in result.output
    with unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(ShareStep)) == 2


# --- steps out of order -----------------------------------------------------------------


def test_a_send_before_its_opening_is_counted_but_not_timed(program) -> None:
    """Out-of-order client data (a send stamped before the session's opening) never makes
    a negative launch cost, nor a channel the cheapest: the send counts as a send and the
    session as shared, but it has no duration."""
    ann = add_member("ann")
    for n in range(3):  # sends stamped 1490 s before the opening, on WhatsApp
        opened = T0 + timedelta(hours=1 + n)
        steps(ann, f"skewed{n:02d}", opened, (-1490, "share_sent", "whatsapp"))
    for n in range(3):  # ordinary copy-link shares: 8 s each
        steps(ann, f"inorder{n:02d}", T0 + timedelta(hours=5 + n), (8, "share_sent", "copy_link"))
    with unit_of_work() as s:
        report = funnel.launch_cost(s, get_program(s, "acme"), T0, T1)
    rows = {r.channel: r for r in report.channels}
    w, c = rows["whatsapp"], rows["copy_link"]
    assert (w.sent, w.sessions_sent, w.timed) == (3, 3, 0)
    assert w.median_seconds is None and w.median_steps is None
    assert w.share_rate == pytest.approx(3 / 6)
    assert (c.timed, c.median_seconds, c.median_steps) == (3, 8, 2)
    assert report.sessions_sent == 6 and report.median_seconds == 8
    assert report.cheapest == "copy_link"
    assert all(r.median_seconds is None or r.median_seconds >= 0 for r in report.channels)


def test_a_send_is_timed_from_the_latest_opening_before_it(program) -> None:
    """A share id opened twice (an app that reuses it): each send is timed from the
    latest opening at or before it, and a send stamped before every opening is left out
    of the medians while a later send on the same channel is timed."""
    ann = add_member("ann")
    steps(
        ann,
        "reopened",
        T0,
        (5, "channel_chosen", "line"),
        (3600, "share_opened", None),  # reopened an hour later
        (3604, "channel_chosen", "line"),
        (3612, "share_sent", "line"),
    )
    steps(
        ann,
        "skewed-then-ok",
        T0 + timedelta(hours=3),
        (-60, "share_sent", "telegram"),
        (4, "channel_chosen", "telegram"),
        (9, "share_sent", "telegram"),
    )
    at = T0 + timedelta(hours=5)
    for step in (  # a send stored before its opening, stamped alike
        StepIn(
            id="same-time-sent",
            type="share_sent",
            share_id="same-time",
            channel="qq",
            occurred_at=at,
        ),
        StepIn(id="same-time-open", type="share_opened", share_id="same-time", occurred_at=at),
    ):
        with unit_of_work() as s:
            service.record_steps(s, get_program(s, "acme"), ann, [step], "api")
    with unit_of_work() as s:
        report = funnel.launch_cost(s, get_program(s, "acme"), T0, T1)
    rows = {r.channel: r for r in report.channels}
    assert (rows["qq"].timed, rows["qq"].median_seconds, rows["qq"].median_steps) == (1, 0, 2)
    assert rows["line"].median_seconds == 12 and rows["line"].median_steps == 3
    assert rows["telegram"].median_seconds == 9 and rows["telegram"].median_steps == 3
    assert (rows["telegram"].sent, rows["telegram"].sessions_sent) == (2, 1)
    assert report.median_seconds == 9  # (12, 9, 0)


def test_the_api_accepts_out_of_order_and_unopened_sends(client, program) -> None:
    """Steps may arrive in any order (offline queues, retries), so the API stores a send
    stamped before its opening, and a send whose share was never opened; neither gets a
    negative or any duration in the launch cost."""
    add_member("ann")
    now = datetime.now(UTC)
    opened = {"id": "step-dddd-1", "type": "share_opened", "share_id": "kit-0004"}
    early = {
        "id": "step-dddd-2",
        "type": "share_sent",
        "share_id": "kit-0004",
        "channel": "whatsapp",
        "occurred_at": (now - timedelta(seconds=1490)).isoformat(),
    }
    orphan = {"id": "step-dddd-3", "type": "share_sent", "share_id": "kit-0005", "channel": "x"}
    for step in (opened, early, orphan):
        r = client.post("/api/v1/members/ann/share-events", json={"steps": [step]})
        assert r.status_code == 200, r.text
        assert r.json() == {"accepted": 1, "duplicates": 0}
    since = (now - timedelta(hours=1)).isoformat()
    report = client.get("/api/v1/metrics/launch-cost", params={"since": since}).json()
    rows = {r["channel"]: r for r in report["channels"]}
    assert report["opened"] == 1 and report["median_seconds"] is None
    assert rows["whatsapp"]["sent"] == 1 and rows["whatsapp"]["median_seconds"] is None
    assert rows["whatsapp"]["timed"] == 0 and rows["whatsapp"]["share_rate"] == 1.0
    assert rows["x"]["sent"] == 1 and rows["x"]["sessions_sent"] == 0
    assert rows["x"]["timed"] == 0 and rows["x"]["share_rate"] == 0.0
    assert report["cheapest"] is None


def test_link_clicks_recorded_as_events_count(client, program) -> None:
    """As the docs say: clicks on links served elsewhere are events of the sharer, accepted
    before the program ever recorded a share step (sharing declares its event types)."""
    add_member("ann")
    click = {
        "id": "click-eeee-1",
        "type": "link_click",
        "member": "ann",
        "occurred_at": datetime.now(UTC).isoformat(),
        "properties": {"channel": "telegram"},
    }
    r = client.post("/api/v1/events", json={"events": [click]})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    report = client.get("/api/v1/metrics/launch-cost").json()
    telegram = next(r for r in report["channels"] if r["channel"] == "telegram")
    assert telegram["clicks"] == 1 and report["clicks_source"] == "events"
    listed = {t["name"]: t for t in client.get("/api/v1/event-types").json()}
    assert listed["link_click"]["builtin"] and "clicked" in listed["link_click"]["description"]
    taken = client.post("/api/v1/event-types", json={"name": "share_sent"})
    assert taken.status_code == 422 and "name" in taken.json()["error"]["fields"]
