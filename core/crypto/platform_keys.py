"""The platform's own signing keys: SM2 (signed answers to partners) and Ed25519 (signed statements).

PLATFORM_SM2_SIGNING_KEYS lists `<key id>:<private key, 64 hex digits>`; the first signs, and the
answer names it (`X-Platform-Key-Id`), so a bank keeps verifying with the public key of that id
while keys rotate. PLATFORM_ED25519_SIGNING_KEYS lists `<key id>:<32-byte seed, urlsafe base64>`:
the first signs statements, and every listed key is published at /.well-known/jwks.json so that
statements signed before a rotation still verify. `manage.py keys public` prints the public keys
to hand to partners. STATEMENT_SUBJECT_KEYS keys the pairwise subjects of statements.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.crypto import sm
from core.crypto.keyring import keyring, on_keys_changed


@dataclass(frozen=True)
class Sm2SigningKey:
    id: str
    private_key: bytes
    public_key: bytes

    def __repr__(self) -> str:
        return f"Sm2SigningKey({self.id!r})"


@cache
def sm2_signing_keys() -> tuple[Sm2SigningKey, ...]:
    return tuple(
        Sm2SigningKey(key.id, key.material, sm.sm2_public_key_of(key.material))
        for key in keyring("PLATFORM_SM2_SIGNING_KEYS").keys
    )


@cache
def ed25519_signing_keys() -> tuple[tuple[str, Ed25519PrivateKey], ...]:
    return tuple(
        (key.id, Ed25519PrivateKey.from_private_bytes(key.material))
        for key in keyring("PLATFORM_ED25519_SIGNING_KEYS").keys
    )


on_keys_changed(sm2_signing_keys.cache_clear)
on_keys_changed(ed25519_signing_keys.cache_clear)


def sm2_sign(message: bytes) -> tuple[str, bytes]:
    """(key id, DER signature) of `message` under the current SM2 key, with the default signer id."""
    keyring("PLATFORM_SM2_SIGNING_KEYS").current  # noqa: B018 - raises when none is configured
    key = sm2_signing_keys()[0]
    return key.id, sm.sm2_sign(key.private_key, key.public_key, message)


def sm2_public_keys() -> dict[str, str]:
    """Key id → public key (hex `04‖x‖y`, as most SM2 libraries take it)."""
    return {key.id: "04" + key.public_key.hex() for key in sm2_signing_keys()}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def ed25519_current() -> tuple[str, Ed25519PrivateKey]:
    """(key id, private key) of the key that signs statements now: the first listed."""
    keyring("PLATFORM_ED25519_SIGNING_KEYS").current  # noqa: B018 - raises when none is configured
    return ed25519_signing_keys()[0]


def ed25519_jwks() -> dict:
    """Every listed Ed25519 key's public half as a JWK Set (RFC 7517, OKP keys of RFC 8037)."""
    return {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": _b64url(private.public_key().public_bytes_raw()),
                "kid": key_id,
                "use": "sig",
                "alg": "Ed25519",
            }
            for key_id, private in ed25519_signing_keys()
        ]
    }


def statement_subject(*, person_id: str, audience: str) -> str:
    """The person's pairwise pseudonym at one receiving platform (HMAC-SHA256 under the subject key).

    Stable for a person and an audience, different for every audience, and without the key nobody
    can tell two platforms' subjects belong to the same person.
    """
    key = keyring("STATEMENT_SUBJECT_KEYS").current.material
    message = b"carbon-statement-subject\x00" + person_id.encode() + b"\x00" + audience.encode()
    return _b64url(hmac.new(key, message, hashlib.sha256).digest())
