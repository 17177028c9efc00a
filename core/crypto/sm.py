"""The national commercial cryptography algorithms: SM2 signatures, SM3, HMAC-SM3, SM4-GCM.

SM3 and SM4 come from `cryptography` (OpenSSL); SM2, which it lacks, from `gmssl-pyx` (GmSSL as a
C extension, signatures DER-encoded, randomness from GmSSL's own generator). The pure-Python
`gmssl` package is not used: its SM2 signing draws its nonce from `random`.

Signatures follow GB/T 32918: e = SM3(Z_A ‖ M), Z_A from the signer id (by default
`1234567812345678`, GB/T 35276) and the public key.
"""

from __future__ import annotations

import gmssl_pyx
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

DEFAULT_SIGNER_ID = "1234567812345678"
SM4_GCM_NONCE_BYTES = 12
SM4_GCM_TAG_BYTES = 16

# The curve of GB/T 32918.5 (sm2p256v1), for deriving a public key from a private one.
_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_G = (
    0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
)


def sm3(message: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(message)
    return digest.finalize()


def hmac_sm3(key: bytes, message: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SM3())
    mac.update(message)
    return mac.finalize()


def sm4_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """Ciphertext followed by its 16-byte tag."""
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(associated_data)
    return encryptor.update(plaintext) + encryptor.finalize() + encryptor.tag


def sm4_gcm_decrypt(key: bytes, nonce: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    """The plaintext; raises `cryptography.exceptions.InvalidTag` when anything was changed."""
    ciphertext, tag = sealed[:-SM4_GCM_TAG_BYTES], sealed[-SM4_GCM_TAG_BYTES:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(associated_data)
    return decryptor.update(ciphertext) + decryptor.finalize()


def _point_add(first, second):
    if first is None:
        return second
    if second is None:
        return first
    (x1, y1), (x2, y2) = first, second
    if x1 == x2 and (y1 + y2) % _P == 0:
        return None
    if first == second:
        slope = (3 * x1 * x1 + _A) * pow(2 * y1, -1, _P) % _P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, _P) % _P
    x3 = (slope * slope - x1 - x2) % _P
    return x3, (slope * (x1 - x3) - y1) % _P


def sm2_public_key_of(private_key: bytes) -> bytes:
    """The 64-byte public key (x ‖ y) of a 32-byte private key: d·G.

    Runs once per configured key (not constant-time, which is why it never runs per request).
    """
    scalar = int.from_bytes(private_key, "big")
    if not 1 <= scalar < _N - 1:
        raise ValueError("An SM2 private key is an integer in [1, n-2].")
    result, addend = None, _G
    while scalar:
        if scalar & 1:
            result = _point_add(result, addend)
        addend = _point_add(addend, addend)
        scalar >>= 1
    x, y = result
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def sm2_public_key_normalized(text: str) -> bytes:
    """A public key as partners send it (hex: `04‖x‖y`, `x‖y` or compressed) as 64 bytes on the curve.

    Raises ValueError when it is not a point of the curve.
    """
    try:
        return gmssl_pyx.normalize_sm2_public_key(text.strip().lower())
    except gmssl_pyx.InvalidValueError as error:
        raise ValueError("not an SM2 public key") from error


def sm2_sign(
    private_key: bytes, public_key: bytes, message: bytes, signer_id: str = DEFAULT_SIGNER_ID
) -> bytes:
    """A DER-encoded SM2 signature of SM3(Z_A ‖ message)."""
    return gmssl_pyx.sm2_sign(private_key, public_key, message, signer_id.encode())


def sm2_verify(
    public_key: bytes, message: bytes, signature: bytes, signer_id: str = DEFAULT_SIGNER_ID
) -> bool:
    """Whether `signature` (DER) is the holder of `public_key`'s signature of `message`."""
    if not signature:
        return False
    try:
        return bool(gmssl_pyx.sm2_verify(public_key, message, signature, signer_id.encode()))
    except gmssl_pyx.GmsslInnerError:
        return False
