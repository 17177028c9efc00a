"""Encryption at rest for personal fields, and keyed blind indexes for looking them up.

Keys: PERSONAL_DATA_KEYS and BLIND_INDEX_KEYS (config/settings/integrations/keys.py), never derived
from SECRET_KEY. CRYPTO_SUITE chooses what new data is written with: `standard` (Fernet, blind
indexes HMAC-SHA256) or `sm` (SM4-GCM with the key id and the field's identity as associated data,
blind indexes HMAC-SM3). Either suite reads everything written under the other, so a database moves
between them with `manage.py rotate_keys` (core/crypto/ explains the formats).

Each ciphertext is bound to a context: the field's identity (model, field, row) where it is stored.
"""

from __future__ import annotations

from core.crypto import blind_index as blind_indexes_module
from core.crypto import sealing
from core.crypto.keyring import crypto_suite, keyring

# A bank's phone and ID number claims, between the ID token's check and the account's details.
BANK_CLAIMS_CONTEXT = "accounts.bank-claims"


def personal_details_context(field: str, details_id: int) -> str:
    """`accounts.personaldetails.phone_number#42`: the row's id, which a merge of accounts keeps."""
    return f"accounts.personaldetails.{field}#{details_id}"


def wechat_session_key_context(openid: str) -> str:
    return f"socialaccount.wechat_session_key#{openid}"


def cipher_scheme() -> str:
    return sealing.SM4_GCM if crypto_suite() == "sm" else sealing.FERNET


def blind_index_algorithm() -> str:
    return blind_indexes_module.SM3 if crypto_suite() == "sm" else blind_indexes_module.SHA256


def encrypt(plaintext: str | bytes, *, context: str) -> str:
    data = plaintext.encode() if isinstance(plaintext, str) else plaintext
    return sealing.seal(keyring("PERSONAL_DATA_KEYS"), data, scheme=cipher_scheme(), context=context)


def decrypt(ciphertext: str, *, context: str) -> bytes | None:
    """The plaintext, or None when no listed key opens it (a key retired too early, or tampering)."""
    return sealing.unseal(keyring("PERSONAL_DATA_KEYS"), ciphertext, context=context)


def is_current_ciphertext(ciphertext: str) -> bool:
    return ciphertext.startswith(current_ciphertext_prefix())


def current_ciphertext_prefix() -> str:
    return sealing.current_prefix(keyring("PERSONAL_DATA_KEYS"), cipher_scheme())


def blind_index(value: str, *, purpose: str) -> str:
    """A keyed digest of a normalized value, under the current key: what a new row stores."""
    return blind_indexes_module.digest(
        keyring("BLIND_INDEX_KEYS"), value, purpose=purpose, algorithm=blind_index_algorithm()
    )


def blind_indexes(value: str, *, purpose: str) -> list[str]:
    """Every digest the value may be stored under while keys rotate: look-ups ask for any of them."""
    return blind_indexes_module.digests(keyring("BLIND_INDEX_KEYS"), value, purpose=purpose)


def current_digest_prefix() -> str:
    return blind_indexes_module.current_prefix(keyring("BLIND_INDEX_KEYS"), blind_index_algorithm())
