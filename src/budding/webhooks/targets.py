"""Where a webhook may be sent: no server-side request forgery.

An endpoint URL must be ``http``/``https`` and its host must not be (or resolve to) a
loopback, private, link-local, multicast, reserved, unspecified or otherwise
non-global address, IPv4 or IPv6 (IPv4-mapped IPv6 addresses are judged as the IPv4
address they carry). The check runs when an endpoint is created and again before every
delivery attempt, because DNS can change in between; the attempt then connects to the
address that was checked (not to a second lookup's answer), so a name cannot be
switched to an internal address between the check and the connection.

``BUDDING_WEBHOOKS_ALLOW_PRIVATE=true`` lifts the address rule for an installation
whose receivers are internal services (and for tests, whose receiver is on loopback).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from budding.core.config import get_settings
from budding.core.errors import Reason
from budding.core.i18n import N_

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(ValueError):
    """The URL's host is (or resolves to) an address webhooks must not reach; ``reason``
    says so in words a page can translate."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(str(reason))
        self.reason = reason


class UnresolvedHost(ValueError):
    """The URL's host name does not resolve (now)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to ``address`` (None: connect by name, private targets
    allowed) and send ``host`` as the Host header and TLS server name."""

    url: str
    host: str
    address: str | None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why webhooks must not reach ``address``, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d
            address = address.ipv4_mapped
        elif address.sixtofour is not None:  # 2002:AABB:CCDD:: reaches a.b.c.d
            embedded = forbidden_reason(address.sixtofour)
            if embedded is not None:
                return embedded
    for reason, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flag:
            return reason
    if not address.is_global:  # shared (100.64/10), documentation, 6to4 of private, …
        return "not public"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (one, for an IP literal)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvedHost(f"the host {host!r} does not resolve") from exc
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise UnresolvedHost(f"the host {host!r} does not resolve")
    return found


def private_targets_allowed() -> bool:
    return get_settings().webhooks_allow_private


def check_target(url: str, *, allow_private: bool | None = None) -> Target:
    """Check ``url`` for sending now; raises ``UnsafeTarget`` or ``UnresolvedHost``.

    Every address the host resolves to must be public: a name with one public and one
    private address is refused (the client could pick either)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise UnsafeTarget(Reason(N_("must be an http:// or https:// URL with a host")))
    if allow_private is None:
        allow_private = private_targets_allowed()
    if allow_private:
        return Target(url=url, host=host, address=None)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(host, port)
    for address in addresses:
        reason = forbidden_reason(address)
        if reason is not None:
            shown = host if _literal(host) is not None else f"{host} ({address})"
            raise UnsafeTarget(
                Reason(
                    N_(
                        "must not point to a %(kind)s address: %(host)s; set "
                        "BUDDING_WEBHOOKS_ALLOW_PRIVATE=true to allow internal receivers"
                    ),
                    kind=reason,
                    host=shown,
                )
            )
    return Target(url=url, host=host, address=str(addresses[0]))
