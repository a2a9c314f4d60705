"""The admin dashboards (share funnel, virality, share messages) and the portal's
"Invite friends" page, rendered server-side."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from budding.core import i18n
from budding.core.db import unit_of_work
from budding.programs.service import get_program
from budding.sharing import service
from budding.sharing.schemas import StepIn
from tests.accounts.helpers import staff_client
from tests.forms import field_errors
from tests.sharing.conftest import add_member, refer, referrals


@pytest.fixture
def staff(anon_client: Any, program: Any) -> tuple[Any, str]:
    token = staff_client(anon_client, "admin")
    return anon_client, token


def _some_funnel() -> None:
    ann = add_member("ann", name="Ann")
    bob = add_member("bob", name="Bob")
    at = datetime(2025, 1, 2, 12, tzinfo=UTC)
    with unit_of_work() as s:
        p = get_program(s, "acme")
        for i in range(3):
            service.record_steps(
                s,
                p,
                ann,
                [
                    StepIn(
                        id=f"open-{i}-xx",
                        type="share_opened",
                        share_id=f"kit-{i}-xxxx",
                        occurred_at=at,
                    ),
                    StepIn(
                        id=f"sent-{i}-xx",
                        type="share_sent",
                        share_id=f"kit-{i}-xxxx",
                        channel="line",
                        occurred_at=at + timedelta(seconds=5 + i),
                    ),
                ],
                "api",
            )
    refer(ann, bob, at + timedelta(hours=1), "line")


def test_funnel_dashboard(staff) -> None:
    browser, _ = staff
    _some_funnel()
    page = browser.get("/admin/acme/sharing", params={"since": "2025-01-01", "until": "2025-01-31"})
    assert page.status_code == 200, page.text
    assert 'data-testid="funnel-table"' in page.text
    assert '<tr data-channel="line">' in page.text
    assert 'data-testid="cheapest">LINE' in page.text
    assert "data-chart=" in page.text and "/static/vendor/echarts.min.js" in page.text
    page = browser.get(
        "/admin/acme/sharing",
        params={
            "before_since": "2025-01-01",
            "before_until": "2025-01-01",
            "after_since": "2025-01-02",
            "after_until": "2025-01-03",
        },
    )
    assert page.status_code == 200 and 'data-testid="comparison"' in page.text
    bad = browser.get("/admin/acme/sharing", params={"since": "yesterday"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text
    assert "Share funnel" in browser.get("/admin/acme").text  # in the navigation


def test_virality_dashboard(staff) -> None:
    browser, _ = staff
    _some_funnel()
    page = browser.get("/admin/acme/virality", params={"cohort": "month"})
    assert page.status_code == 200, page.text
    assert 'data-testid="k-factor">0.5' in page.text
    assert 'data-testid="generations-chart"' in page.text


def test_messages_page_edits_templates_and_settings(staff, client) -> None:
    browser, csrf = staff
    page = browser.get("/admin/acme/sharing/messages")
    assert page.status_code == 200 and "{program}" in page.text
    r = browser.post(
        "/admin/acme/sharing/messages",
        data={
            "csrf_token": csrf,
            "key": "chat",
            "locale": "id",
            "body": "Ayo ke {program}: {link}",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert (
        client.get("/api/v1/share-templates/chat/id").json()["body"] == "Ayo ke {program}: {link}"
    )
    r = browser.post(
        "/admin/acme/sharing/messages",
        data={
            "csrf_token": csrf,
            "key": "chat",
            "locale": "id",
            "body": "no link here",
        },
    )
    assert r.status_code == 422 and "must contain {link}" in r.text
    assert "no link here" in r.text  # the draft is kept
    r = browser.post(
        "/admin/acme/sharing/messages",
        data={
            "csrf_token": csrf,
            "key": "chat",
            "locale": "id",
            "action": "reset",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.get("/api/v1/share-templates/chat/id").json()["overridden"] is False
    r = browser.post(
        "/admin/acme/sharing/settings",
        data={
            "csrf_token": csrf,
            "channels": ["line", "wechat"],
            "tell_a_friend_daily_limit": "2",
            "widget_origins": "https://shop.example.com *",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    settings = client.get("/api/v1/sharing/settings").json()
    assert settings["channels"] == ["line", "wechat"] and settings["tell_a_friend_daily_limit"] == 2
    r = browser.post(
        "/admin/acme/sharing/settings",
        data={"csrf_token": csrf, "channels": ["line"], "tell_a_friend_daily_limit": "500"},
    )
    assert r.status_code == 422
    # an emptied limit is a mistake to point out, not 0 (which turns tell-a-friend off)
    r = browser.post(
        "/admin/acme/sharing/settings",
        data={"csrf_token": csrf, "channels": ["line"], "tell_a_friend_daily_limit": ""},
    )
    assert r.status_code == 422 and "tell_a_friend_daily_limit" in r.text
    assert client.get("/api/v1/sharing/settings").json()["tell_a_friend_daily_limit"] == 2
    assert (
        browser.post(
            "/admin/acme/sharing/messages", data={"key": "chat", "locale": "id", "body": "{link}"}
        ).status_code
        == 403
    )


@pytest.mark.parametrize(
    ("key", "fields", "name", "reason"),
    [
        ("chat", {"body": "{link} " + "x" * 4001}, "body", "must be at most 2000 characters"),
        ("chat", {"body": "{link} " + "x" * 2001}, "body", "must be at most 2000 characters"),
        ("post", {"body": "x" * 4001}, "body", "must be at most 256 characters"),
        (
            "email",
            {"subject": "s" * 401, "body": "{link}"},
            "subject",
            "must be at most 200 characters",
        ),
    ],
)
def test_messages_page_names_a_too_long_field_under_it(
    staff, client, key: str, fields: dict[str, str], name: str, reason: str
) -> None:
    """However long, what was typed comes back in the form with the reason under its
    field, not a bare error page, and nothing is saved."""
    browser, csrf = staff
    r = browser.post(
        "/admin/acme/sharing/messages",
        data={"csrf_token": csrf, "key": key, "locale": "id", **fields},
    )
    assert r.status_code == 422, r.text[:300]
    assert f'<form method="post" class="template-form" id="{key}-id">' in r.text
    assert field_errors(r.text) == {name: reason}
    assert fields[name] in r.text  # the draft is kept
    assert client.get(f"/api/v1/share-templates/{key}/id").json()["overridden"] is False


def test_share_kit_settings_name_a_bad_field_under_it(staff, client) -> None:
    browser, csrf = staff
    r = browser.post(
        "/admin/acme/sharing/settings",
        data={
            "csrf_token": csrf,
            "channels": ["line"],
            "tell_a_friend_daily_limit": "2",
            "kakao_sdk_url": "http://insecure.example.com/sdk.js",
        },
    )
    assert r.status_code == 422
    html = r.text
    sdk = html.index('name="kakao_sdk_url"')
    assert 'value="http://insecure.example.com/sdk.js"' in html[sdk : html.index("</div>", sdk)]
    assert 'class="field-error"' in html[sdk : html.index("</div>", sdk)]
    assert set(field_errors(html)) == {"kakao_sdk_url"}
    # the form as it was typed: line is the only channel ticked
    assert html.count(" checked>") == 1 and 'value="line" checked' in html
    r = browser.post(
        "/admin/acme/sharing/settings",
        data={"csrf_token": csrf, "channels": ["line"], "tell_a_friend_daily_limit": ""},
    )
    limit = r.text.index('name="tell_a_friend_daily_limit"')
    assert 'class="field-error"' in r.text[limit : r.text.index("</div>", limit)]
    assert set(field_errors(r.text)) == {"tell_a_friend_daily_limit"}
    assert client.get("/api/v1/sharing/settings").json()["kakao_sdk_url"] is None


def test_invite_page_shows_the_kit(portal, client, ann) -> None:
    rules = pytest.importorskip("budding.rewards.rules", reason="rewards is not installed")
    with unit_of_work() as s:
        rules.create_rule(
            s,
            get_program(s, "acme"),
            {
                "name": "Thanks",
                "side": "referrer",
                "trigger": "signup",
                "kind": "points",
                "amount": 50,
            },
        )
    bob = add_member("bob", name="Bob Kim")
    refer(ann, bob, datetime(2025, 1, 2, tzinfo=UTC), "kakaotalk")
    with unit_of_work() as s:
        p = get_program(s, "acme")
        referrals.update_referral_settings(s, p, {"mode": "invite_only", "invite_quota": 3})
        referrals.issue_invites(s, p, ann, 1)
    page = portal.get("/p/acme/invite", headers={"accept-language": "ko"})
    assert page.status_code == 200, page.text
    kit = client.get("/api/v1/members/ann/share-kit", params={"locale": "ko"}).json()
    html = page.text
    assert kit["link"] in html and 'lang="ko"' in html
    assert "친구 초대" in html and "한 번에 공유하기" in html
    assert 'data-testid="share-kakaotalk"' in html and 'data-testid="share-whatsapp"' in html
    assert "https://wa.me/?text=" in html
    assert "Bob Kim" in html  # friends who joined
    assert 'data-testid="rewards"' in html and "50포인트" in html
    assert 'data-testid="invites-left"><b>2</b>' in html
    assert 'data-testid="invite-codes"' in html
    assert "/p/acme/invite/qr.svg" in html
    svg = portal.get("/p/acme/invite/qr.svg")
    assert svg.status_code == 200 and svg.content.startswith(b"<svg")
    assert b"viewBox" in svg.content


def test_invite_codes_from_the_portal(portal, ann) -> None:
    page = portal.get("/p/acme/invite")
    assert 'data-testid="invites-left"' not in page.text  # an open program: no invite codes
    with unit_of_work() as s:
        referrals.update_referral_settings(
            s, get_program(s, "acme"), {"mode": "invite_only", "invite_quota": 1}
        )
    page = portal.get("/p/acme/invite")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert 'data-testid="new-code"' in page.text
    r = portal.post("/p/acme/invite/codes", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/invite?done=code#codes")
    page = portal.get("/p/acme/invite?done=code")
    assert "Here is a new invite code" in page.text
    assert 'data-testid="invite-codes"' in page.text and "Ready to share" in page.text
    assert (
        'data-testid="new-code"' not in page.text and "You have used all your invites." in page.text
    )
    r = portal.post("/p/acme/invite/codes", data={"csrf_token": csrf})
    assert r.status_code == 409 and "You have no invites left." in r.text


def test_invite_page_needs_a_signed_in_member(anon_client, program) -> None:
    r = anon_client.get("/p/acme/invite", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/p/acme/sign-in")


def test_tell_a_friend_errors_are_tied_to_the_address(portal, ann) -> None:
    """A refused address is named under its input (and in the page's message at the top,
    which a member sees first); a refusal that is no field's marks no input."""
    page = portal.get("/p/acme/invite")
    assert field_errors(page.text) == {}
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    for to, reason in (
        ("not an address", "Enter a valid e-mail address."),
        ("ann@example.com", "The invitation could not be sent. Check the address."),
    ):
        r = portal.post("/p/acme/invite/tell", data={"csrf_token": csrf, "to": to})
        assert r.status_code == 422
        assert field_errors(r.text) == {"to": reason}
        assert f'value="{to}"' in r.text  # the form keeps what was typed, and stays open
        assert '<details id="tell" data-channel="tell_a_friend" open>' in r.text
    r = portal.post(
        "/p/acme/invite/tell",
        data={"csrf_token": csrf, "to": "nope"},
        headers={"Accept-Language": "ko"},
    )
    with i18n.use_locale("ko"):
        korean = i18n.gettext("Enter a valid e-mail address.")
    assert field_errors(r.text) == {"to": korean} and korean != "Enter a valid e-mail address."
    with unit_of_work() as s:
        p = get_program(s, "acme")
        service.update_settings(s, p, {"tell_a_friend_daily_limit": 0})
    r = portal.post("/p/acme/invite/tell", data={"csrf_token": csrf, "to": "pal@example.org"})
    assert "This program does not send invitation e-mails." in r.text
    assert field_errors(r.text) == {}


def test_assets_are_served(anon_client) -> None:
    for name, kind in (("invite.js", "javascript"), ("sharing.css", "css")):
        r = anon_client.get(f"/share/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    assert anon_client.get("/share/static/../models.py").status_code == 404
    assert anon_client.get("/share/static/secret.txt").status_code == 404


def test_the_widget_script_is_the_same_at_its_static_address(anon_client) -> None:
    """/share/static/widget.js is the embed script /w/widget.js serves, its frame named in
    the visitor's language, never the raw file with the English default."""
    zh = {"Accept-Language": "zh-CN,zh;q=0.9"}
    embed = anon_client.get("/w/widget.js", headers=zh)
    static = anon_client.get("/share/static/widget.js", headers=zh)
    assert static.status_code == 200 and static.text == embed.text
    assert '"邀请好友"' in static.text and "Invite friends" not in static.text
    assert "Accept-Language" in static.headers["vary"]
    assert static.headers["access-control-allow-origin"] == "*"
    assert "javascript" in static.headers["content-type"]


def test_a_widget_script_without_its_title_line_fails_loudly(monkeypatch, tmp_path) -> None:
    """The check survives ``python -O`` (an assert would vanish, and the English title
    would stay): an explicit error names the missing line."""
    from budding.sharing import pages

    (tmp_path / "widget.js").write_text('const title = "Invite friends";\n', encoding="utf-8")
    monkeypatch.setattr(pages, "STATIC", tmp_path)
    pages._widget_script_in.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="defaultTitle"):
            pages._widget_script_in("ko")
    finally:
        pages._widget_script_in.cache_clear()


def test_each_share_buttons_badge_is_its_labels_first_letter(portal, ann) -> None:
    """The copy button reads "Copy message" but took its badge from the channel's label
    ("Copy link"): in Korean "메시지 복사" wore "링", the badge of 링크드인 (LinkedIn)."""
    import re

    for locale in ("en", "ko", "es", "id", "zh-Hans"):
        html = portal.get("/p/acme/invite", headers={"accept-language": locale}).text
        buttons = re.findall(
            r'data-testid="share-([a-z_]+)"><span class="dot" aria-hidden="true">(.)</span>([^<]+)<',
            html,
        )
        assert buttons, locale
        for channel, dot, label in buttons:
            if dot != "@":  # tell a friend: an e-mail sign, not a letter
                assert dot == label.strip()[:1], (locale, channel, dot, label)


def test_messages_page_says_the_services_reason_in_the_staffs_language(staff) -> None:
    """A wording check (the service's, not pydantic's) under its field in the dashboard's
    language; the placeholder is data, filled in as written."""
    browser, csrf = staff
    r = browser.post(
        "/admin/acme/sharing/messages",
        data={"csrf_token": csrf, "key": "chat", "locale": "id", "body": "hi"},
        headers={"accept-language": "ko"},
    )
    assert r.status_code == 422
    assert field_errors(r.text) == {"body": "{link}을(를) 포함해야 합니다"}


def test_share_kit_settings_say_why_in_the_staffs_language(staff) -> None:
    """The settings' own checks (their validators) under their inputs, and the banner, in
    the dashboard's language; what was typed is data, filled in as written."""
    browser, csrf = staff
    r = browser.post(
        "/admin/acme/sharing/settings",
        data={
            "csrf_token": csrf,
            "channels": ["line", "pigeon"],
            "tell_a_friend_daily_limit": "2",
            "kakao_sdk_url": "http://insecure.example.com/sdk.js",
            "widget_origins": "nope",
        },
        headers={"accept-language": "ko"},
    )
    assert r.status_code == 422
    errors = field_errors(r.text)
    assert errors["channels"].startswith("알 수 없는 채널 'pigeon'입니다."), errors
    assert errors["kakao_sdk_url"] == "https:// URL이어야 합니다"
    assert errors["widget_origins"] == (
        "'nope'은(는) https://shop.example.com 같은 출처(origin)가 아닙니다"
    )
    assert "설정을 저장하지 못했어요. 아래 항목을 확인해 주세요." in r.text
    assert "is not an origin" not in r.text and "unknown channel" not in r.text


def test_messages_page_says_its_banner_in_the_staffs_language(staff) -> None:
    """A refused message: the banner is in the dashboard's language, not the API's
    English message."""
    browser, csrf = staff
    r = browser.post(
        "/admin/acme/sharing/messages",
        data={"csrf_token": csrf, "key": "chat", "locale": "id", "body": "hi"},
        headers={"accept-language": "es"},
    )
    assert r.status_code == 422
    assert "El mensaje no se guardó. Revisa los campos de abajo." in r.text
    assert "body: must contain" not in r.text
