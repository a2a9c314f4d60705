"""core.mail against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from budding.core.config import Settings
from budding.core.mail import Mail, MailError, mailbox, send_mail
from tests.mailsink import MailSink, free_port, password_checker, smtp_server


def _settings(sink_port: int, **kw: object) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=sink_port,
        smtp_sender="Budding <budding@example.com>",
        **kw,  # type: ignore[arg-type]
    )


def test_sends_text_with_html_alternative() -> None:
    with smtp_server(MailSink()) as sink:
        send_mail(
            Mail(
                to="Ann <ann@example.com>",
                subject="Hello\r\nBcc: evil@example.com",
                text="Plain words",
                html="<p>Rich words</p>",
                reply_to="team@example.com",
            ),
            settings=_settings(sink.port),
        )
        message = sink.wait_for("ann@example.com")
    assert message["Subject"] == "Hello Bcc: evil@example.com"  # no header injection
    assert message["Bcc"] is None
    assert message["From"] == "Budding <budding@example.com>"
    assert message["Reply-To"] == "team@example.com"
    assert message["Message-ID"].endswith("@example.com>")
    assert message.get_content_type() == "multipart/alternative"
    assert MailSink.text(message).strip() == "Plain words"
    assert MailSink.html(message).strip() == "<p>Rich words</p>"


def test_text_only_and_unicode() -> None:
    with smtp_server(MailSink()) as sink:
        send_mail(
            Mail(to="minji@example.com", subject="로그인 링크", text="안녕하세요 👋"),
            settings=_settings(sink.port),
        )
        message = sink.wait_for("minji@example.com")
    assert message["Subject"] == "로그인 링크"
    assert message.get_content_type() == "text/plain"
    assert MailSink.text(message).strip() == "안녕하세요 👋"


def test_logs_in_when_configured() -> None:
    options = {"authenticator": password_checker("mailer", "s3cret"), "auth_require_tls": False}
    with smtp_server(MailSink(), **options) as sink:
        send_mail(
            Mail(to="ann@example.com", subject="s", text="t"),
            settings=_settings(sink.port, smtp_user="mailer", smtp_password=SecretStr("s3cret")),
        )
        assert sink.wait_for("ann@example.com")
        with pytest.raises(MailError, match="refused the login of 'mailer'"):
            send_mail(
                Mail(to="ann@example.com", subject="s", text="t"),
                settings=_settings(sink.port, smtp_user="mailer", smtp_password=SecretStr("wrong")),
            )


def test_refused_recipient_is_a_clear_error() -> None:
    with (
        smtp_server(MailSink(refuse=("gone@example.com",))) as sink,
        pytest.raises(MailError) as caught,
    ):
        send_mail(Mail(to="gone@example.com", subject="s", text="t"), settings=_settings(sink.port))
    assert "refused the recipient" in caught.value.message
    assert "550" in caught.value.message
    assert caught.value.fields == {"to": "refused by the mail server"}
    assert caught.value.status == 502


def test_unreachable_server_is_a_clear_error() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(MailError, match=f"cannot reach the mail server at 127.0.0.1:{port}"):
        send_mail(Mail(to="ann@example.com", subject="s", text="t"), settings=_settings(port))


def test_starttls_not_offered_is_a_clear_error() -> None:
    with smtp_server(MailSink()) as sink:
        with pytest.raises(MailError, match="does not support"):
            send_mail(
                Mail(to="ann@example.com", subject="s", text="t"),
                settings=_settings(sink.port, smtp_starttls=True),
            )
        assert sink.messages == []


def test_not_an_address() -> None:
    with pytest.raises(MailError, match="not an e-mail address"):
        send_mail(Mail(to="nobody", subject="s", text="t"), settings=_settings(free_port()))


def test_mailbox_quotes_display_names() -> None:
    assert mailbox("ann@example.com") == "ann@example.com"
    assert mailbox("ann@example.com", "Ann, Lee") == '"Ann, Lee" <ann@example.com>'
    assert mailbox("ann@example.com", "Ann\r\nBcc: x") == '"Ann Bcc: x" <ann@example.com>'
