"""The platform's keys and the algorithms that use them, below the four apps (any app imports it).

- `keyring`: one setting per purpose, each a list of `<key id>:<key>` (the first encrypts or signs,
  every one decrypts or verifies); nothing here derives from SECRET_KEY.
- `sealing`: authenticated encryption that names its scheme and key id (`fernet:<id>:…`,
  `sm4gcm:<id>:…`), with the field's identity as associated data under SM4-GCM.
- `blind_index`: keyed digests for looking up encrypted values (`sha256:<id>:…`, `sm3:<id>:…`).
- `sm`: the national commercial algorithms (SM2 signatures, SM3, HMAC-SM3, SM4-GCM).
- `platform_keys`: the platform's own signing keys (SM2 now, Ed25519 for signed statements).
"""
