"""Partner request signatures: the schemes, their secrets sealed at rest, checks in constant time.

Every scheme signs the same bytes (`request_message`): `method \\n path \\n timestamp \\n request id
\\n body`, so a signed request means one thing on one route. Partners that signed before the method
and path were covered may send the earlier form (`legacy_request_message`: timestamp, request id,
body) until `Partner.legacy_signature_until`. A partner's scheme is chosen in the admin
(`Partner.signature_scheme`):
- `hmac-sha256`: hex HMAC-SHA256 under the partner's signing secret;
- `hmac-sm3`: hex HMAC-SM3 under the same secret;
- `sm2-sm3`: hex of the DER SM2 signature (SM3 digest, signer id by default `1234567812345678`)
  under the partner's private key; we hold its public key.

Partners of an SM scheme get answers signed with our SM2 key where an answer discloses something
(the credit profile): `answer_signature_headers`.

Signing secrets are sealed with PARTNER_SECRET_KEYS (never with a key derived from SECRET_KEY);
each sealed secret names its key id, so `manage.py rotate_keys` can move them to a new key.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import secrets
import time

from activities.models import Partner, SignatureScheme
from core.crypto import platform_keys, sealing, sm
from core.crypto.keyring import crypto_suite, keyring

# Our signed answers to partners of an SM scheme (docs/partner-integration.md).
ANSWER_SIGNATURE_SCHEME = "sm2-sm3"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    return "pk_" + secrets.token_hex(16)


def secret_context(partner_code: str) -> str:
    """The sealed secret's identity (SM4-GCM associated data): the partner's code, never edited."""
    return f"activities.partner.signing_secret#{partner_code}"


def _scheme() -> str:
    return sealing.SM4_GCM if crypto_suite() == "sm" else sealing.FERNET


def seal(secret: str, *, partner_code: str) -> str:
    return sealing.seal(
        keyring("PARTNER_SECRET_KEYS"),
        secret.encode(),
        scheme=_scheme(),
        context=secret_context(partner_code),
    )


def unseal(ciphertext: str, *, partner_code: str) -> str | None:
    if not ciphertext:
        return None
    plaintext = sealing.unseal(
        keyring("PARTNER_SECRET_KEYS"), ciphertext, context=secret_context(partner_code)
    )
    return plaintext.decode() if plaintext is not None else None


def current_seal_prefix() -> str:
    return sealing.current_prefix(keyring("PARTNER_SECRET_KEYS"), _scheme())


# The forms a partner's request may be signed in: `request_message`, or `legacy_request_message`
# within the partner's window for it.
SIGNED_FORM_CURRENT = "method_and_path"
SIGNED_FORM_LEGACY = "legacy"
SIGNED_FORMS = (SIGNED_FORM_CURRENT, SIGNED_FORM_LEGACY)


def request_message(method: str, path: str, timestamp: str, request_id: str, body: bytes) -> bytes:
    """What a partner signs: the method, the path and query as in the request line, the timestamp,
    the request id and the body exactly as sent, each but the body followed by a newline."""
    return f"{method.upper()}\n{path}\n{timestamp}\n{request_id}\n".encode() + body


def answer_message(timestamp: str, request_id: str, body: bytes) -> bytes:
    """What we sign of an answer: our timestamp, the partner's request id (which its signature bound
    to the method and path) and the body."""
    return timestamp.encode() + b"\n" + request_id.encode() + b"\n" + body


# The form partners signed before the method and path were covered: the answers' layout.
legacy_request_message = answer_message


def signature_of(secret: str, message: bytes, *, scheme: str = SignatureScheme.HMAC_SHA256) -> str:
    """The hex X-Signature of an HMAC scheme over `message`, as a partner computes it."""
    if scheme == SignatureScheme.HMAC_SM3:
        return sm.hmac_sm3(secret.encode(), message).hex()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(
    secret: str, message: bytes, signature: str, *, scheme: str = SignatureScheme.HMAC_SHA256
) -> bool:
    expected = signature_of(secret, message, scheme=scheme)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


def sm2_signature_matches(partner: Partner, message: bytes, signature: str) -> bool:
    """Whether the hex DER signature is the partner's SM2 signature (its registered public key)."""
    if not partner.sm2_public_key:
        return False
    try:
        der = bytes.fromhex(signature.strip())
    except (ValueError, binascii.Error):
        return False
    return sm.sm2_verify(
        bytes.fromhex(partner.sm2_public_key), message, der, partner.sm2_signer_id or sm.DEFAULT_SIGNER_ID
    )


def answer_signature_headers(request_id: str, body: bytes) -> dict[str, str]:
    """Our SM2 signature of an answer (`answer_message`): our timestamp and the partner's request id,
    so an answer can't be passed off as the answer to another request."""
    timestamp = str(int(time.time()))
    key_id, signature = platform_keys.sm2_sign(answer_message(timestamp, request_id, body))
    return {
        "X-Platform-Signature-Scheme": ANSWER_SIGNATURE_SCHEME,
        "X-Platform-Key-Id": key_id,
        "X-Platform-Timestamp": timestamp,
        "X-Platform-Signature": signature.hex(),
    }
