"""The share kit: messages in five languages, share URLs per channel, QR codes, templates,
the e-mail signature, settings and the widget token."""

from __future__ import annotations

import io
import time
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import segno
from PIL import Image

from budding.core.db import unit_of_work
from budding.programs.service import get_program, update_program_settings
from budding.sharing import channels as ch
from budding.sharing import qr, service
from tests.sharing.conftest import add_member

KIT = "/api/v1/members/{}/share-kit"

# The chat message ("Join me on {program}! …") as each catalog words it, for program Acme.
CHAT = {
    "en": "Join me on Acme! Here's my invite link: {link}",
    "ko": "Acme 같이 해요! 제 초대 링크로 가입하세요: {link}",
    "es": "¡Únete a Acme conmigo! Este es mi enlace de invitación: {link}",
    "id": "Yuk gabung Acme bareng aku! Ini tautan undanganku: {link}",
    "zh_Hans": "和我一起加入 Acme 吧！这是我的邀请链接：{link}",
}
EMAIL_SUBJECT = {
    "en": "Ann Lee invites you to Acme",
    "ko": "Ann Lee님이 Acme에 초대했어요",
    "es": "Ann Lee te invita a Acme",
    "id": "Ann Lee mengundangmu ke Acme",
    "zh_Hans": "Ann Lee 邀请你加入 Acme",
}
POST = {
    "en": "I'm on Acme and I think you'd like it too. Join me:",
    "ko": "요즘 Acme 쓰고 있는데 마음에 드실 거예요. 같이 해요:",
    "es": "Estoy en Acme y creo que te va a gustar. Únete:",
    "id": "Aku pakai Acme dan kayaknya kamu bakal suka juga. Yuk gabung:",
    "zh_Hans": "我在用 Acme，觉得你也会喜欢。一起来吧：",
}


def by_channel(kit: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["channel"]: c for c in kit["channels"]}


@pytest.mark.parametrize("locale", ["en", "ko", "es", "id", "zh_Hans"])
def test_messages_in_five_locales(client, ann, locale) -> None:
    r = client.get(KIT.format("ann"), params={"locale": locale.replace("_", "-")})
    assert r.status_code == 200, r.text
    kit = r.json()
    assert kit["locale"] == locale
    assert kit["link"].startswith("http://testserver/r/") and kit["code"] in kit["link"]
    channels = by_channel(kit)
    whatsapp = channels["whatsapp"]
    assert whatsapp["link"] == kit["link"] + "?ch=whatsapp"
    assert whatsapp["message"] == CHAT[locale].format(link=whatsapp["link"])
    assert channels["email"]["subject"] == EMAIL_SUBJECT[locale]
    assert channels["email"]["link"] in channels["email"]["message"]
    assert channels["email"]["message"].rstrip().endswith("Ann Lee")
    assert channels["x"]["message"] == POST[locale]
    for c in kit["channels"]:
        assert "{" not in c["message"] and "}" not in c["message"], c
    assert kit["link"] + "?ch=signature" in kit["signature"]["text"]
    # Channels a speaker of the language uses most come first.
    first = kit["channels"][0]["channel"]
    assert (
        first
        == {
            "en": "copy_link",
            "ko": "kakaotalk",
            "es": "whatsapp",
            "id": "whatsapp",
            "zh_Hans": "wechat",
        }[locale]
    )


def test_member_locale_is_the_default(client, program) -> None:
    add_member("minji", name="김민지", locale="ko")
    kit = client.get(KIT.format("minji")).json()
    assert kit["locale"] == "ko"
    assert by_channel(kit)["email"]["subject"] == "김민지님이 Acme에 초대했어요"


def test_unnamed_member_is_your_friend(client, program) -> None:
    add_member("anon1", locale="es")
    kit = client.get(KIT.format("anon1")).json()
    assert by_channel(kit)["email"]["subject"] == "Tu amigo te invita a Acme"


def test_errors_name_the_field(client, ann) -> None:
    r = client.get(KIT.format("nobody"))
    assert r.status_code == 404 and r.json()["error"]["fields"] == {"external_id": "unknown member"}
    r = client.get(KIT.format("ann"), params={"locale": "fr"})
    assert r.status_code == 422 and "locale" in r.json()["error"]["fields"]


# --- share URLs -------------------------------------------------------------------------

TRICKY_NAME = 'Zoë & "Bob" <b>#1</b> 100% ?x=1'
TRICKY_PROGRAM = "Tea & Co. #1 ?/%"


@pytest.fixture
def tricky(client, program) -> dict[str, dict[str, Any]]:
    with unit_of_work() as s:
        p = get_program(s, "acme")
        p.name = TRICKY_PROGRAM
    add_member("zoe", name=TRICKY_NAME, locale="en")
    kit = client.get(KIT.format("zoe")).json()
    return by_channel(kit)


def _query(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    # Strict: every value percent-encoded; no raw space, quote, angle bracket or newline.
    assert not any(c in url for c in ' "<>\n\r#'), url
    parsed = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    return {k: v[0] for k, v in parsed.items()}


EXPECTED = {
    "whatsapp": ("https", "wa.me", "/", {"text": "message"}),
    "line": ("https", "line.me", "/R/share", {"text": "message"}),
    "telegram": ("https", "t.me", "/share/url", {"url": "link", "text": "message"}),
    "x": ("https", "x.com", "/intent/tweet", {"text": "message", "url": "link"}),
    "facebook": ("https", "www.facebook.com", "/sharer/sharer.php", {"u": "link"}),
    "linkedin": ("https", "www.linkedin.com", "/sharing/share-offsite/", {"url": "link"}),
    "weibo": (
        "https",
        "service.weibo.com",
        "/share/share.php",
        {"url": "link", "title": "message"},
    ),
    "qq": (
        "https",
        "connect.qq.com",
        "/widget/shareqq/index.html",
        {"url": "link", "title": "subject", "summary": "message"},
    ),
}


@pytest.mark.parametrize("channel", sorted(EXPECTED))
def test_share_urls_are_well_formed_and_escaped(tricky, channel) -> None:
    c = tricky[channel]
    scheme, host, path, params = EXPECTED[channel]
    parts = urlsplit(c["share_url"])
    assert (parts.scheme, parts.netloc, parts.path) == (scheme, host, path)
    query = _query(c["share_url"])
    assert set(query) == set(params)
    for name, source in params.items():
        assert query[name] == c[source], (name, query[name], c[source])
    assert c["link"].endswith(f"?ch={channel}")
    if c["method"] == "url" and ch.BY_KEY[channel].link_in_message:
        assert c["link"] in c["message"]
    # The tricky names arrive intact.
    assert TRICKY_PROGRAM in c["message"] or TRICKY_PROGRAM in (c["subject"] or "")


def test_mailto_follows_rfc_6068(tricky) -> None:
    c = tricky["email"]
    url = c["share_url"]
    assert url.startswith("mailto:?subject=")
    assert "+" not in url and " " not in url and "\n" not in url
    subject = unquote(url.split("subject=", 1)[1].split("&", 1)[0])
    body = unquote(url.split("&body=", 1)[1])
    assert subject == c["subject"] and TRICKY_NAME in subject
    assert body == c["message"].replace("\n", "\r\n")
    assert c["link"] in body


def test_channels_without_a_web_share_url(tricky, client) -> None:
    assert tricky["copy_link"]["share_url"] == tricky["copy_link"]["link"]
    assert tricky["copy_link"]["method"] == "copy"
    wechat = tricky["wechat"]
    assert wechat["method"] == "qr"
    assert urlsplit(wechat["share_url"]).path.endswith(".png")
    assert "ch=wechat" in wechat["share_url"]
    assert tricky["kakaotalk"]["method"] == "native" and tricky["kakaotalk"]["share_url"] is None
    assert tricky["tell_a_friend"]["method"] == "send"
    for c in tricky.values():
        assert c["needs"], c["channel"]


def test_kakao_sdk_mode_when_configured(client, ann) -> None:
    r = client.patch(
        "/api/v1/sharing/settings",
        json={"kakao_js_key": "abc123", "kakao_sdk_url": "https://t1.kakaocdn.net/kakao.min.js"},
    )
    assert r.status_code == 200, r.text
    kit = client.get(KIT.format("ann"), params={"locale": "ko"}).json()
    kakao = by_channel(kit)["kakaotalk"]
    assert kakao["method"] == "sdk" and kakao["steps"] == ch.BY_KEY["kakaotalk"].steps - 1
    assert kit["kakao"]["app_key"] == "abc123"
    assert kit["kakao"]["template"]["objectType"] == "text"
    assert kit["kakao"]["template"]["text"] == kakao["message"]
    assert kit["kakao"]["template"]["link"]["webUrl"] == kakao["link"]
    r = client.patch("/api/v1/sharing/settings", json={"kakao_sdk_url": "http://insecure"})
    assert r.status_code == 422 and "kakao_sdk_url" in r.json()["error"]["fields"]


def test_settings_choose_channels(client, ann) -> None:
    r = client.patch("/api/v1/sharing/settings", json={"channels": ["line", "copy_link"]})
    assert r.status_code == 200
    kit = client.get(KIT.format("ann"), params={"locale": "en"}).json()
    assert [c["channel"] for c in kit["channels"]] == ["copy_link", "line"]
    r = client.patch("/api/v1/sharing/settings", json={"channels": ["myspace"]})
    assert r.status_code == 422
    assert "myspace" in r.json()["error"]["message"]


# --- QR codes ----------------------------------------------------------------------------


def modules_of_png(png: bytes, version_size: int, scale: int, border: int) -> list[list[bool]]:
    """Read the module grid back from a PNG by sampling each module's centre."""
    img = Image.open(io.BytesIO(png)).convert("L")
    assert img.size == ((version_size + 2 * border) * scale,) * 2
    return [
        [
            img.getpixel(((border + x) * scale + scale // 2, (border + y) * scale + scale // 2))
            < 128
            for x in range(version_size)
        ]
        for y in range(version_size)
    ]


def assert_png_encodes(png: bytes, link: str, scale: int = 8) -> None:
    expected = segno.make(link, error=qr.ERROR, micro=False, boost_error=False)
    size = expected.symbol_size(border=0)[0]
    grid = modules_of_png(png, size, scale, qr.BORDER)
    want = [[bool(v) for v in row] for row in expected.matrix]
    assert grid == want
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp (a QR decoder) is not installed")
    decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]
    assert decoded == [link]


def test_qr_png_and_svg_carry_the_link(client, anon_client, ann) -> None:
    kit = client.get(KIT.format("ann")).json()
    link = kit["link"] + "?ch=qr"
    png = anon_client.get(kit["qr"]["png"].replace("http://testserver", ""))
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert_png_encodes(png.content, link)

    svg = anon_client.get(kit["qr"]["svg"].replace("http://testserver", ""))
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}title").text == link
    assert svg.content == qr.svg(link, 8, title=link)  # the same symbol as segno makes for the link

    api_png = client.get(KIT.format("ann") + "/qr.png", params={"scale": 4})
    assert api_png.status_code == 200
    assert_png_encodes(api_png.content, link, scale=4)
    api_svg = client.get(KIT.format("ann") + "/qr.svg")
    assert api_svg.status_code == 200 and link.encode() in api_svg.content


def test_wechat_qr_is_the_wechat_link(client, anon_client, ann) -> None:
    kit = client.get(KIT.format("ann")).json()
    wechat = by_channel(kit)["wechat"]
    png = anon_client.get(wechat["share_url"].replace("http://testserver", ""))
    assert_png_encodes(png.content, wechat["link"])


def test_public_qr_refuses_anything_but_a_code(anon_client, program) -> None:
    assert anon_client.get("/share/acme/qr/ABCDEFGH.gif").status_code == 404
    assert anon_client.get("/share/acme/qr/not-a-code!.png").status_code == 404
    assert anon_client.get("/share/acme/qr/ABCDEFGH.png?ch=evil%20x").status_code == 422
    assert anon_client.get("/share/nope/qr/ABCDEFGH.png").status_code == 404
    r = anon_client.get("/share/acme/qr/ABCDEFGH.png?download=1")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]


# --- templates and the signature ---------------------------------------------------------


def test_admin_templates_override_the_defaults(client, ann) -> None:
    r = client.put(
        "/api/v1/share-templates/chat/ko",
        json={"body": "{name}님의 {program} 초대: {link} (코드 {code})"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["overridden"] is True
    kit = client.get(KIT.format("ann"), params={"locale": "ko"}).json()
    line = by_channel(kit)["line"]
    assert line["message"] == f"Ann Lee님의 Acme 초대: {line['link']} (코드 {kit['code']})"
    # Only Korean changed.
    en = by_channel(client.get(KIT.format("ann"), params={"locale": "en"}).json())["line"]
    assert en["message"].startswith("Join me on Acme!")
    # A channel's own template beats its kind's.
    r = client.put("/api/v1/share-templates/line/ko", json={"body": "라인 전용 {link}"})
    assert r.status_code == 200
    kit = client.get(KIT.format("ann"), params={"locale": "ko"}).json()
    assert by_channel(kit)["line"]["message"].startswith("라인 전용 ")
    assert by_channel(kit)["whatsapp"]["message"].startswith("Ann Lee님의")
    # Back to the default.
    r = client.delete("/api/v1/share-templates/chat/ko")
    assert r.status_code == 200 and r.json()["overridden"] is False
    assert r.json()["body"] == "{program} 같이 해요! 제 초대 링크로 가입하세요: {link}"
    listed = client.get("/api/v1/share-templates").json()
    assert {(t["key"], t["locale"]) for t in listed} >= {("chat", "zh_Hans"), ("line", "ko")}


@pytest.mark.parametrize(
    ("key", "body", "field", "reason"),
    [
        ("chat", "Join {program}", "body", "must contain {link}"),
        ("chat", "Hi {friend} {link}", "body", "unknown placeholder {friend}"),
        ("post", "Come {link}", "body", "must not contain {link}"),
        ("post", "x" * 300, "body", "at most 256"),
        ("email", "{link}", "subject", "must not be empty"),
    ],
)
def test_bad_templates_are_refused_naming_the_field(
    client, program, key, body, field, reason
) -> None:
    r = client.put(f"/api/v1/share-templates/{key}/en", json={"subject": "", "body": body})
    assert r.status_code == 422, r.text
    assert reason in r.json()["error"]["fields"][field]
    assert client.get(f"/api/v1/share-templates/{key}/en").json()["overridden"] is False


def test_unknown_template_key_or_locale(client, program) -> None:
    assert client.put("/api/v1/share-templates/fax/en", json={"body": "{link}"}).status_code == 404
    assert client.put("/api/v1/share-templates/chat/fr", json={"body": "{link}"}).status_code == 422


def test_signature_escapes_html(client, program) -> None:
    add_member("zoe", name="Zoë <script>", locale="en")
    client.put(
        "/api/v1/share-templates/signature/en",
        json={"body": "— {name} · <b>{program}</b>: {link}"},
    )
    kit = client.get(KIT.format("zoe")).json()
    link = kit["link"] + "?ch=signature"
    assert kit["signature"]["text"] == f"— Zoë <script> · <b>Acme</b>: {link}"
    html = kit["signature"]["html"]
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;Acme" in html
    assert f'<a href="{link}">{link}</a>' in html


def test_read_only_keys_cannot_edit(program, ann, app) -> None:
    from fastapi.testclient import TestClient

    from tests.factories import make_api_key

    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {make_api_key(program.id, role='analyst')}"
        assert c.get(KIT.format("ann")).status_code == 200
        r = c.put("/api/v1/share-templates/chat/en", json={"body": "{link}"})
        assert r.status_code == 403


# --- the widget ------------------------------------------------------------------------


def test_widget_token_shows_the_members_kit(client, anon_client, ann) -> None:
    r = client.post(
        KIT.format("ann").replace("share-kit", "widget-token"), json={"ttl_seconds": 600}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["iframe_url"].startswith("http://testserver/w/acme?token=")
    assert 'src="http://testserver/w/widget.js"' in body["script_tag"]
    assert 'data-program="acme"' in body["script_tag"]
    # The copy button and Web Share need the iframe's permission (as widget.js sets it).
    assert 'allow="clipboard-write; web-share"' in body["iframe_tag"]
    assert 'referrerpolicy="no-referrer"' in body["iframe_tag"]
    page = anon_client.get(body["iframe_url"].replace("http://testserver", ""))
    assert page.status_code == 200
    kit = client.get(KIT.format("ann")).json()
    assert kit["link"] in page.text
    assert page.headers["content-security-policy"] == "frame-ancestors *"
    assert page.headers["referrer-policy"] == "no-referrer"
    script = anon_client.get("/w/widget.js")
    assert script.status_code == 200 and "budding:height" in script.text
    assert 'setAttribute("allow", "clipboard-write; web-share")' in script.text


def test_widget_title_speaks_the_members_language(client, anon_client, ann) -> None:
    """The iframe's title (what a screen reader announces) is never hard-coded English."""
    token_url = KIT.format("ann").replace("share-kit", "widget-token")
    # The tags name the frame in the language asked for...
    body = client.post(token_url, json={"locale": "ko"}).json()
    assert 'title="친구 초대"' in body["iframe_tag"]
    assert 'data-title="친구 초대"' in body["script_tag"]
    # ... else in the member's own; with neither the iframe tag takes the program's
    # default, and the script tag leaves the title to widget.js (the visitor's language).
    assert client.post(token_url, json={}).json()["script_tag"].count("data-title") == 0
    assert 'title="Invite friends"' in client.post(token_url, json={}).json()["iframe_tag"]
    add_member("ann", name="Ann Lee", locale="es")
    body = client.post(token_url, json={}).json()
    assert 'title="Invitar amigos"' in body["iframe_tag"]
    assert 'data-title="Invitar amigos"' in body["script_tag"]

    # widget.js names the frame in the visitor's language until the frame says its own.
    script = anon_client.get("/w/widget.js", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert script.status_code == 200
    assert '"邀请好友"' in script.text and "Invite friends" not in script.text
    assert "Accept-Language" in script.headers["vary"]
    assert script.headers["access-control-allow-origin"] == "*"
    assert '"Invite friends"' in anon_client.get("/w/widget.js").text
    assert "budding:title" in script.text

    # The frame tells widget.js its title, in the language it shows.
    page = anon_client.get(body["iframe_url"].replace("http://testserver", ""))
    assert 'data-frame-title="Invitar amigos"' in page.text


def test_widget_refuses_bad_tokens(client, anon_client, ann, other_program) -> None:
    assert anon_client.get("/w/acme").status_code == 401
    assert anon_client.get("/w/acme?token=forged").status_code == 401
    with unit_of_work() as s:
        p = get_program(s, "acme")
        member = service.member_by_external_id(s, p, "ann")
        token, _ = service.issue_widget_token(p, member, 60)
    assert anon_client.get("/w/other", params={"token": token}).status_code == 401
    from budding.core.security import sign

    expired = sign({"p": p.id, "m": member.id, "x": int(time.time()) - 1}, service.WIDGET_SALT)
    r = anon_client.get(
        "/w/acme", params={"token": expired}, headers={"accept": "application/json"}
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_widget_token"
    bad = client.post(
        KIT.format("ann").replace("share-kit", "widget-token"), json={"ttl_seconds": 5}
    )
    assert bad.status_code == 422


def test_widget_origins_limit_framing(client, anon_client, ann) -> None:
    client.patch("/api/v1/sharing/settings", json={"widget_origins": ["https://shop.example.com"]})
    token = client.post(KIT.format("ann").replace("share-kit", "widget-token")).json()["token"]
    page = anon_client.get("/w/acme", params={"token": token})
    assert page.headers["content-security-policy"] == "frame-ancestors https://shop.example.com"
    r = client.patch("/api/v1/sharing/settings", json={"widget_origins": ["javascript:alert(1)"]})
    assert r.status_code == 422


def test_settings_are_kept_per_program(client, ann) -> None:
    with unit_of_work() as s:
        p = get_program(s, "acme")
        update_program_settings(s, p, "sharing", {"tell_a_friend_daily_limit": 9})
    assert client.get("/api/v1/sharing/settings").json()["tell_a_friend_daily_limit"] == 9


def test_cli_kit_and_widget_token(ann) -> None:
    from typer.testing import CliRunner

    from budding.core.cli import app

    result = CliRunner().invoke(
        app, ["sharing", "kit", "ann", "-p", "acme", "--locale", "id", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "Yuk gabung Acme bareng aku!" in result.output
    result = CliRunner().invoke(app, ["sharing", "kit", "nobody", "-p", "acme"])
    assert result.exit_code == 1 and "no member 'nobody'" in result.output
    result = CliRunner().invoke(
        app,
        ["sharing", "widget-token", "ann", "-p", "acme", "--ttl", "120"],
        env={"COLUMNS": "400"},
    )
    assert result.exit_code == 0, result.output
    assert (
        '<script src="http://testserver/w/widget.js" data-program="acme" data-token="'
        in result.output
    )
