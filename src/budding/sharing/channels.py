"""Share channels: how each one is reached from a phone or a browser, and what it costs.

Every channel knows how to build its share target from a link and a prefilled message,
which message template it uses, and its *designed* launch cost in steps: the member's
actions from opening the share kit to a message that has left (taps in Budding plus taps in
the other app). The measured cost (observed steps and seconds) comes from the funnel events.

Share URLs are built only from public, documented web share schemes; nothing here needs an
account with the network except KakaoTalk's SDK mode (see ``docs/sharing.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from budding.core.i18n import N_

# Message kinds: the default template a channel uses (admins may override per kind or per channel).
CHAT, POST, EMAIL, TELL, SIGNATURE = "chat", "post", "email", "tell_a_friend", "signature"
MESSAGE_KINDS: tuple[str, ...] = (CHAT, POST, EMAIL, TELL, SIGNATURE)

# How a channel hands the message over.
URL, COPY, QR, SDK, NATIVE, SEND = "url", "copy", "qr", "sdk", "native", "send"


def q(value: str) -> str:
    """Percent-encode a query value (UTF-8, spaces as %20, every reserved character encoded)."""
    return quote(value, safe="")


@dataclass(frozen=True)
class ShareTarget:
    """What the member's button does: open ``url`` (when set) with the prefilled message."""

    url: str | None
    method: str


@dataclass(frozen=True)
class Channel:
    key: str
    label: str  # msgid (English); translate with gettext at display time
    method: str
    message_kind: str
    steps: int  # designed launch cost: actions from opening the kit to a message sent
    link_in_message: bool  # False where the network takes the link as its own parameter
    needs: str  # what the channel needs to work (documentation, shown in the API)
    build: Callable[[str, str, str], str | None]  # (link, message, subject) -> share URL

    def target(self, link: str, message: str, subject: str = "") -> ShareTarget:
        return ShareTarget(url=self.build(link, message, subject), method=self.method)


def _none(_link: str, _message: str, _subject: str) -> str | None:
    return None


def _mailto(_link: str, message: str, subject: str) -> str:
    # RFC 6068: hfields percent-encoded; a space is %20 (never "+"), line breaks %0D%0A.
    body = message.replace("\r\n", "\n").replace("\n", "\r\n")
    return f"mailto:?subject={q(subject)}&body={q(body)}"


CHANNELS: tuple[Channel, ...] = (
    Channel(
        "copy_link",
        N_("Copy link"),
        COPY,
        CHAT,
        4,
        True,
        "Nothing: the link goes to the clipboard (open kit, copy, paste in any app, send).",
        lambda link, _m, _s: link,
    ),
    Channel(
        "whatsapp",
        N_("WhatsApp"),
        URL,
        CHAT,
        4,
        True,
        "Nothing: https://wa.me/?text= opens WhatsApp (app or web) with the text prefilled.",
        lambda _l, m, _s: f"https://wa.me/?text={q(m)}",
    ),
    Channel(
        "kakaotalk",
        N_("KakaoTalk"),
        NATIVE,
        CHAT,
        5,
        True,
        "KakaoTalk has no plain web share URL. Without settings the button opens the "
        "phone's share sheet (Web Share API), where KakaoTalk is listed. With a Kakao "
        "JavaScript key (settings sharing.kakao_js_key and sharing.kakao_sdk_url, the site's "
        "domain registered in Kakao Developers) it calls Kakao.Share.sendDefault with a text "
        "template: one step less.",
        _none,
    ),
    Channel(
        "line",
        N_("LINE"),
        URL,
        CHAT,
        4,
        True,
        "Nothing: https://line.me/R/share?text= opens LINE on iOS and Android with the text "
        "prefilled (LINE for PC does not support it; a browser is asked to install LINE).",
        lambda _l, m, _s: f"https://line.me/R/share?text={q(m)}",
    ),
    Channel(
        "wechat",
        N_("WeChat"),
        QR,
        CHAT,
        3,
        True,
        "Nothing: WeChat shares web links by scanning, so the kit shows a QR code of the "
        "link (share_url is the PNG); a friend scans it with WeChat, or the member copies the "
        "message into a chat.",
        _none,  # replaced by the QR PNG URL when the kit is built
    ),
    Channel(
        "telegram",
        N_("Telegram"),
        URL,
        POST,
        4,
        False,
        "Nothing: https://t.me/share/url?url=&text= opens Telegram with link and text.",
        lambda link, m, _s: f"https://t.me/share/url?url={q(link)}&text={q(m)}",
    ),
    Channel(
        "x",
        N_("X"),
        URL,
        POST,
        3,
        False,
        "Nothing: the Post web intent https://x.com/intent/tweet?text=&url= (text and link "
        "together must stay under 280 characters; X shortens the link to 23).",
        lambda link, m, _s: f"https://x.com/intent/tweet?text={q(m)}&url={q(link)}",
    ),
    Channel(
        "facebook",
        N_("Facebook"),
        URL,
        POST,
        3,
        False,
        "Nothing: https://www.facebook.com/sharer/sharer.php?u= shares the link; Facebook "
        "does not accept prefilled text, so the kit shows the message for copying.",
        lambda link, _m, _s: f"https://www.facebook.com/sharer/sharer.php?u={q(link)}",
    ),
    Channel(
        "linkedin",
        N_("LinkedIn"),
        URL,
        POST,
        3,
        False,
        "Nothing: https://www.linkedin.com/sharing/share-offsite/?url= shares the link; "
        "text comes from the landing page's Open Graph tags.",
        lambda link, _m, _s: f"https://www.linkedin.com/sharing/share-offsite/?url={q(link)}",
    ),
    Channel(
        "weibo",
        N_("Weibo"),
        URL,
        POST,
        3,
        False,
        "Nothing: https://service.weibo.com/share/share.php?url=&title= (a Weibo login).",
        lambda link, m, _s: f"https://service.weibo.com/share/share.php?url={q(link)}&title={q(m)}",
    ),
    Channel(
        "qq",
        N_("QQ"),
        URL,
        POST,
        4,
        False,
        "Nothing: https://connect.qq.com/widget/shareqq/index.html?url=&title=&summary= "
        "(a QQ login; on phones QQ opens through the page).",
        lambda link, m, s: (
            "https://connect.qq.com/widget/shareqq/index.html"
            f"?url={q(link)}&title={q(s)}&summary={q(m)}"
        ),
    ),
    Channel(
        "email",
        N_("E-mail"),
        URL,
        EMAIL,
        4,
        True,
        "A mail app on the device: a mailto: URL with subject and body (RFC 6068).",
        _mailto,
    ),
    Channel(
        "tell_a_friend",
        N_("Tell a friend"),
        SEND,
        TELL,
        4,
        True,
        "SMTP settings (BUDDING_SMTP_*): Budding sends the e-mail itself, at most "
        "sharing.tell_a_friend_daily_limit per member per UTC day (default 5).",
        _none,
    ),
    Channel(
        "native",
        N_("More apps"),
        NATIVE,
        CHAT,
        5,
        True,
        "A browser with the Web Share API (phones): the system share sheet lists every app.",
        _none,
    ),
)

BY_KEY: dict[str, Channel] = {c.key: c for c in CHANNELS}
CHANNEL_KEYS: tuple[str, ...] = tuple(BY_KEY)
# Channels that carry a referral link without being a share button (the link's ?ch= value).
EXTRA_LINK_CHANNELS: tuple[str, ...] = ("qr", "signature", "widget", "api")

# Which channels come first for speakers of each language (the rest follow in registry order).
PREFERRED: dict[str, tuple[str, ...]] = {
    "en": ("copy_link", "whatsapp", "email", "x", "facebook", "linkedin", "telegram"),
    "ko": ("kakaotalk", "copy_link", "line", "x", "facebook"),
    "es": ("whatsapp", "copy_link", "facebook", "telegram", "x"),
    "id": ("whatsapp", "copy_link", "line", "telegram", "facebook", "x"),
    "zh_Hans": ("wechat", "qq", "weibo", "copy_link"),
}


def get(key: str) -> Channel:
    return BY_KEY[key]


def ordered(locale: str, enabled: tuple[str, ...] | list[str] | None = None) -> list[Channel]:
    """Channels in the order a member of ``locale`` is most likely to use them."""
    keys = [k for k in (enabled or CHANNEL_KEYS) if k in BY_KEY]
    first = [k for k in PREFERRED.get(locale, ()) if k in keys]
    return [BY_KEY[k] for k in first + [k for k in keys if k not in first]]
