"""Encryption at rest for personal fields, and keyed blind indexes for looking them up.

Keys come from settings: `ACCOUNTS_ENCRYPTION_KEYS` (Fernet keys, newest first; older ones still
decrypt, so keys can rotate) and `ACCOUNTS_BLIND_INDEX_KEY`. When they are not set (development,
tests) each is derived from SECRET_KEY with its own purpose label, so one never equals the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _derived(purpose: str, secret: str | None = None) -> bytes:
    return hashlib.sha256(f"{purpose}:{secret or settings.SECRET_KEY}".encode()).digest()


@cache
def _fernet() -> MultiFernet:
    keys = list(getattr(settings, "ACCOUNTS_ENCRYPTION_KEYS", None) or [])
    if not keys:
        # Derived keys follow SECRET_KEY; its fallbacks keep decrypting during a rotation.
        secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
        keys = [
            base64.urlsafe_b64encode(_derived("accounts.encryption", secret)).decode() for secret in secrets
        ]
    return MultiFernet([Fernet(key) for key in keys])


@cache
def _blind_index_key() -> bytes:
    configured = getattr(settings, "ACCOUNTS_BLIND_INDEX_KEY", "")
    return configured.encode() if configured else _derived("accounts.blind-index")


def encrypt(plaintext: str | bytes) -> str:
    data = plaintext.encode() if isinstance(plaintext, str) else plaintext
    return _fernet().encrypt(data).decode()


def decrypt(ciphertext: str) -> bytes | None:
    """The plaintext, or None when no configured key opens it (a key was retired too early)."""
    try:
        return _fernet().decrypt(ciphertext.encode())
    except InvalidToken:
        return None


def blind_index(value: str, *, purpose: str) -> str:
    """A keyed digest of a normalized value: equal inputs match, the digest reveals nothing."""
    message = f"{purpose}:{value}".encode()
    return hmac.new(_blind_index_key(), message, hashlib.sha256).hexdigest()


def reset_key_cache() -> None:
    """For tests that change the keys in settings."""
    _fernet.cache_clear()
    _blind_index_key.cache_clear()
