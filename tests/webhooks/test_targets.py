"""SSRF: endpoint URLs may not reach internal addresses (at creation and at delivery),
unless the installation allows private targets. Also: retention and erasure of the
delivery log."""

from __future__ import annotations

import ipaddress
import json
import socket
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from budding.core import jobs
from budding.core.db import unit_of_work, utcnow
from budding.core.errors import ValidationFailed
from budding.members import service as members
from budding.programs import service as programs
from budding.webhooks import service, tasks
from budding.webhooks.models import DELIVERED, FAILED, WebhookAttempt, WebhookDelivery
from budding.webhooks.targets import UnsafeTarget, check_target, forbidden_reason
from tests.webhooks.receiver import Receiver

FORBIDDEN = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("0.0.0.0", "unspecified"),
    ("100.64.0.1", "not public"),  # carrier-grade NAT
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("ff02::1", "multicast"),
    ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
]


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN)
def test_internal_addresses_are_forbidden(address: str, reason: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def _create(url: str) -> Any:
    with unit_of_work() as session:
        return service.create_endpoint(
            session, programs.get_program(session, "acme"), url=url, event_types=["*"]
        )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "http://0.0.0.0:9/",
    ],
)
def test_creating_an_endpoint_to_an_internal_address_is_refused(
    program: Any, strict_targets: None, url: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _create(url)
    assert set(caught.value.fields) == {"url"}
    assert "must not point to a" in caught.value.fields["url"]
    assert "BUDDING_WEBHOOKS_ALLOW_PRIVATE" in caught.value.fields["url"]


def test_the_api_names_the_url_field(client: Any, strict_targets: None) -> None:
    r = client.post("/api/v1/webhooks", json={"url": "http://10.0.0.8/in", "event_types": ["*"]})
    assert r.status_code == 422
    error = r.json()["error"]
    assert set(error["fields"]) == {"url"}
    assert "private address" in error["fields"]["url"]
    r = client.post("/api/v1/webhooks", json={"url": "gopher://x.test/", "event_types": ["*"]})
    assert r.status_code == 422 and "http" in r.json()["error"]["fields"]["url"]


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com:99999/in", "https://hooks.example.com:x/in", "http://[::1/"]
)
def test_a_url_that_does_not_parse_names_the_url_field(program: Any, url: str) -> None:
    with pytest.raises(ValidationFailed) as caught:  # was a ValueError: a traceback, a 500
        _create(url)
    assert set(caught.value.fields) == {"url"}
    assert "must be an http:// or https:// URL" in caught.value.fields["url"]


def test_a_name_resolving_to_a_private_address_is_refused(
    program: Any, strict_targets: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        assert host == "hooks.example.net"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(ValidationFailed) as caught:
        _create("https://hooks.example.net/in")
    assert "hooks.example.net (10.0.0.7)" in caught.value.fields["url"]


def test_an_unresolvable_name_is_accepted_and_checked_at_delivery(
    program: Any, strict_targets: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, _ = _create("https://hooks.invalid/in")  # DNS may be set up later
    assert endpoint.url == "https://hooks.invalid/in"


def test_delivery_checks_again_when_dns_changed(
    program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created while allowed (or while the name was public), then refused at delivery:
    nothing is sent and the attempt says why."""
    receiver = Receiver().start()
    try:
        with unit_of_work() as session:
            prog = programs.get_program(session, "acme")
            _, receiver.secret = service.create_endpoint(
                session, prog, url=receiver.url, event_types=["*"]
            )
        monkeypatch.setenv("BUDDING_WEBHOOKS_ALLOW_PRIVATE", "false")
        from budding.core.config import get_settings

        get_settings.cache_clear()
        with jobs.immediate(), unit_of_work() as session:
            service.send_test(session, programs.get_program(session, "acme"), 1)
        assert receiver.requests == []
        with unit_of_work() as session:
            attempt = session.scalars(select(WebhookAttempt)).one()
            assert not attempt.ok and attempt.status_code is None
            assert attempt.error and attempt.error.startswith("refused: the URL must not")
            assert "loopback" in attempt.error
    finally:
        receiver.stop()


def test_delivery_connects_to_the_checked_address(
    strict_targets: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request goes to the address that was checked, with the name as Host and TLS
    server name: a second DNS answer cannot redirect it."""
    target = check_target("https://hooks.example.net:8443/in", allow_private=True)
    assert target.address is None  # allowed: connect by name
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 8443))],
    )
    target = check_target("https://hooks.example.net:8443/in", allow_private=False)
    assert target.address == "93.184.215.14" and target.host == "hooks.example.net"
    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def handler(request: Any) -> Any:
        seen["url"] = str(request.url)
        seen["host"] = request.headers["host"]
        seen["sni"] = request.extensions.get("sni_hostname")
        raise Stop

    import httpx

    real_client = httpx.Client

    def client(**kwargs: Any) -> Any:
        return real_client(transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(tasks.httpx, "Client", client)
    with pytest.raises(Stop):
        tasks.post("https://hooks.example.net:8443/in", "{}", {})
    assert seen == {
        "url": "https://93.184.215.14:8443/in",
        "host": "hooks.example.net:8443",
        "sni": "hooks.example.net",
    }


def test_private_targets_can_be_allowed(program: Any) -> None:
    """The installation setting (on in this folder's tests: the receiver is local)."""
    endpoint, _ = _create("http://127.0.0.1:9/x")
    assert endpoint.url == "http://127.0.0.1:9/x"
    with pytest.raises(UnsafeTarget):
        check_target("http://127.0.0.1:9/x", allow_private=False)


# --- retention ----------------------------------------------------------------------------


def _delivery(endpoint_id: int, *, age_days: float, status: str, body: str = "{}") -> int:
    with unit_of_work() as session:
        prog = programs.get_program(session, "acme")
        created = utcnow() - timedelta(days=age_days)
        row = WebhookDelivery(
            program_id=prog.id,
            endpoint_id=endpoint_id,
            uid="dlv_" + uuid.uuid4().hex,
            event_id="evt_x",
            event_type="reward.issued",
            body=body,
            status=status,
            attempts=1,
            created_at=created,
        )
        session.add(row)
        session.flush()
        session.add(
            WebhookAttempt(
                program_id=prog.id,
                delivery_id=row.id,
                number=1,
                started_at=created,
                response_excerpt="echo " + body,
                ok=status == DELIVERED,
            )
        )
        return row.id


def test_old_deliveries_are_pruned_by_the_periodic_job(program: Any) -> None:
    endpoint, _ = _create("http://127.0.0.1:9/x")
    old = _delivery(endpoint.id, age_days=31, status=DELIVERED)
    old_failed = _delivery(endpoint.id, age_days=40, status=FAILED)
    recent = _delivery(endpoint.id, age_days=29, status=DELIVERED)
    old_pending = _delivery(endpoint.id, age_days=31, status="pending")
    with jobs.immediate():
        ids = jobs.enqueue_periodic()
        assert jobs.enqueue_periodic() == ids  # once per period, however many workers ask
    with unit_of_work() as session:
        job = jobs.get_job(session, ids[0])
        assert job.kind == "webhooks.prune_deliveries" and job.status == "succeeded"
        assert job.result == {"deleted": 2, "retention_days": 30}
        left = set(session.scalars(select(WebhookDelivery.id)))
        assert left == {recent, old_pending}
        assert {a.delivery_id for a in session.scalars(select(WebhookAttempt))} == left
    assert old not in left and old_failed not in left


def test_retention_follows_the_setting(program: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from budding.core.config import get_settings

    endpoint, _ = _create("http://127.0.0.1:9/x")
    _delivery(endpoint.id, age_days=8, status=DELIVERED)
    kept = _delivery(endpoint.id, age_days=6, status=DELIVERED)
    monkeypatch.setenv("BUDDING_WEBHOOK_RETENTION_DAYS", "7")
    get_settings.cache_clear()
    assert tasks.prune_deliveries.func(None) == {"deleted": 1, "retention_days": 7}
    with unit_of_work() as session:
        assert list(session.scalars(select(WebhookDelivery.id))) == [kept]
    monkeypatch.setenv("BUDDING_WEBHOOK_RETENTION_DAYS", "0")  # keep forever
    get_settings.cache_clear()
    assert tasks.prune_deliveries.func(None)["deleted"] == 0


# --- erasure --------------------------------------------------------------------------------


def test_erasing_a_member_redacts_the_deliveries_that_carry_their_data(program: Any) -> None:
    from tests.members.test_pages import add_member

    add_member(external_id="ann", name="Ann", email="ann@example.com")
    add_member(external_id="bob", name="Bob", email="bob@example.com")
    endpoint, _ = _create("http://127.0.0.1:9/x")

    def body(data: dict[str, Any]) -> str:
        envelope = {"id": "evt_1", "type": "reward.issued", "created_at": "x", "program": "acme"}
        return json.dumps({**envelope, "data": data})

    anns = _delivery(endpoint.id, age_days=1, status=DELIVERED, body=body({"member": "ann"}))
    by_mail = _delivery(
        endpoint.id, age_days=2, status="pending", body=body({"to": "ann@example.com"})
    )
    bobs = _delivery(endpoint.id, age_days=1, status=DELIVERED, body=body({"member": "bob"}))
    with unit_of_work() as session:
        prog = programs.get_program(session, "acme")
        members.erase_member(session, prog, members.get_member(session, prog.id, "ann"))
    with unit_of_work() as session:
        rows = {d.id: d for d in session.scalars(select(WebhookDelivery))}
        excerpts = {
            a.delivery_id: a.response_excerpt for a in session.scalars(select(WebhookAttempt))
        }
    for redacted in (anns, by_mail):
        sent = json.loads(rows[redacted].body)
        assert sent["data"] == {"redacted": "the member's data was erased"}
        assert sent["id"] == "evt_1" and sent["type"] == "reward.issued"
        assert "ann" not in rows[redacted].body and excerpts[redacted] == ""
    assert rows[by_mail].status == FAILED  # never sent now
    assert json.loads(rows[bobs].body)["data"] == {"member": "bob"}
    assert "bob" in excerpts[bobs]


def test_a_members_export_lists_the_deliveries_about_them(client: Any) -> None:
    """The deliveries whose body carries the member's external id or e-mail: event type,
    time, endpoint URL and status; never the endpoint's secret."""
    client.post("/api/v1/members", json={"external_id": "ann", "email": "ann@example.com"})
    _, secret = _create("http://127.0.0.1:9/ann-hook")
    with unit_of_work() as session:
        prog = programs.get_program(session, "acme")
        service.emit(session, prog, "referral.converted", {"referee": "ann", "referrer": "bob"})
        service.emit(
            session, prog, "waitlist.released", {"entries": [{"email": "ann@example.com"}]}
        )
        service.emit(session, prog, "referral.converted", {"referee": "carl", "referrer": "bob"})
        sent = list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))

    r = client.get("/api/v1/members/ann/export")
    assert r.status_code == 200, r.text
    part = r.json()["webhooks"]
    assert part == {
        "webhook_deliveries": [
            {
                "event_type": d.event_type,
                "created_at": d.created_at.isoformat(),
                "endpoint_url": "http://127.0.0.1:9/ann-hook",
                "status": "pending",
            }
            for d in sent[:2]
        ]
    }
    assert secret not in r.text
