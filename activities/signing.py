"""Partner signing secrets: generated, kept encrypted at rest, checked in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


@cache
def _fernet() -> Fernet:
    key = hashlib.sha256(f"activities.partner-secrets:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    return "pk_" + secrets.token_hex(16)


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def unseal(ciphertext: str) -> str | None:
    if not ciphertext:
        return None
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        return None


def signature_of(secret: str, timestamp: str, request_id: str, body: bytes) -> str:
    """Hex HMAC-SHA256 over `timestamp \\n request_id \\n body` — what a partner sends as X-Signature."""
    message = timestamp.encode() + b"\n" + request_id.encode() + b"\n" + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(secret: str, timestamp: str, request_id: str, body: bytes, signature: str) -> bool:
    expected = signature_of(secret, timestamp, request_id, body)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())
