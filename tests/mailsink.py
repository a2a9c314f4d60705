"""A real SMTP server (aiosmtpd) on a free local port that keeps what it receives, with
Budding's SMTP settings pointed at it for as long as it runs.

    with mail_sink() as sink:
        ...  # Budding sends mail
        message = sink.wait_for("ann@example.com")
        url = sink.first_link(message)
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SMTP_ENV = ("BUDDING_SMTP_HOST", "BUDDING_SMTP_PORT", "BUDDING_SMTP_STARTTLS", "BUDDING_SMTP_USER")
_URL = re.compile(r"https?://[^\s<>\"']+")


class MailSink:
    """Messages received, parsed; ``refuse`` lists recipients answered with 550."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse = refuse
        self._changed = threading.Condition()
        self.host = "127.0.0.1"
        self.port = 0

    # aiosmtpd handler hooks
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._changed:
            self.messages.append(parsed)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self._changed.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, address: str, timeout: float = 10.0) -> EmailMessage:
        """The first message sent to ``address``, waiting for it up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for (_sender, rcpts), message in zip(self.envelopes, self.messages, strict=True):
                    if address in rcpts:
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no e-mail to {address} within {timeout}s")
                self._changed.wait(left)

    def to(self, address: str) -> list[EmailMessage]:
        with self._changed:
            return [
                m
                for (_s, rcpts), m in zip(self.envelopes, self.messages, strict=True)
                if address in rcpts
            ]

    @staticmethod
    def text(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("plain",))
        assert part is not None, "no text/plain part"
        return str(part.get_content())

    @staticmethod
    def html(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("html",))
        assert part is not None, "no text/html part"
        return str(part.get_content())

    @classmethod
    def first_link(cls, message: EmailMessage) -> str:
        found = _URL.search(cls.text(message))
        assert found, "no link in the e-mail"
        return found.group(0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def password_checker(user: str, password: str) -> Any:
    """An aiosmtpd authenticator accepting one user name and password."""

    def check(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False)

    return check


@contextmanager
def smtp_server(sink: MailSink, **controller_options: Any) -> Iterator[MailSink]:
    """Run ``sink`` as an SMTP server on a free port (no settings touched)."""
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, **controller_options)
    controller.start()
    sink.port = port
    try:
        yield sink
    finally:
        controller.stop()


@contextmanager
def mail_sink(refuse: tuple[str, ...] = ()) -> Iterator[MailSink]:
    """A running sink with ``BUDDING_SMTP_*`` pointed at it; settings restored afterwards."""
    from budding.core.config import get_settings

    with smtp_server(MailSink(refuse=refuse)) as sink:
        saved = {name: os.environ.get(name) for name in SMTP_ENV}
        os.environ.update(
            BUDDING_SMTP_HOST=sink.host,
            BUDDING_SMTP_PORT=str(sink.port),
            BUDDING_SMTP_STARTTLS="false",
            BUDDING_SMTP_USER="",
        )
        get_settings.cache_clear()
        try:
            yield sink
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            get_settings.cache_clear()
