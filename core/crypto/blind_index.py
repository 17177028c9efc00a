"""Keyed digests of values kept encrypted, so that equal values can be found: `<algorithm>:<key id>:<digest>`.

The digest is HMAC-SHA256 (`sha256`) or, under the SM suite, HMAC-SM3 (`sm3`) of `<purpose>:<value>`
under a key of BLIND_INDEX_KEYS.

Rotation: a look-up computes the digest under every listed key and both algorithms and asks for any
of them (`digest IN (…)`: one index probe each, a handful at most). New rows get the current key's
digest; `manage.py rotate_keys` recomputes the stored digests of what it can decrypt (phone and ID
numbers), after which the old key can go. Digests of values never stored in clear or encrypted (a
guest's device id) cannot be recomputed: they move to the current key when the device is next seen,
so an old blind index key stays listed until `rotate_keys` reports no device left on it.
A `legacy…` key also yields the digests written before key ids (hex HMAC-SHA256, no prefix).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from core.crypto import sm
from core.crypto.keyring import Key, Keyring, is_legacy

SHA256 = "sha256"
SM3 = "sm3"
ALGORITHMS = (SHA256, SM3)


def _mac(algorithm: str, key: Key, message: bytes) -> bytes:
    if algorithm == SM3:
        return sm.hmac_sm3(key.material, message)
    return hmac.new(key.material, message, hashlib.sha256).digest()


def _encode(algorithm: str, key: Key, message: bytes) -> str:
    digest = base64.urlsafe_b64encode(_mac(algorithm, key, message)).rstrip(b"=").decode()
    return f"{algorithm}:{key.id}:{digest}"


def digest(keyring: Keyring, value: str, *, purpose: str, algorithm: str) -> str:
    """The digest stored with a new value: the current key's."""
    return _encode(algorithm, keyring.current, f"{purpose}:{value}".encode())


def digests(keyring: Keyring, value: str, *, purpose: str) -> list[str]:
    """Every digest the value may be stored under while keys rotate: what a look-up asks for."""
    message = f"{purpose}:{value}".encode()
    found: list[str] = []
    for key in keyring.keys:
        if is_legacy(key.id):
            found.append(hmac.new(key.material, message, hashlib.sha256).hexdigest())
            continue
        found += [_encode(algorithm, key, message) for algorithm in ALGORITHMS]
    return found


def current_prefix(keyring: Keyring, algorithm: str) -> str:
    return f"{algorithm}:{keyring.current.id}:"
