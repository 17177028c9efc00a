"""Key settings: one per purpose, each a list of `<key id>:<key>`, newest first.

The first key encrypts or signs; every listed key still decrypts or verifies, so a key rotates by
putting the new one first, running `manage.py rotate_keys`, then removing the old one. Each
ciphertext, digest and signature names the id of its key. No key is derived from SECRET_KEY:
local and test settings carry development keys of their own, production refuses to start without.

Key ids `legacy`, `legacy-2`, … are reserved for the keys of data written before key ids existed (ciphertexts
and digests without a prefix); `manage.py keys legacy` prints them (the README says how, under production).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
LEGACY_KEY_ID = "legacy"

# Each setting and how its keys are written: urlsafe base64 of 32 bytes, or hex (SM2 private keys).
KEY_SETTINGS: dict[str, str] = {
    "PARTNER_SECRET_KEYS": "base64",
    "PERSONAL_DATA_KEYS": "base64",
    "BLIND_INDEX_KEYS": "base64",
    "PLATFORM_SM2_SIGNING_KEYS": "hex",
    "PLATFORM_ED25519_SIGNING_KEYS": "base64",
    "STATEMENT_SUBJECT_KEYS": "base64",
    "COUPON_TOKEN_KEYS": "base64",
}


def is_legacy(key_id: str) -> bool:
    """`legacy`, `legacy-2`, …: keys of data written before key ids (any length, tried in order)."""
    return key_id == LEGACY_KEY_ID or key_id.startswith(LEGACY_KEY_ID + "-")


@dataclass(frozen=True)
class Key:
    id: str
    material: bytes = b""

    def __repr__(self) -> str:  # never print key material
        return f"Key({self.id!r})"


@dataclass(frozen=True)
class Keyring:
    setting: str
    keys: tuple[Key, ...]

    @property
    def current(self) -> Key:
        if not self.keys:
            raise ImproperlyConfigured(f"{self.setting} is empty: no key to encrypt or sign with.")
        return self.keys[0]

    def get(self, key_id: str) -> Key | None:
        return next((key for key in self.keys if key.id == key_id), None)

    @property
    def legacy(self) -> tuple[Key, ...]:
        return tuple(key for key in self.keys if is_legacy(key.id))


def decode_material(text: str, encoding: str) -> bytes:
    """Key material as written in a setting: urlsafe base64 (padding optional) or hex."""
    text = text.strip()
    if encoding == "hex":
        return bytes.fromhex(text)
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_keyring(setting: str, entries: list[str] | tuple[str, ...], encoding: str) -> Keyring:
    keys: list[Key] = []
    for entry in entries:
        key_id, separator, text = str(entry).partition(":")
        if not separator or not KEY_ID.fullmatch(key_id):
            raise ImproperlyConfigured(f"{setting}: each key is `<key id>:<key>` (id: A-Z a-z 0-9 _ -).")
        if any(key.id == key_id for key in keys):
            raise ImproperlyConfigured(f"{setting}: the key id {key_id!r} is listed twice.")
        try:
            material = decode_material(text, encoding)
        except (ValueError, binascii.Error) as error:
            raise ImproperlyConfigured(f"{setting}: the key {key_id!r} is not valid {encoding}.") from error
        if len(material) != 32 and not is_legacy(key_id):
            raise ImproperlyConfigured(f"{setting}: the key {key_id!r} is {len(material)} bytes, not 32.")
        keys.append(Key(key_id, material))
    return Keyring(setting, tuple(keys))


@cache
def keyring(setting: str) -> Keyring:
    """The keys of one setting (cached; a change of the setting in tests clears the cache)."""
    return parse_keyring(setting, getattr(settings, setting, None) or [], KEY_SETTINGS[setting])


def _settings_changed(*, setting: str, **kwargs) -> None:
    if setting in KEY_SETTINGS or setting == "CRYPTO_SUITE":
        keyring.cache_clear()
        for reset in _RESETS:
            reset()


# Caches built on top of keyrings (cipher objects, derived subkeys) register here to be cleared too.
_RESETS: list = []


def on_keys_changed(reset) -> None:
    _RESETS.append(reset)


setting_changed.connect(_settings_changed, dispatch_uid="core.crypto.keyring")


def crypto_suite() -> str:
    """`standard` (Fernet, HMAC-SHA256) or `sm` (SM4-GCM, HMAC-SM3): what new data is written with."""
    suite = getattr(settings, "CRYPTO_SUITE", "standard")
    if suite not in ("standard", "sm"):
        raise ImproperlyConfigured("CRYPTO_SUITE is `standard` or `sm`.")
    return suite
