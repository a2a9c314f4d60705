"""Webhooks against a real local HTTP receiver that verifies every signature: emit in the
caller's transaction, retries with a real worker, the delivery log, API, pages and CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from budding.core import jobs
from budding.core.db import unit_of_work, utcnow
from budding.core.errors import ValidationFailed
from budding.jobs.models import JobRecord
from budding.programs import service as programs
from budding.webhooks import service
from budding.webhooks.models import WebhookAttempt, WebhookDelivery
from budding.webhooks.signing import (
    InvalidSignature,
    sign,
    signature_header,
    verify_signature,
)
from tests.factories import make_api_key
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def immediate_jobs() -> Iterator[None]:
    with jobs.immediate():
        yield


def add_endpoint(receiver: Receiver, events: list[str], slug: str = "acme") -> int:
    with unit_of_work() as session:
        endpoint, secret = service.create_endpoint(
            session, programs.get_program(session, slug), url=receiver.url, event_types=events
        )
        receiver.secret = secret
        return endpoint.id


def emit(event_type: str, payload: dict[str, Any], slug: str = "acme") -> None:
    with unit_of_work() as session:
        service.emit(session, programs.get_program(session, slug), event_type, payload)


def deliveries() -> list[WebhookDelivery]:
    with unit_of_work() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def attempts() -> list[WebhookAttempt]:
    with unit_of_work() as session:
        return list(session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)))


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def fast_retries(
    monkeypatch: pytest.MonkeyPatch, retries: int | None = None, delay: float = 0.2
) -> None:
    spec = jobs.get_spec("webhooks.deliver")
    changes: dict[str, Any] = {"retry_delay": delay, "backoff": 1.0, "jitter": 0.0}
    if retries is not None:
        changes["retries"] = retries
    monkeypatch.setitem(jobs._specs, spec.kind, dataclasses.replace(spec, **changes))


# --- signatures --------------------------------------------------------------------------


def test_signature_round_trip_and_rejections() -> None:
    body = b'{"id":"evt_1","type":"reward.issued"}'
    now = 1_800_000_000
    header = signature_header("whsec_x", now, body)
    assert header == f"t={now},v1={sign('whsec_x', now, body)}"
    assert verify_signature("whsec_x", header, body, now=now + 10) == now
    assert verify_signature("whsec_x", header, body.decode(), now=now) == now  # str body
    with pytest.raises(InvalidSignature, match="no signature matches"):
        verify_signature("whsec_x", header, body + b" ", now=now)
    with pytest.raises(InvalidSignature, match="no signature matches"):
        verify_signature("whsec_other", header, body, now=now)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify_signature("whsec_x", header, body, now=now + 301)
    assert verify_signature("whsec_x", header, body, tolerance=0, now=now + 10**6) == now
    for bad in (None, "", "v1=abc", "t=1", "t=x,v1=abc", "garbage"):
        with pytest.raises(InvalidSignature):
            verify_signature("whsec_x", bad, body, now=now)
    rotated = f"t={now},v1={'0' * 64},v1={sign('whsec_x', now, body)}"
    assert verify_signature("whsec_x", rotated, body, now=now) == now


def documented_stdlib_verify() -> Callable[[str, str, bytes], bool]:
    """The ``verify`` function of docs/webhooks.md ("Without Budding installed")."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    after = text.split("Without Budding installed", 1)[1]
    code = after.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/webhooks.md", "exec"), namespace)
    verify: Callable[[str, str, bytes], bool] = namespace["verify"]
    return verify


def test_the_documented_stdlib_check_accepts_any_v1() -> None:
    """During a rotation overlap the header has two ``v1=``: the documented check must
    accept a receiver's secret whichever of them it made (``dict()`` kept only the last)."""
    verify = documented_stdlib_verify()
    body = b'{"id":"evt_1","type":"reward.issued"}'
    now = int(time.time())
    rotating = signature_header(["whsec_new", "whsec_old"], now, body)
    assert verify("whsec_new", rotating, body) and verify("whsec_old", rotating, body)
    assert verify("whsec_x", signature_header("whsec_x", now, body), body)
    assert not verify("whsec_other", rotating, body)
    assert not verify("whsec_new", rotating, body + b" ")
    assert not verify("whsec_new", signature_header("whsec_new", now - 301, body), body)
    for bad in ("", "garbage", f"t={now}", "v1=abc", f"t=x,v1={sign('whsec_new', now, body)}"):
        assert not verify("whsec_new", bad, body)


# --- emit: the outbox ----------------------------------------------------------------------


def test_emit_delivers_a_signed_event(
    immediate_jobs: None, program: Any, receiver: Receiver
) -> None:
    endpoint_id = add_endpoint(receiver, ["referral.converted"])
    emit("referral.converted", {"referrer": "ann", "referee": "bob", "amount": 30})
    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    assert got.verified and got.answered == 200
    (delivery,) = deliveries()
    assert got.headers["Budding-Event"] == "referral.converted"
    assert got.headers["Budding-Delivery"] == delivery.uid
    assert got.headers["Budding-Attempt"] == "1"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Budding-Signature"].startswith(f"t={got.headers['Budding-Timestamp']},v1=")
    assert got.body.decode() == delivery.body
    envelope = got.json
    assert envelope["type"] == "referral.converted" and envelope["program"] == "acme"
    assert envelope["id"] == delivery.event_id and envelope["id"].startswith("evt_")
    assert envelope["data"] == {"referrer": "ann", "referee": "bob", "amount": 30}
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert delivery.endpoint_id == endpoint_id and delivery.delivered_at is not None
    (attempt,) = attempts()
    assert attempt.ok and attempt.status_code == 200 and attempt.response_excerpt == "thanks"
    assert attempt.number == 1 and attempt.duration_ms >= 0 and attempt.error is None
    with unit_of_work() as session:
        job = jobs.get_job(session, delivery.job_id or 0)
        assert job.status == "succeeded" and job.kind == "webhooks.deliver"


def test_only_subscribed_endpoints_receive(immediate_jobs: None, program: Any) -> None:
    only_rewards, everything = Receiver().start(), Receiver().start()
    try:
        add_endpoint(only_rewards, ["reward.issued", "reward.reversed"])
        add_endpoint(everything, ["*"])
        emit("fraud.flagged", {"member": "x"})
        emit("reward.issued", {"member": "y"})
        assert [r.json["type"] for r in only_rewards.requests] == ["reward.issued"]
        assert [r.json["type"] for r in everything.requests] == ["fraud.flagged", "reward.issued"]
        assert all(r.verified for r in only_rewards.requests + everything.requests)
        a, b = only_rewards.requests[0].json, everything.requests[1].json
        assert a["id"] == b["id"]  # one event, one id; one delivery id per endpoint
        assert (
            only_rewards.requests[0].headers["Budding-Delivery"]
            != everything.requests[1].headers["Budding-Delivery"]
        )
    finally:
        only_rewards.stop()
        everything.stop()


def test_rollback_sends_nothing(immediate_jobs: None, program: Any, receiver: Receiver) -> None:
    add_endpoint(receiver, ["*"])
    with pytest.raises(RuntimeError), unit_of_work() as session:
        service.emit(session, programs.get_program(session, "acme"), "reward.issued", {"n": 1})
        raise RuntimeError("the reward could not be stored")
    time.sleep(0.2)
    assert receiver.requests == []
    assert deliveries() == []
    with unit_of_work() as session:
        assert session.scalars(select(JobRecord)).all() == []


def test_emit_checks_its_input(program: Any) -> None:
    with unit_of_work() as session:
        prog = programs.get_program(session, "acme")
        with pytest.raises(service.UnknownEventType):
            service.emit(session, prog, "reward.isued", {})
        service.create_endpoint(session, prog, url="http://127.0.0.1:9/x", event_types=["*"])
        with pytest.raises(TypeError, match="not JSON"):
            service.emit(session, prog, "reward.issued", {"x": object()})
        assert "referral.converted" in service.known_event_types()


# --- retries ---------------------------------------------------------------------------------


def test_fails_twice_then_succeeds_with_a_real_worker(
    monkeypatch: pytest.MonkeyPatch, program: Any, receiver: Receiver
) -> None:
    fast_retries(monkeypatch)
    receiver.fail_first = 2
    add_endpoint(receiver, ["reward.issued"])
    consumer = jobs.start_worker(workers=2, poll_interval=0.1)
    try:
        emit("reward.issued", {"member": "ann", "points": 50})
        wait_for(lambda: deliveries()[0].status == "delivered")
    finally:
        consumer.stop(graceful=True)
    answers = [r.answered for r in receiver.requests]
    assert answers == [500, 500, 200]
    assert all(r.verified for r in receiver.requests)
    uids = {r.headers["Budding-Delivery"] for r in receiver.requests}
    assert len(uids) == 1 and receiver.processed == list(uids)  # stable across retries
    assert [r.headers["Budding-Attempt"] for r in receiver.requests] == ["1", "2", "3"]
    assert len({r.body for r in receiver.requests}) == 1  # the same body every time
    log = attempts()
    assert [(a.number, a.status_code, a.ok) for a in log] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert log[0].response_excerpt == "temporarily broken"
    (delivery,) = deliveries()
    assert delivery.attempts == 3 and delivery.status == "delivered"


def test_a_delivery_fails_after_its_last_attempt(
    immediate_jobs: None, monkeypatch: pytest.MonkeyPatch, program: Any, receiver: Receiver
) -> None:
    fast_retries(monkeypatch, retries=2, delay=1.0)
    receiver.fail_first = 100
    add_endpoint(receiver, ["*"])
    emit("waitlist.released", {"count": 3})
    (delivery,) = deliveries()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None
    assert delivery.attempts == 1

    def retried_out() -> bool:
        jobs.run_due()
        return deliveries()[0].status != "pending"

    wait_for(retried_out)
    (delivery,) = deliveries()
    assert delivery.status == "failed" and delivery.attempts == 3
    assert delivery.last_error and "500" in delivery.last_error
    with unit_of_work() as session:
        job = jobs.get_job(session, delivery.job_id or 0)
        assert job.status == "failed" and job.attempts == 3


def test_unreachable_receiver_is_logged(immediate_jobs: None, program: Any) -> None:
    from tests.conftest import free_port

    with unit_of_work() as session:
        service.create_endpoint(
            session,
            programs.get_program(session, "acme"),
            url=f"http://127.0.0.1:{free_port()}/nobody-home",
            event_types=["*"],
        )
    emit("fraud.flagged", {"member": "m1"})
    (attempt,) = attempts()
    assert attempt.status_code is None and not attempt.ok
    assert attempt.error and "ConnectError" in attempt.error
    (delivery,) = deliveries()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None


def test_many_events_with_several_workers_each_delivered_once(
    program: Any, receiver: Receiver
) -> None:
    add_endpoint(receiver, ["*"])
    for i in range(12):
        emit("reward.issued", {"n": i})
    consumer = jobs.start_worker(workers=4, poll_interval=0.1)
    try:
        wait_for(lambda: all(d.status == "delivered" for d in deliveries()), timeout=60)
    finally:
        consumer.stop(graceful=True)
    uids = [r.headers["Budding-Delivery"] for r in receiver.requests]
    assert len(uids) == 12 == len(set(uids))  # nobody sent twice
    assert sorted(r.json["data"]["n"] for r in receiver.requests) == list(range(12))


def test_a_real_budding_worker_process_delivers(program: Any, receiver: Receiver) -> None:
    add_endpoint(receiver, ["reward.issued"])
    emit("reward.issued", {"member": "ann"})
    assert receiver.requests == []  # no worker yet: the delivery waits in the queue
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "budding"),
            "worker",
            "-w",
            "2",
            "--poll-interval",
            "0.2",
        ],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: deliveries()[0].status == "delivered", timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    assert len(receiver.requests) == 1 and receiver.requests[0].verified


# --- API ----------------------------------------------------------------------------------


def test_api_endpoints(client: Any, anon_client: Any, program: Any, receiver: Receiver) -> None:
    r = client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "event_types": ["reward.issued"], "description": "CRM"},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_") and created["event_types"] == ["reward.issued"]
    listed = client.get("/api/v1/webhooks").json()["webhooks"]
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    assert "secret" not in client.get(f"/api/v1/webhooks/{created['id']}").json()
    names = [t["name"] for t in client.get("/api/v1/webhooks/event-types").json()]
    assert {"referral.converted", "reward.issued", "fraud.flagged"} <= set(names)

    r = client.post("/api/v1/webhooks", json={"url": "ftp://x", "event_types": ["nope.nope"]})
    assert r.status_code == 422
    assert set(r.json()["error"]["fields"]) == {"url", "event_types"}
    r = client.post("/api/v1/webhooks", json={"url": "https://example.com", "event_types": []})
    assert r.status_code == 422 and "event_types" in r.json()["error"]["fields"]

    analyst = make_api_key(program.id, role="analyst")
    r = anon_client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "event_types": ["*"]},
        headers={"Authorization": f"Bearer {analyst}"},
    )
    assert r.status_code == 403
    assert client.delete(f"/api/v1/webhooks/{created['id']}").status_code == 204
    assert client.get(f"/api/v1/webhooks/{created['id']}").status_code == 404
    assert client.delete(f"/api/v1/webhooks/{created['id']}").status_code == 404
    assert client.get("/api/v1/webhooks").json()["webhooks"] == []


def test_api_delivery_log_and_redeliver(
    immediate_jobs: None, client: Any, program: Any, receiver: Receiver
) -> None:
    created = client.post(
        "/api/v1/webhooks", json={"url": receiver.url, "event_types": ["*"]}
    ).json()
    receiver.secret = created["secret"]
    receiver.fail_first = 1
    for i in range(3):
        emit("reward.issued", {"n": i})
    page = client.get("/api/v1/webhooks/deliveries", params={"limit": 2}).json()
    assert len(page["deliveries"]) == 2 and page["next_cursor"]
    rest = client.get(
        "/api/v1/webhooks/deliveries", params={"limit": 2, "cursor": page["next_cursor"]}
    ).json()
    assert len(rest["deliveries"]) == 1 and rest["next_cursor"] is None
    pending = client.get("/api/v1/webhooks/deliveries", params={"status": "pending"}).json()
    (first,) = pending["deliveries"]  # the one the receiver refused
    detail = client.get(f"/api/v1/webhooks/deliveries/{first['id']}").json()
    assert detail["attempt_log"][0]["status_code"] == 500
    assert json.loads(detail["body"])["data"] == {"n": 0}

    r = client.post(f"/api/v1/webhooks/deliveries/{first['id']}/redeliver")
    assert r.status_code == 202, r.text
    detail = client.get(f"/api/v1/webhooks/deliveries/{first['id']}").json()
    assert detail["status"] == "delivered"
    assert [a["status_code"] for a in detail["attempt_log"]] == [500, 200]
    delivered = client.get("/api/v1/webhooks/deliveries", params={"status": "delivered"}).json()
    assert len(delivered["deliveries"]) == 3
    again = client.post(f"/api/v1/webhooks/deliveries/{first['id']}/redeliver")
    assert again.status_code == 202  # a receiver that lost it may ask again: same id
    assert [r.headers["Budding-Delivery"] for r in receiver.requests].count(first["id"]) == 3
    assert receiver.processed.count(first["id"]) == 1

    assert client.get("/api/v1/webhooks/deliveries/dlv_nope").status_code == 404
    assert client.get("/api/v1/webhooks/deliveries", params={"status": "x"}).status_code == 422
    assert client.get("/api/v1/webhooks/deliveries", params={"cursor": "x"}).status_code == 422

    client.delete(f"/api/v1/webhooks/{created['id']}")
    r = client.post(f"/api/v1/webhooks/deliveries/{first['id']}/redeliver")
    assert r.status_code == 410 and r.json()["error"]["code"] == "webhook_removed"


def test_removing_an_endpoint_fails_its_pending_deliveries(
    program: Any, receiver: Receiver
) -> None:
    endpoint_id = add_endpoint(receiver, ["*"])
    emit("reward.issued", {"n": 1})  # no worker: stays pending
    with unit_of_work() as session:
        service.remove_endpoint(session, program.id, endpoint_id)
    (delivery,) = deliveries()
    assert delivery.status == "failed" and delivery.last_error == "the endpoint was removed"
    assert jobs.run_due() == 1  # its job runs, sends nothing
    assert receiver.requests == []
    emit("reward.issued", {"n": 2})
    assert len(deliveries()) == 1


def test_test_event_and_program_isolation(
    immediate_jobs: None, client: Any, other_program: Any, receiver: Receiver
) -> None:
    created = client.post(
        "/api/v1/webhooks", json={"url": receiver.url, "event_types": ["reward.issued"]}
    ).json()
    receiver.secret = created["secret"]
    r = client.post(f"/api/v1/webhooks/{created['id']}/test")
    assert r.status_code == 202
    assert receiver.requests[0].json["type"] == "webhook.test"
    assert receiver.requests[0].verified
    emit("reward.issued", {"n": 1}, slug="other")  # another program's event
    assert len(receiver.requests) == 1
    other_key = make_api_key(other_program.id)
    r = client.get(
        f"/api/v1/webhooks/{created['id']}", headers={"Authorization": f"Bearer {other_key}"}
    )
    assert r.status_code == 404


def test_endpoint_limit(program: Any) -> None:
    with unit_of_work() as session:
        prog = programs.get_program(session, "acme")
        for i in range(service.MAX_ENDPOINTS):
            service.create_endpoint(session, prog, url=f"https://x.test/{i}", event_types=["*"])
        with pytest.raises(service.TooManyEndpoints):
            service.create_endpoint(session, prog, url="https://x.test/more", event_types=["*"])


# --- pages ---------------------------------------------------------------------------------


def login(anon_client: Any) -> str:
    from budding.accounts import service as accounts
    from budding.core.auth import SESSION_COOKIE, session_cookie_value
    from tests.factories import PASSWORD, make_staff

    email = make_staff()
    with unit_of_work() as session:
        result = accounts.login(session, email=email, password=PASSWORD, ip="127.0.0.1")
    assert result is not None
    anon_client.cookies.set(SESSION_COOKIE, session_cookie_value(result.token))
    return result.csrf_token


def test_admin_pages(
    immediate_jobs: None, anon_client: Any, program: Any, receiver: Receiver
) -> None:
    csrf = login(anon_client)
    r = anon_client.get("/admin/acme/webhooks")
    assert r.status_code == 200 and "No webhooks yet." in r.text

    r = anon_client.post(
        "/admin/acme/webhooks",
        data={"csrf_token": csrf, "url": "not a url", "event_types": ["reward.issued"]},
    )
    assert r.status_code == 422 and "must be an http" in r.text
    r = anon_client.post(
        "/admin/acme/webhooks",
        data={
            "csrf_token": csrf,
            "url": receiver.url,
            "description": "CRM",
            "event_types": ["reward.issued", "fraud.flagged"],
        },
    )
    assert r.status_code == 201, r.text
    with unit_of_work() as session:
        (endpoint,) = service.list_endpoints(session, program.id)
        receiver.secret = endpoint.secret
    assert endpoint.secret in r.text and endpoint.event_types == ["fraud.flagged", "reward.issued"]
    assert endpoint.secret not in anon_client.get("/admin/acme/webhooks").text  # shown once

    receiver.fail_first = 1
    emit("reward.issued", {"n": 1})
    emit("fraud.flagged", {"n": 2})
    r = anon_client.get("/admin/acme/webhooks/deliveries")
    assert r.status_code == 200 and r.text.count("data-delivery=") == 2
    r = anon_client.get(
        "/admin/acme/webhooks/deliveries",
        params={"status": "pending"},
        headers={"HX-Request": "true"},
    )
    assert "<html" not in r.text and r.text.count("data-delivery=") == 1
    assert "reward.issued" in r.text and "fraud.flagged" not in r.text

    (pending,) = [d for d in deliveries() if d.status == "pending"]
    r = anon_client.get(f"/admin/acme/webhooks/deliveries/{pending.uid}")
    assert r.status_code == 200 and "HTTP 500" in r.text and "temporarily broken" in r.text
    delivered = next(d for d in deliveries() if d.status == "delivered")
    r = anon_client.post(
        f"/admin/acme/webhooks/deliveries/{delivered.uid}/redeliver",
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )
    assert r.status_code == 200 and r.text.startswith(f'<tr data-delivery="{delivered.uid}"')
    assert (
        len([q for q in receiver.requests if q.headers["Budding-Delivery"] == delivered.uid]) == 2
    )

    r = anon_client.post(
        f"/admin/acme/webhooks/{endpoint.id}/test",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert receiver.requests[-1].json["type"] == "webhook.test"
    r = anon_client.get(r.headers["location"])
    assert 'data-testid="delivery-status"' in r.text

    r = anon_client.post(
        f"/admin/acme/webhooks/{endpoint.id}/remove",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "No webhooks yet." in anon_client.get("/admin/acme/webhooks").text
    r = anon_client.post(f"/admin/acme/webhooks/{endpoint.id}/remove", follow_redirects=False)
    assert r.status_code == 403  # no CSRF token


def test_admin_pages_need_the_right_role(anon_client: Any, program: Any) -> None:
    from budding.accounts import service as accounts
    from budding.core.auth import SESSION_COOKIE, session_cookie_value
    from tests.factories import PASSWORD, make_staff

    make_staff("analyst@example.com", role="analyst")
    with unit_of_work() as session:
        result = accounts.login(
            session, email="analyst@example.com", password=PASSWORD, ip="127.0.0.1"
        )
    assert result is not None
    anon_client.cookies.set(SESSION_COOKIE, session_cookie_value(result.token))
    page = anon_client.get("/admin/acme/webhooks")
    assert page.status_code == 200 and 'data-testid="add-webhook"' not in page.text
    r = anon_client.post(
        "/admin/acme/webhooks",
        data={"csrf_token": result.csrf_token, "url": "https://x.test", "event_types": ["*"]},
    )
    assert r.status_code == 403
    with unit_of_work() as session:
        endpoint, secret = service.create_endpoint(
            session, programs.get_program(session, "acme"), url="https://x.test", event_types=["*"]
        )
        endpoint_id = endpoint.id
    assert f"edit-webhook-{endpoint_id}" not in anon_client.get("/admin/acme/webhooks").text
    for action in ("edit", "secret"):
        r = anon_client.post(
            f"/admin/acme/webhooks/{endpoint_id}/{action}",
            data={"csrf_token": result.csrf_token, "url": "https://y.test", "event_types": ["*"]},
        )
        assert r.status_code == 403
    with unit_of_work() as session:
        endpoint = service.get_endpoint(session, program.id, endpoint_id)
        assert endpoint.url == "https://x.test" and endpoint.secret == secret


# --- CLI -------------------------------------------------------------------------------------


def test_cli(program: Any, receiver: Receiver) -> None:
    from budding.core.cli import app

    runner = CliRunner(env={"COLUMNS": "200"})
    r = runner.invoke(
        app,
        [
            "webhooks",
            "add",
            receiver.url,
            "-p",
            "acme",
            "-e",
            "reward.issued",
            "-e",
            "fraud.flagged",
        ],
    )
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    receiver.secret = secret
    r = runner.invoke(app, ["webhooks", "add", "gopher://x", "-p", "acme", "-e", "nope.x"])
    assert r.exit_code == 1 and "url:" in r.output and "event_types:" in r.output
    r = runner.invoke(app, ["webhooks", "list", "-p", "acme"])
    assert r.exit_code == 0 and "reward.issued" in r.output and secret not in r.output
    emit("fraud.flagged", {"member": "m1"})
    r = runner.invoke(app, ["webhooks", "deliveries", "-p", "acme", "--status", "pending"])
    assert r.exit_code == 0 and "fraud.flagged" in r.output
    r = runner.invoke(app, ["worker", "--burst"])
    assert r.exit_code == 0 and "ran 1 job(s)" in r.output
    assert receiver.requests and receiver.requests[0].verified
    r = runner.invoke(app, ["webhooks", "deliveries", "-p", "acme", "--status", "delivered"])
    assert "fraud.flagged" in r.output
    (delivery,) = deliveries()
    r = runner.invoke(app, ["webhooks", "redeliver", delivery.uid, "-p", "acme"])
    assert r.exit_code == 0
    (endpoint_id,) = {d.endpoint_id for d in deliveries()}
    r = runner.invoke(app, ["webhooks", "test", str(endpoint_id), "-p", "acme"])
    assert r.exit_code == 0 and "queued delivery dlv_" in r.output
    r = runner.invoke(app, ["webhooks", "remove", str(endpoint_id), "-p", "acme", "--yes"])
    assert r.exit_code == 0
    r = runner.invoke(app, ["webhooks", "remove", str(endpoint_id), "-p", "acme", "--yes"])
    assert r.exit_code == 1 and "no webhook" in r.output


def test_cli_deliveries_shows_whole_ids_on_a_narrow_terminal(
    program: Any, receiver: Receiver
) -> None:
    # `budding webhooks redeliver` needs the whole id, so the log must print it unshortened
    # in an 80-column terminal.
    from budding.core.cli import app

    add_endpoint(receiver, ["fraud.flagged"])
    emit("fraud.flagged", {"member": "m1"})
    (delivery,) = deliveries()
    r = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["webhooks", "deliveries", "-p", "acme"])
    assert r.exit_code == 0, r.output
    assert delivery.uid in r.output


def test_api_update_and_rotate_secret(
    client: Any, anon_client: Any, program: Any, receiver: Receiver
) -> None:
    created = client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "event_types": ["reward.issued"], "description": "CRM"},
    ).json()
    path = f"/api/v1/webhooks/{created['id']}"

    r = client.patch(path, json={"event_types": ["fraud.flagged", "reward.issued"]})
    assert r.status_code == 200, r.text
    assert r.json()["event_types"] == ["fraud.flagged", "reward.issued"]
    assert r.json()["url"] == receiver.url and r.json()["description"] == "CRM"
    assert "secret" not in r.json()
    r = client.patch(path, json={"description": "  Sales CRM "})
    assert r.json()["description"] == "Sales CRM"

    # Bad input names every bad field and changes nothing.
    before = client.get(path).json()
    r = client.patch(path, json={"url": "ftp://x", "event_types": ["nope.nope"]})
    assert r.status_code == 422
    assert set(r.json()["error"]["fields"]) == {"url", "event_types"}
    r = client.patch(path, json={"event_types": []})
    assert r.status_code == 422 and "event_types" in r.json()["error"]["fields"]
    assert client.get(path).json() == before

    analyst = make_api_key(program.id, role="analyst")
    headers = {"Authorization": f"Bearer {analyst}"}
    assert anon_client.patch(path, json={"description": "x"}, headers=headers).status_code == 403
    assert anon_client.post(f"{path}/secret", headers=headers).status_code == 403

    r = client.post(f"{path}/secret")
    assert r.status_code == 200, r.text
    rotated = r.json()["secret"]
    assert rotated.startswith("whsec_") and rotated != created["secret"]
    with unit_of_work() as session:
        assert service.get_endpoint(session, program.id, created["id"]).secret == rotated

    assert client.delete(path).status_code == 204
    assert client.patch(path, json={"description": "x"}).status_code == 404
    assert client.post(f"{path}/secret").status_code == 404


def test_retries_go_to_the_new_url_signed_with_the_new_secret(
    immediate_jobs: None, monkeypatch: pytest.MonkeyPatch, program: Any, receiver: Receiver
) -> None:
    """A receiver that moved (and whose secret leaked): the pending retry of an earlier
    event reaches the new URL, signed with the new secret, which the new receiver checks."""
    fast_retries(monkeypatch, retries=3, delay=0.5)
    receiver.fail_first = 100
    endpoint_id = add_endpoint(receiver, ["*"])
    emit("reward.issued", {"member": "m1"})
    (delivery,) = deliveries()
    assert delivery.status == "pending"
    moved = Receiver().start()
    try:
        with unit_of_work() as session:
            service.update_endpoint(session, program.id, endpoint_id, url=moved.url)
            _, moved.secret = service.rotate_secret(session, program.id, endpoint_id)

        def delivered() -> bool:
            jobs.run_due()
            return deliveries()[0].status == "delivered"

        wait_for(delivered)
        assert len(moved.requests) == 1 and moved.requests[0].verified
        assert moved.requests[0].headers["Budding-Delivery"] == delivery.uid
        assert len(receiver.requests) == 1  # only the first attempt reached the old URL
    finally:
        moved.stop()


def test_updating_to_an_internal_address_is_refused(
    client: Any, program: Any, receiver: Receiver, strict_targets: None
) -> None:
    with unit_of_work() as session:
        endpoint, _ = service.create_endpoint(
            session,
            programs.get_program(session, "acme"),
            url="https://hooks.example.com/in",
            event_types=["*"],
        )
        endpoint_id = endpoint.id
    r = client.patch(f"/api/v1/webhooks/{endpoint_id}", json={"url": "http://10.0.0.8/in"})
    assert r.status_code == 422 and set(r.json()["error"]["fields"]) == {"url"}
    assert client.get(f"/api/v1/webhooks/{endpoint_id}").json()["url"] == (
        "https://hooks.example.com/in"
    )


def test_cli_update_and_rotate_secret(program: Any, receiver: Receiver) -> None:
    from budding.core.cli import app

    runner = CliRunner(env={"COLUMNS": "200"})
    endpoint_id = add_endpoint(receiver, ["reward.issued"])
    r = runner.invoke(
        app,
        ["webhooks", "update", str(endpoint_id), "-p", "acme", "-e", "*", "--description", "All"],
    )
    assert r.exit_code == 0, r.output
    assert f"updated webhook {endpoint_id}" in r.output and "(*)" in r.output
    r = runner.invoke(app, ["webhooks", "update", str(endpoint_id), "-p", "acme"])
    assert r.exit_code != 0 and "--url" in r.output
    r = runner.invoke(app, ["webhooks", "update", str(endpoint_id), "-p", "acme", "--url", "x"])
    assert r.exit_code == 1 and "url:" in r.output
    r = runner.invoke(app, ["webhooks", "rotate-secret", str(endpoint_id), "-p", "acme", "--yes"])
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_") and secret != receiver.secret
    with unit_of_work() as session:
        endpoint = service.get_endpoint(session, program.id, endpoint_id)
        assert endpoint.secret == secret and endpoint.event_types == ["*"]
        assert endpoint.description == "All"


def test_admin_pages_edit_and_rotate_secret(
    anon_client: Any, program: Any, receiver: Receiver
) -> None:
    csrf = login(anon_client)
    endpoint_id = add_endpoint(receiver, ["reward.issued"])
    page = anon_client.get("/admin/acme/webhooks").text
    assert f'data-testid="edit-webhook-{endpoint_id}"' in page

    r = anon_client.post(
        f"/admin/acme/webhooks/{endpoint_id}/edit",
        data={"csrf_token": csrf, "url": "gopher://x", "event_types": ["nope.x"]},
    )
    assert r.status_code == 422 and "must be an http" in r.text and "unknown: nope.x" in r.text
    assert f'data-testid="edit-webhook-{endpoint_id}" open' in r.text  # the form stays open
    with unit_of_work() as session:
        assert service.get_endpoint(session, program.id, endpoint_id).url == receiver.url

    r = anon_client.post(
        f"/admin/acme/webhooks/{endpoint_id}/edit",
        data={
            "csrf_token": csrf,
            "url": receiver.url + "?v=2",
            "description": "Warehouse",
            "event_types": ["fraud.flagged", "reward.issued"],
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    with unit_of_work() as session:
        endpoint = service.get_endpoint(session, program.id, endpoint_id)
        assert endpoint.url == receiver.url + "?v=2" and endpoint.description == "Warehouse"
        assert endpoint.event_types == ["fraud.flagged", "reward.issued"]
        old_secret = endpoint.secret

    r = anon_client.post(f"/admin/acme/webhooks/{endpoint_id}/secret", data={"csrf_token": csrf})
    assert r.status_code == 200
    with unit_of_work() as session:
        new_secret = service.get_endpoint(session, program.id, endpoint_id).secret
    assert new_secret != old_secret and new_secret in r.text
    assert new_secret not in anon_client.get("/admin/acme/webhooks").text  # shown once
    r = anon_client.post(f"/admin/acme/webhooks/{endpoint_id}/secret", follow_redirects=False)
    assert r.status_code == 403  # no CSRF token


# --- rotating a secret with an overlap ---------------------------------------------------


def test_signature_header_with_several_secrets() -> None:
    body, now = b'{"id":"evt_1"}', 1_800_000_000
    header = signature_header(["whsec_new", "whsec_old"], now, body)
    assert header == f"t={now},v1={sign('whsec_new', now, body)},v1={sign('whsec_old', now, body)}"
    for secret in ("whsec_new", "whsec_old"):
        assert verify_signature(secret, header, body, now=now) == now
    with pytest.raises(InvalidSignature, match="no signature matches"):
        verify_signature("whsec_other", header, body, now=now)


def test_overlap_signs_with_both_secrets_until_it_ends(
    immediate_jobs: None, program: Any, receiver: Receiver
) -> None:
    """A routine rotation: the receiver still on the old secret keeps accepting deliveries
    while the overlap lasts; one already on the new secret accepts them too. Afterwards
    only the new secret signs."""
    endpoint_id = add_endpoint(receiver, ["*"])
    old_secret = receiver.secret
    with unit_of_work() as session:
        endpoint, new_secret = service.rotate_secret(
            session, program.id, endpoint_id, keep_previous=timedelta(hours=24)
        )
        until = endpoint.previous_secret_signs_until
        assert until is not None and timedelta(hours=23) < until - utcnow() <= timedelta(hours=24)
    emit("reward.issued", {"member": "m1"})
    wait_for(lambda: len(receiver.requests) == 1)
    first = receiver.requests[0]
    assert first.verified and first.answered == 200  # checked with the old secret
    header = first.headers["Budding-Signature"]
    assert header.count("v1=") == 2
    assert verify_signature(new_secret, header, first.body, tolerance=0)

    # The overlap is over: the old secret no longer signs, and its receiver refuses.
    with unit_of_work() as session:
        service.get_endpoint(session, program.id, endpoint_id).previous_secret_expires_at = (
            utcnow() - timedelta(seconds=1)
        )
    emit("reward.issued", {"member": "m2"})
    wait_for(lambda: len(receiver.requests) == 2)
    second = receiver.requests[1]
    assert second.headers["Budding-Signature"].count("v1=") == 1 and not second.verified
    assert verify_signature(new_secret, second.headers["Budding-Signature"], second.body)
    with pytest.raises(InvalidSignature):
        verify_signature(old_secret, second.headers["Budding-Signature"], second.body)


def test_rotating_again_keeps_only_the_secret_it_replaces(program: Any) -> None:
    with unit_of_work() as session:
        endpoint, first = service.create_endpoint(
            session, program, url="https://hooks.example.com/in", event_types=["*"]
        )
        endpoint_id = endpoint.id
        _, second = service.rotate_secret(
            session, program.id, endpoint_id, keep_previous=timedelta(days=7)
        )
        endpoint, third = service.rotate_secret(
            session, program.id, endpoint_id, keep_previous=timedelta(hours=1)
        )
        assert endpoint.signing_secrets(utcnow()) == [third, second]
        assert first not in endpoint.signing_secrets(utcnow())
        endpoint, fourth = service.rotate_secret(session, program.id, endpoint_id)
        assert endpoint.signing_secrets(utcnow()) == [fourth]
        assert endpoint.previous_secret_signs_until is None


@pytest.mark.parametrize("keep", [timedelta(seconds=-1), timedelta(days=7, seconds=1)])
def test_an_overlap_out_of_range_is_refused_and_changes_nothing(
    program: Any, keep: timedelta
) -> None:
    with unit_of_work() as session:
        endpoint, secret = service.create_endpoint(
            session, program, url="https://hooks.example.com/in", event_types=["*"]
        )
        endpoint_id = endpoint.id
    with pytest.raises(ValidationFailed) as caught, unit_of_work() as session:
        service.rotate_secret(session, program.id, endpoint_id, keep_previous=keep)
    assert caught.value.fields == {"keep_previous": "must be between 0 and 168 hours"}
    with unit_of_work() as session:
        endpoint = service.get_endpoint(session, program.id, endpoint_id)
        assert endpoint.secret == secret and endpoint.previous_secret is None


def test_api_rotate_secret_with_an_overlap(client: Any, program: Any, receiver: Receiver) -> None:
    endpoint_id = add_endpoint(receiver, ["*"])
    path = f"/api/v1/webhooks/{endpoint_id}"
    assert client.get(path).json()["previous_secret_signs_until"] is None

    r = client.post(f"{path}/secret", json={"keep_previous_hours": 500})
    assert r.status_code == 422 and set(r.json()["error"]["fields"]) == {"keep_previous_hours"}
    with unit_of_work() as session:
        assert service.get_endpoint(session, program.id, endpoint_id).secret == receiver.secret

    r = client.post(f"{path}/secret", json={"keep_previous_hours": 24})
    assert r.status_code == 200, r.text
    until = r.json()["previous_secret_signs_until"]
    assert until is not None and client.get(path).json()["previous_secret_signs_until"] == until
    with unit_of_work() as session:
        endpoint = service.get_endpoint(session, program.id, endpoint_id)
        assert endpoint.signing_secrets(utcnow()) == [r.json()["secret"], receiver.secret]
    assert receiver.secret not in r.text  # the old secret is never shown

    r = client.post(f"{path}/secret", json={})
    assert r.status_code == 200 and r.json()["previous_secret_signs_until"] is None


def test_cli_rotate_secret_with_an_overlap(program: Any, receiver: Receiver) -> None:
    from budding.core.cli import app

    runner = CliRunner(env={"COLUMNS": "200"})
    endpoint_id = add_endpoint(receiver, ["*"])
    args = ["webhooks", "rotate-secret", str(endpoint_id), "-p", "acme", "--yes"]
    r = runner.invoke(app, [*args, "--keep-previous", "1000"])
    assert r.exit_code == 1 and "keep_previous: must be between 0 and 168 hours" in r.output
    r = runner.invoke(app, [*args, "--keep-previous", "2"])
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip().splitlines()[-1]
    with unit_of_work() as session:
        endpoint = service.get_endpoint(session, program.id, endpoint_id)
        assert endpoint.signing_secrets(utcnow()) == [secret, receiver.secret]


def test_admin_page_rotates_with_an_overlap(
    anon_client: Any, program: Any, receiver: Receiver
) -> None:
    csrf = login(anon_client)
    endpoint_id = add_endpoint(receiver, ["*"])
    page = anon_client.get("/admin/acme/webhooks").text
    assert f'data-testid="keep-previous-{endpoint_id}"' in page
    assert f'data-testid="old-secret-{endpoint_id}"' not in page
    r = anon_client.post(
        f"/admin/acme/webhooks/{endpoint_id}/secret",
        data={"csrf_token": csrf, "keep_previous_hours": "24"},
    )
    assert r.status_code == 200 and "with the old one until the time shown" in r.text
    assert f'data-testid="old-secret-{endpoint_id}"' in r.text
    with unit_of_work() as session:
        endpoint = service.get_endpoint(session, program.id, endpoint_id)
        assert endpoint.previous_secret == receiver.secret
        assert endpoint.secret in r.text and receiver.secret not in r.text


# --- redelivery: one live schedule, one attempt at a time ------------------------------------


def job_of(job_id: int | None) -> JobRecord:
    with unit_of_work() as session:
        return jobs.get_job(session, job_id or 0)


def test_a_failed_redelivery_of_a_pending_delivery_keeps_its_retries(
    immediate_jobs: None,
    monkeypatch: pytest.MonkeyPatch,
    client: Any,
    program: Any,
    receiver: Receiver,
) -> None:
    """QA's case: redelivering a delivery that is still being retried, to a receiver that
    still answers 500, is one extra attempt. The delivery stays pending on its schedule
    (never listed as failed while retries are due) and fails after its last retry."""
    fast_retries(monkeypatch, retries=2, delay=1.0)
    receiver.fail_first = 100
    add_endpoint(receiver, ["*"])
    emit("reward.issued", {"member": "m1"})
    (delivery,) = deliveries()
    assert delivery.status == "pending" and delivery.attempts == 1
    scheduled, schedule_job = delivery.next_attempt_at, delivery.job_id
    assert scheduled is not None

    r = client.post(f"/api/v1/webhooks/deliveries/{delivery.uid}/redeliver")
    assert r.status_code == 202, r.text
    assert len(receiver.requests) == 2  # the immediate attempt was made
    detail = client.get(f"/api/v1/webhooks/deliveries/{delivery.uid}").json()
    assert detail["status"] == "pending" and detail["attempts"] == 2
    assert [a["status_code"] for a in detail["attempt_log"]] == [500, 500]
    (delivery,) = deliveries()
    assert delivery.next_attempt_at == scheduled  # the next retry, as scheduled
    assert delivery.job_id == schedule_job
    failed = client.get("/api/v1/webhooks/deliveries", params={"status": "failed"}).json()
    assert failed["deliveries"] == []
    job = job_of(schedule_job)
    assert job.kind == "webhooks.deliver" and job.status == "queued" and job.attempts == 1

    def retried_out() -> bool:
        jobs.run_due()
        return deliveries()[0].status != "pending"

    wait_for(retried_out)
    (delivery,) = deliveries()
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    assert delivery.attempts == 4  # 3 scheduled attempts and the redelivery
    assert [a.number for a in attempts()] == [1, 2, 3, 4]
    assert [q.headers["Budding-Attempt"] for q in receiver.requests] == ["1", "2", "3", "4"]
    job = job_of(schedule_job)
    assert job.status == "failed" and job.attempts == 3


def test_a_redelivery_that_succeeds_ends_the_retries(
    immediate_jobs: None, monkeypatch: pytest.MonkeyPatch, program: Any, receiver: Receiver
) -> None:
    fast_retries(monkeypatch, retries=3, delay=0.5)
    receiver.fail_first = 1
    add_endpoint(receiver, ["*"])
    emit("reward.issued", {"member": "m1"})
    (delivery,) = deliveries()
    with unit_of_work() as session:
        service.redeliver(session, program.id, delivery.uid)
    (delivery,) = deliveries()
    assert delivery.status == "delivered" and delivery.attempts == 2
    assert delivery.next_attempt_at is None
    time.sleep(0.6)
    jobs.run_due()  # the retry that was due finds it delivered and sends nothing
    assert len(receiver.requests) == 2 and deliveries()[0].attempts == 2
    job = job_of(delivery.job_id)
    assert job.kind == "webhooks.deliver" and job.status == "succeeded"
    assert job.result == {"skipped": "already delivered"}


def test_a_failed_redelivery_of_a_failed_delivery_leaves_it_failed(
    immediate_jobs: None, monkeypatch: pytest.MonkeyPatch, program: Any, receiver: Receiver
) -> None:
    fast_retries(monkeypatch, retries=0)
    receiver.fail_first = 100
    add_endpoint(receiver, ["*"])
    emit("reward.issued", {"member": "m1"})
    (delivery,) = deliveries()
    assert delivery.status == "failed" and delivery.attempts == 1
    first_job = delivery.job_id

    with unit_of_work() as session:
        service.redeliver(session, program.id, delivery.uid)
    (delivery,) = deliveries()
    assert delivery.status == "failed" and delivery.attempts == 2
    assert delivery.next_attempt_at is None
    redelivery = job_of(delivery.job_id)
    assert redelivery.kind == "webhooks.redeliver" and redelivery.status == "failed"
    assert delivery.job_id != first_job

    receiver.fail_first = 0
    with unit_of_work() as session:
        service.redeliver(session, program.id, delivery.uid)
    (delivery,) = deliveries()
    assert delivery.status == "delivered" and delivery.attempts == 3
    assert [q.answered for q in receiver.requests] == [500, 500, 200]


def test_a_redelivery_asked_for_before_the_last_retry_is_still_made(
    program: Any, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    """Redelivering while the delivery's last scheduled attempt is due: that attempt fails
    and ends the schedule, and the redelivery, asked for before, is still made (it sent
    nothing, finding the delivery failed)."""
    fast_retries(monkeypatch, retries=0)
    receiver.fail_first = 1
    add_endpoint(receiver, ["*"])
    emit("reward.issued", {"member": "m1"})  # no worker yet: its job waits
    (delivery,) = deliveries()
    with unit_of_work() as session:
        service.redeliver(session, program.id, delivery.uid)
    assert jobs.run_due() == 2
    assert [q.answered for q in receiver.requests] == [500, 200]
    (delivery,) = deliveries()
    assert delivery.status == "delivered" and delivery.attempts == 2


def test_asking_twice_before_it_ran_queues_one_redelivery(program: Any, receiver: Receiver) -> None:
    add_endpoint(receiver, ["*"])
    emit("reward.issued", {"member": "m1"})
    assert jobs.run_due() == 1
    (delivery,) = deliveries()
    assert delivery.status == "delivered"
    with unit_of_work() as session:
        first = service.redeliver(session, program.id, delivery.uid)
        assert first.status == "pending"
    with unit_of_work() as session:
        service.redeliver(session, program.id, delivery.uid)
    assert jobs.run_due() == 1
    assert len(receiver.requests) == 2
    (delivery,) = deliveries()
    assert delivery.status == "delivered" and delivery.attempts == 2


def test_attempts_at_one_delivery_are_made_one_at_a_time(program: Any, receiver: Receiver) -> None:
    """A redelivery asked for while the delivery's own job is due: two workers take both
    jobs at once, but only one request is in flight; the other waits for its answer,
    finds the delivery delivered and sends nothing (no duplicate, no attempt counted
    twice)."""
    receiver.hold = threading.Event()
    add_endpoint(receiver, ["*"])
    emit("reward.issued", {"member": "m1"})  # no worker yet: its job waits
    (delivery,) = deliveries()
    with unit_of_work() as session:
        service.redeliver(session, program.id, delivery.uid)
    with unit_of_work() as session:
        queued = session.scalars(select(JobRecord).where(JobRecord.status == "queued")).all()
        assert sorted(j.kind for j in queued) == ["webhooks.deliver", "webhooks.redeliver"]
    consumer = jobs.start_worker(workers=2, poll_interval=0.1)
    try:

        def both_running() -> bool:
            with unit_of_work() as session:
                running = session.scalars(
                    select(JobRecord).where(JobRecord.status == "running")
                ).all()
            return len(running) == 2

        wait_for(lambda: receiver.arrived >= 1)
        wait_for(both_running)
        time.sleep(1.0)
        assert receiver.arrived == 1  # the second attempt waits for the first one
        receiver.hold.set()

        def finished() -> bool:
            with unit_of_work() as session:
                statuses = session.scalars(select(JobRecord.status)).all()
            return all(s in ("succeeded", "failed") for s in statuses)

        wait_for(finished)
    finally:
        receiver.hold.set()
        consumer.stop(graceful=True)
    assert receiver.arrived == 1 and [q.answered for q in receiver.requests] == [200]
    (delivery,) = deliveries()
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert [a.number for a in attempts()] == [1]
    with unit_of_work() as session:
        results = sorted(
            str(j.result) for j in session.scalars(select(JobRecord)) if j.status == "succeeded"
        )
    assert len(results) == 2 and any("skipped" in r for r in results)


def test_a_redelivery_takes_over_from_a_schedule_that_was_stopped(
    program: Any, receiver: Receiver
) -> None:
    """A pending delivery whose member was erased is failed while its job still waits.
    Redelivering it hands it to the redelivery's job: the old job, when its turn comes,
    sends nothing (no second schedule), and the redelivery sends the redacted body once."""
    add_endpoint(receiver, ["*"])
    emit("reward.issued", {"member": "u-42"})  # no worker yet: its job waits
    with unit_of_work() as session:
        assert service.redact_deliveries_mentioning(session, program.id, ["u-42"]) == 1
    (delivery,) = deliveries()
    assert delivery.status == "failed"
    old_job = delivery.job_id
    with unit_of_work() as session:
        service.redeliver(session, program.id, delivery.uid)
    assert jobs.run_due() == 2
    assert len(receiver.requests) == 1
    assert receiver.requests[0].json["data"] == {"redacted": service.REDACTED}
    (delivery,) = deliveries()
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert job_of(old_job).result == {"skipped": f"job {delivery.job_id} owns the delivery now"}


def test_an_erased_pending_delivery_is_not_sent(program: Any, receiver: Receiver) -> None:
    add_endpoint(receiver, ["*"])
    emit("reward.issued", {"member": "u-42"})
    with unit_of_work() as session:
        service.redact_deliveries_mentioning(session, program.id, ["u-42"])
    assert jobs.run_due() == 1
    assert receiver.requests == []
    (delivery,) = deliveries()
    assert delivery.status == "failed" and delivery.attempts == 0
