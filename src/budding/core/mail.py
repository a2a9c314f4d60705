"""Outgoing e-mail over SMTP: plain text with an optional HTML alternative.

Configured by ``BUDDING_SMTP_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD``,
``_SENDER`` and ``_STARTTLS``. Port 465 speaks TLS from the first byte
(SMTPS); any other port starts in plain text and upgrades with STARTTLS when
``BUDDING_SMTP_STARTTLS`` is true. The login happens only when a user is
configured. Every refusal or connection failure becomes a ``MailError`` whose
message says what the server refused.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from budding.core.config import Settings, get_settings
from budding.core.errors import BuddingError

SMTP_TIMEOUT_SECONDS = 30
SMTPS_PORT = 465


class MailError(BuddingError):
    """The mail server could not be reached or refused the message."""

    status, code = 502, "mail_failed"

    def without_recipient(self, address: str) -> MailError:
        """The same error with ``address`` (any case) replaced by ``<recipient>``: a mail
        server's refusal quotes the recipient, whom a stored error or a log line of
        someone else's e-mail (a friend's) must not name. The SMTP code and reason stay."""
        message = self.message
        if address:
            message = re.sub(re.escape(address), "<recipient>", message, flags=re.IGNORECASE)
        return MailError(message, fields=self.fields, code=self.code, extra=self.extra)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None


def _one_line(value: str) -> str:
    """Header values must not carry line breaks (header injection)."""
    return " ".join(value.split())


def build_message(mail: Mail, sender: str) -> EmailMessage:
    """The MIME message: ``text/plain``, plus ``text/html`` as an alternative when given."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = _one_line(mail.to)
    msg["Subject"] = _one_line(mail.subject)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    msg["Message-ID"] = make_msgid(domain=domain)
    if mail.reply_to:
        msg["Reply-To"] = _one_line(mail.reply_to)
    msg.set_content(mail.text)
    if mail.html is not None:
        msg.add_alternative(mail.html, subtype="html")
    return msg


def _connect(settings: Settings) -> smtplib.SMTP:
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        if settings.smtp_port == SMTPS_PORT:
            return smtplib.SMTP_SSL(
                settings.smtp_host,
                settings.smtp_port,
                timeout=SMTP_TIMEOUT_SECONDS,
                context=ssl.create_default_context(),
            )
        return smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"cannot reach the mail server at {where}: {exc}") from exc


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    return f"{code} {text}".strip()


def send_mail(mail: Mail, *, settings: Settings | None = None) -> None:
    """Send one message, or raise ``MailError`` saying what went wrong.

    Blocks for up to ``SMTP_TIMEOUT_SECONDS`` per server reply: call it after
    the unit of work commits (a background task or a job), never while a
    transaction holds locks.
    """
    settings = settings or get_settings()
    sender = settings.smtp_sender
    if not parseaddr(mail.to)[1] or "@" not in mail.to:
        raise MailError(f"not an e-mail address: {mail.to!r}", fields={"to": "invalid address"})
    message = build_message(mail, sender)
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    smtp = _connect(settings)
    try:
        smtp.ehlo()
        if settings.smtp_starttls and settings.smtp_port != SMTPS_PORT:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        refused = smtp.send_message(message)
    except smtplib.SMTPNotSupportedError as exc:
        raise MailError(f"the mail server at {where} does not support this: {exc}") from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(
            f"the mail server at {where} refused the login of {settings.smtp_user!r}: "
            f"{_reply(exc.smtp_code, exc.smtp_error)}"
        ) from exc
    except smtplib.SMTPSenderRefused as exc:
        raise MailError(
            f"the mail server at {where} refused the sender {sender!r}: "
            f"{_reply(exc.smtp_code, exc.smtp_error)}"
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        reasons = "; ".join(f"{rcpt}: {_reply(*reply)}" for rcpt, reply in exc.recipients.items())
        raise MailError(
            f"the mail server at {where} refused the recipient ({reasons})",
            fields={"to": "refused by the mail server"},
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise MailError(
            f"the mail server at {where} refused the message: "
            f"{_reply(exc.smtp_code, exc.smtp_error)}"
        ) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"sending through the mail server at {where} failed: {exc}") from exc
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
    if refused:
        reasons = "; ".join(f"{rcpt}: {_reply(*reply)}" for rcpt, reply in refused.items())
        raise MailError(f"the mail server at {where} refused the recipient ({reasons})")


def mailbox(address: str, name: str = "") -> str:
    """``"Name <address>"`` with the display name quoted as RFC 5322 requires."""
    if not name:
        return address
    local, _, domain = address.rpartition("@")
    return str(Address(display_name=_one_line(name), username=local, domain=domain))
