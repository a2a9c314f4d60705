"""Webhook signatures, with nothing but the standard library (receivers may copy this file).

Every delivery carries ``Budding-Signature: t=<unix seconds>,v1=<hex>``, where
``<hex>`` is the HMAC-SHA256, keyed with the endpoint's secret, of
``"<t>.<raw request body>"``. While a replaced secret still signs (a rotation with
an overlap), there is one ``v1=`` per secret; a receiver accepts any that matches.
Check it on the raw body, before parsing the JSON::

    from budding.webhooks.signing import InvalidSignature, verify_signature

    try:
        verify_signature(SECRET, request.headers["Budding-Signature"], raw_body)
    except InvalidSignature as exc:
        return 400, str(exc)
    # then deduplicate on the Budding-Delivery header: retries repeat it
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

__all__ = ["DEFAULT_TOLERANCE", "InvalidSignature", "sign", "signature_header", "verify_signature"]

DEFAULT_TOLERANCE = 300  # seconds


class InvalidSignature(ValueError):
    """The signature header is missing, malformed, too old, or does not match."""


def sign(secret: str, timestamp: int, body: bytes | str) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` with ``secret``."""
    raw = body.encode() if isinstance(body, str) else body
    message = str(int(timestamp)).encode() + b"." + raw
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str | Sequence[str], timestamp: int, body: bytes | str) -> str:
    """The ``Budding-Signature`` header value: ``t=<timestamp>,v1=<hex>``, with one
    ``v1=`` for each of several secrets (in the order given)."""
    keys = [secret] if isinstance(secret, str) else list(secret)
    signatures = ",".join(f"v1={sign(key, timestamp, body)}" for key in keys)
    return f"t={int(timestamp)},{signatures}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes | str,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a ``Budding-Signature`` header against the raw body; return its timestamp.

    Raises ``InvalidSignature`` when the header is missing or malformed, when its
    timestamp is more than ``tolerance`` seconds from now (a replay), or when no
    ``v1`` signature matches (several are accepted, for secret rotation). The
    comparison takes constant time. ``tolerance=0`` switches the replay check off (it
    does not mean "strict"): pass a number of seconds to keep it.
    """
    if not header:
        raise InvalidSignature("no Budding-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise InvalidSignature("malformed Budding-Signature header")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise InvalidSignature("malformed timestamp in Budding-Signature") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature("Budding-Signature needs t= and v1=")
    current = time.time() if now is None else now
    if tolerance and abs(current - timestamp) > tolerance:
        raise InvalidSignature("timestamp outside the tolerance (a replayed request?)")
    expected = sign(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise InvalidSignature("no signature matches")
    return timestamp
