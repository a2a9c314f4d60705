"""Secrets: password hashing, random tokens, signed values."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from budding.core.config import get_settings

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy token: enough for random secrets, unlike passwords."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def keyed_hash(value: str, purpose: str) -> str:
    """A stable pseudonym (e.g. of an IP address) that cannot be reversed without the key."""
    key = (get_settings().resolved_secret_key() + ":" + purpose).encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().resolved_secret_key(), salt=salt)


def sign(value: Any, salt: str) -> str:
    return _serializer(salt).dumps(value)


def unsign(token: str, salt: str, max_age: int) -> Any | None:
    try:
        return _serializer(salt).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None


def safe_local_path(value: str | None, default: str) -> str:
    """``value`` when it is a path on this site (``/…``), else ``default``: a ``next=``
    parameter must never send anyone to another site (``//evil``, ``/\\evil``, ``https:``)."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value
