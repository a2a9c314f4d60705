"""Admin pages for rewards, rules and coupon pools; the member's rewards page."""

from __future__ import annotations

from datetime import UTC, datetime

from budding.core.auth import MEMBER_COOKIE, member_cookie_value
from tests.accounts.helpers import staff_client
from tests.forms import field_errors
from tests.rewards.helpers import deliver, member, rewards, rule


def test_rewards_page_and_review_forms(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    csrf = staff_client(anon_client)
    ann, bob = member(program, "ann"), member(program, "bob")
    rule(
        program,
        name="Vested points",
        side="referrer",
        trigger="conversion",
        kind="points",
        amount=10,
        vesting_days=30,
    )
    now = datetime.now(UTC)
    deliver(
        program, referral_id=1, referrer_id=ann, referee_id=bob, trigger_key="a", occurred_at=now
    )
    deliver(
        program, referral_id=1, referrer_id=ann, referee_id=bob, trigger_key="b", occurred_at=now
    )
    page = anon_client.get("/admin/acme/rewards", params={"status": "pending"})
    assert page.status_code == 200
    assert page.text.count('data-testid="reward-row"') == 2 and "Vested points" in page.text
    first, second = sorted(r["id"] for r in rewards(program))
    r = anon_client.post(
        f"/admin/acme/rewards/{first}/approve", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert r.status_code == 303 and "done=approved" in r.headers["location"]
    r = anon_client.post(
        f"/admin/acme/rewards/{second}/reject", data={"csrf_token": csrf, "reason": "dup"}
    )
    assert r.status_code == 200
    assert {x["id"]: x["status"] for x in rewards(program)} == {first: "issued", second: "rejected"}
    # No CSRF token: refused, nothing changes.
    r = anon_client.post(f"/admin/acme/rewards/{first}/reject", data={})
    assert r.status_code == 403
    assert anon_client.get("/admin/acme/rewards", params={"member": "nobody"}).status_code == 200


def test_analyst_sees_but_cannot_review(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    csrf = staff_client(anon_client, role="analyst")
    page = anon_client.get("/admin/acme/rewards")
    assert page.status_code == 200 and "approve-" not in page.text
    assert (
        anon_client.post("/admin/acme/rewards/1/approve", data={"csrf_token": csrf}).status_code
        == 403
    )


def test_rules_page_creates_and_reports_field_errors(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    csrf = staff_client(anon_client)
    assert anon_client.get("/admin/acme/rewards/rules").status_code == 200
    bad = {
        "csrf_token": csrf,
        "name": "Coupon",
        "side": "referee",
        "trigger": "conversion",
        "kind": "coupon",
        "pool": "",
    }
    r = anon_client.post("/admin/acme/rewards/rules", data=bad)
    assert r.status_code == 422 and "is required for coupon rewards" in r.text
    good = {
        "csrf_token": csrf,
        "name": "Three friends",
        "side": "referrer",
        "trigger": "milestone",
        "milestone": "3",
        "kind": "points",
        "amount": "300",
    }
    r = anon_client.post("/admin/acme/rewards/rules", data=good, follow_redirects=False)
    assert r.status_code == 303
    page = anon_client.get("/admin/acme/rewards/rules")
    assert page.text.count('data-testid="rule-row"') == 1 and "Three friends" in page.text


def test_coupon_upload_page(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    csrf = staff_client(anon_client)
    files = {"file": ("codes.csv", b"code\nX1\nX2\n\nbad code\n", "text/csv")}
    r = anon_client.post(
        "/admin/acme/rewards/coupons", data={"csrf_token": csrf, "pool": "launch"}, files=files
    )
    assert r.status_code == 200, r.text
    assert "launch" in r.text and "line 5" in r.text
    r = anon_client.post("/admin/acme/rewards/coupons", data={"csrf_token": csrf, "pool": "launch"})
    assert r.status_code == 422


def test_member_sees_rewards_and_points_in_their_language(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    ann, bob = member(program, "ann"), member(program, "bob")
    rule(program, name="Welcome", side="referrer", trigger="signup", kind="points", amount=20)
    deliver(
        program, referral_id=1, referrer_id=ann, referee_id=bob, trigger="signup", trigger_key="s"
    )
    anon_client.cookies.set(MEMBER_COOKIE, member_cookie_value(program.id, ann), path="/p/acme")
    page = anon_client.get("/p/acme/rewards", headers={"accept-language": "ko"})
    assert page.status_code == 200
    assert 'data-testid="points-balance">20<' in page.text
    assert "포인트" in page.text
    for locale, word in (("es", "puntos"), ("id", "poin"), ("zh-CN", "积分")):
        text = anon_client.get("/p/acme/rewards", headers={"accept-language": locale}).text
        assert word in text, locale
    anon_client.cookies.clear()
    r = anon_client.get("/p/acme/rewards", follow_redirects=False)
    assert r.status_code in (302, 303)


def test_rule_and_coupon_forms_say_the_services_reasons_in_the_staffs_language(
    anon_client, program
) -> None:  # type: ignore[no-untyped-def]
    """A rule's cross-field check and a refused upload, under their inputs in the
    dashboard's language; a line's own reason is translated with the sentence."""
    csrf = staff_client(anon_client, "owner")
    r = anon_client.post(
        "/admin/acme/rewards/rules",
        data={"csrf_token": csrf, "name": "C", "side": "referee", "kind": "coupon"},
        headers={"accept-language": "ko"},
    )
    assert r.status_code == 422
    assert field_errors(r.text) == {"pool": "쿠폰 보상에는 필수입니다"}
    r = anon_client.post(
        "/admin/acme/rewards/coupons",
        data={"csrf_token": csrf, "pool": "launch"},
        files={"file": ("codes.csv", b"bad code\n", "text/csv")},
        headers={"accept-language": "es"},
    )
    assert r.status_code == 422
    assert field_errors(r.text) == {
        "file": "no contiene ningún código válido: línea 1: un código tiene de 1 a 100 "
        "caracteres, sin espacios ni caracteres de control"
    }
    # the pool's name is checked by the pool's schema, whose field is "name": the page
    # shows it under its own input, "pool"
    r = anon_client.post(
        "/admin/acme/rewards/coupons",
        data={"csrf_token": csrf, "pool": "spring sale!"},
        files={"file": ("codes.csv", b"S1\n", "text/csv")},
        headers={"accept-language": "es"},
    )
    assert r.status_code == 422
    assert field_errors(r.text) == {
        "pool": "usa letras, dígitos, '_', '.' y '-', empezando por una letra o un dígito"
    }


def test_approving_from_an_empty_pool_says_so_in_the_staffs_language(anon_client, program) -> None:  # type: ignore[no-untyped-def]
    """The reward stays held and the page says why in the dashboard's language; the
    address carries a code, never words a link could put on the page."""
    from budding.core.db import unit_of_work
    from budding.rewards import coupons

    csrf = staff_client(anon_client)
    ann, bob = member(program, "ann"), member(program, "bob")
    with unit_of_work() as session:
        coupons.create_pool(session, program, "tiny")
    rule(program, name="Coupon", side="referee", trigger="conversion", kind="coupon", pool="tiny")
    deliver(program, referral_id=1, referrer_id=ann, referee_id=bob)
    (row,) = rewards(program)
    r = anon_client.post(
        f"/admin/acme/rewards/{row['id']}/approve",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "error=coupon_pool_empty" in r.headers["location"]
    page = anon_client.get(r.headers["location"], headers={"accept-language": "es"})
    assert "El grupo de cupones de la recompensa está vacío" in page.text
    assert rewards(program)[0]["status"] == "held"
    # words in the address are not shown
    forged = anon_client.get("/admin/acme/rewards", params={"error": "Call 555-0100 now"})
    assert forged.status_code == 200 and "555-0100" not in forged.text
