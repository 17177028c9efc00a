"""Authenticated encryption whose every ciphertext names its scheme and key: `<scheme>:<key id>:<data>`.

Schemes:
- `fernet`: Fernet (AES-128-CBC with HMAC-SHA256) under the key as a Fernet key;
- `sm4gcm`: SM4-GCM under a 16-byte subkey (HKDF-SM3 of the key), a random 96-bit nonce, and the key
  id with the field's identity (`context`, e.g. `accounts.personaldetails.phone_number#42`) as
  associated data: a ciphertext copied to another row, field or key id does not open.

A ciphertext without a prefix was written before key ids (Fernet): the `legacy…` keys open it.
"""

from __future__ import annotations

import base64
import os
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.crypto import sm
from core.crypto.keyring import Key, Keyring, on_keys_changed

FERNET = "fernet"
SM4_GCM = "sm4gcm"
SCHEMES = (FERNET, SM4_GCM)


@cache
def _fernet(material: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(material))


@cache
def _sm4_key(material: bytes) -> bytes:
    return HKDF(algorithm=hashes.SM3(), length=16, salt=None, info=b"carbon-account sm4-gcm").derive(material)


on_keys_changed(_fernet.cache_clear)
on_keys_changed(_sm4_key.cache_clear)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _associated_data(key: Key, context: str) -> bytes:
    return f"{key.id}|{context}".encode()


def seal(keyring: Keyring, plaintext: bytes, *, scheme: str, context: str) -> str:
    """`plaintext` encrypted under the keyring's current key."""
    key = keyring.current
    if scheme == FERNET:
        return f"{FERNET}:{key.id}:{_fernet(key.material).encrypt(plaintext).decode()}"
    if scheme == SM4_GCM:
        nonce = os.urandom(sm.SM4_GCM_NONCE_BYTES)
        sealed = sm.sm4_gcm_encrypt(_sm4_key(key.material), nonce, plaintext, _associated_data(key, context))
        return f"{SM4_GCM}:{key.id}:{_b64encode(nonce + sealed)}"
    raise ValueError(f"unknown scheme {scheme!r}")


def unseal(keyring: Keyring, ciphertext: str, *, context: str) -> bytes | None:
    """The plaintext, or None when no listed key opens it (its key was retired, or it was tampered with)."""
    scheme, key_id, data = _parts(ciphertext)
    if scheme is None:
        for key in keyring.legacy:
            try:
                return _fernet(key.material).decrypt(ciphertext.encode())
            except (InvalidToken, ValueError):
                continue
        return None
    key = keyring.get(key_id)
    if key is None:
        return None
    try:
        if scheme == FERNET:
            return _fernet(key.material).decrypt(data.encode())
        raw = _b64decode(data)
        nonce, sealed = raw[: sm.SM4_GCM_NONCE_BYTES], raw[sm.SM4_GCM_NONCE_BYTES :]
        return sm.sm4_gcm_decrypt(_sm4_key(key.material), nonce, sealed, _associated_data(key, context))
    except (InvalidToken, InvalidTag, ValueError):
        return None


def _parts(ciphertext: str) -> tuple[str | None, str, str]:
    scheme, separator, rest = ciphertext.partition(":")
    if not separator or scheme not in SCHEMES:
        return None, "", ciphertext
    key_id, _, data = rest.partition(":")
    return scheme, key_id, data


def current_prefix(keyring: Keyring, scheme: str) -> str:
    """What every ciphertext written now begins with; anything else is for `rotate_keys` to rewrite."""
    return f"{scheme}:{keyring.current.id}:"


def key_id_of(ciphertext: str) -> str:
    """The id of the key that sealed it (`legacy` for a ciphertext from before key ids)."""
    scheme, key_id, _ = _parts(ciphertext)
    return key_id if scheme is not None else "legacy"
