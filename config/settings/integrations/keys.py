"""Keys of their own: one setting per purpose, none derived from SECRET_KEY (core/crypto/keyring.py).

Each is a comma-separated list of `<key id>:<key>`, newest first: the first encrypts or signs,
every one decrypts or verifies, and each ciphertext, digest and signature names its key id.
`manage.py keys generate` prints fresh ones; `manage.py rotate_keys` moves stored data to the first.
Production refuses to start without any of them (config/settings/production.py).
"""

from config.settings.environment import env

# Seals the partners' HMAC signing secrets (32 bytes, urlsafe base64).
PARTNER_SECRET_KEYS = env.list("PARTNER_SECRET_KEYS", default=[])
# Encrypts personal data at rest: bank-supplied phone and ID numbers, WeChat session keys (32 bytes).
PERSONAL_DATA_KEYS = env.list("PERSONAL_DATA_KEYS", default=[])
# Keys the blind indexes that find encrypted values (32 bytes).
BLIND_INDEX_KEYS = env.list("BLIND_INDEX_KEYS", default=[])
# Signs our answers to partners that use the SM suite (SM2 private keys, 64 hex digits).
PLATFORM_SM2_SIGNING_KEYS = env.list("PLATFORM_SM2_SIGNING_KEYS", default=[])
# Signs statements the platform issues (Ed25519 seeds, 32 bytes, urlsafe base64).
PLATFORM_ED25519_SIGNING_KEYS = env.list("PLATFORM_ED25519_SIGNING_KEYS", default=[])
# Keys the pairwise subjects of signed statements: an HMAC of the person and the receiving platform,
# so two platforms cannot join people through them (32 bytes). Only the first is used: rotating it
# gives everyone new subjects at every platform (docs/interop.md).
STATEMENT_SUBJECT_KEYS = env.list("STATEMENT_SUBJECT_KEYS", default=[])
# Signs the short-lived tokens in coupons' QR codes (32 bytes); every listed key still verifies.
COUPON_TOKEN_KEYS = env.list("COUPON_TOKEN_KEYS", default=[])

# What new data is written with: `standard` (Fernet; blind indexes HMAC-SHA256) or `sm` (SM4-GCM with
# the key id and the field's identity as associated data; blind indexes HMAC-SM3). Either reads
# both; `manage.py rotate_keys` moves a database from one to the other.
CRYPTO_SUITE = env("CRYPTO_SUITE", default="standard")
