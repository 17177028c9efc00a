"""`manage.py keys generate | public | legacy`: new keys, our public keys, and the keys of old data.

- `generate` prints a fresh key for each setting (put it first in the list to rotate to it);
- `public` prints the public keys of the configured signing keys, by key id, to hand to partners;
- `legacy` prints, once, the keys that data written before key ids was sealed with (derived from
  SECRET_KEY, or the former ACCOUNTS_ENCRYPTION_KEYS / ACCOUNTS_BLIND_INDEX_KEY): list them last
  under the id `legacy`, run `rotate_keys`, then remove them (the README says how, under production).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.management.base import BaseCommand

from core.crypto import platform_keys, sm


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _sm2_private_key() -> bytes:
    while True:
        candidate = secrets.token_bytes(32)
        try:
            sm.sm2_public_key_of(candidate)
        except ValueError:
            continue
        return candidate


class Command(BaseCommand):
    help = (
        "New keys (generate), our signing keys' public halves (public), the keys of data sealed before "
        "key ids (legacy)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["generate", "public", "legacy"])
        parser.add_argument("--key-id", default="k1", help="The id of the generated keys.")

    def handle(self, *args, action: str, key_id: str, **options) -> None:
        getattr(self, f"_{action}")(key_id)

    def _generate(self, key_id: str) -> None:
        for name in (
            "PARTNER_SECRET_KEYS",
            "PERSONAL_DATA_KEYS",
            "BLIND_INDEX_KEYS",
            "STATEMENT_SUBJECT_KEYS",
            "COUPON_TOKEN_KEYS",
        ):
            self.stdout.write(f"{name}={key_id}:{_b64(secrets.token_bytes(32))}")
        private = _sm2_private_key()
        self.stdout.write(f"PLATFORM_SM2_SIGNING_KEYS={key_id}:{private.hex()}")
        self.stdout.write(f"#   its public key: 04{sm.sm2_public_key_of(private).hex()}")
        seed = secrets.token_bytes(32)
        public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
        self.stdout.write(f"PLATFORM_ED25519_SIGNING_KEYS={key_id}:{_b64(seed)}")
        self.stdout.write(f"#   its public key: {_b64(public)}")

    def _public(self, key_id: str) -> None:
        for kid, public in platform_keys.sm2_public_keys().items():
            self.stdout.write(f"SM2 {kid}: {public}")
        for kid, private in platform_keys.ed25519_signing_keys():
            self.stdout.write(f"Ed25519 {kid}: {_b64(private.public_key().public_bytes_raw())}")

    def _legacy(self, key_id: str) -> None:
        secret_keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
        fernet_keys = [key for key in os.environ.get("ACCOUNTS_ENCRYPTION_KEYS", "").split(",") if key] or [
            _b64(hashlib.sha256(f"accounts.encryption:{secret}".encode()).digest()) for secret in secret_keys
        ]
        index_key = (
            os.environ.get("ACCOUNTS_BLIND_INDEX_KEY", "").encode()
            or hashlib.sha256(f"accounts.blind-index:{settings.SECRET_KEY}".encode()).digest()
        )
        partner_key = hashlib.sha256(f"activities.partner-secrets:{settings.SECRET_KEY}".encode()).digest()

        def ids(count: int) -> list[str]:
            return ["legacy", *(f"legacy-{number}" for number in range(2, count + 1))]

        personal = [
            f"{kid}:{key.rstrip('=')}" for kid, key in zip(ids(len(fernet_keys)), fernet_keys, strict=True)
        ]
        self.stdout.write("append to PERSONAL_DATA_KEYS: " + ",".join(personal))
        self.stdout.write(f"append to BLIND_INDEX_KEYS: legacy:{_b64(index_key)}")
        self.stdout.write(f"append to PARTNER_SECRET_KEYS: legacy:{_b64(partner_key)}")
