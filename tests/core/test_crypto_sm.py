"""The national algorithms against their published vectors, and our SM2 against an independent
implementation (snowland-smx, pure Python, a test dependency only): each verifies the other's signatures."""

from __future__ import annotations

import secrets

import gmssl_pyx
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pysmx import SM2 as smx  # noqa: N811 - the independent implementation

from core.crypto import platform_keys, sm

MESSAGE = b'1795503845\nreq-1\n{"records":[]}'
SIGNER_ID = b"1234567812345678"


def raw_of(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def der_of(raw: bytes) -> bytes:
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def test_sm3_of_abc_is_the_gb_t_32905_vector():
    assert sm.sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_sm4_encrypts_the_gb_t_32907_vector():
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()  # noqa: S305 - one block: the vector

    assert (encryptor.update(key) + encryptor.finalize()).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm4_gcm_opens_only_with_the_same_associated_data():
    key, nonce = bytes(range(16)), bytes(12)
    sealed = sm.sm4_gcm_encrypt(key, nonce, b"13812345678", b"k1|row#1")

    assert sm.sm4_gcm_decrypt(key, nonce, sealed, b"k1|row#1") == b"13812345678"
    with pytest.raises(InvalidTag):
        sm.sm4_gcm_decrypt(key, nonce, sealed, b"k1|row#2")


def test_hmac_sm3_is_hmac_over_sm3():
    # HMAC(K, m) = H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)) with a 64-byte block, computed from SM3 alone.
    key, message = b"key", b"message"
    block = key.ljust(64, b"\0")
    inner = sm.sm3(bytes(b ^ 0x36 for b in block) + message)
    expected = sm.sm3(bytes(b ^ 0x5C for b in block) + inner)

    assert sm.hmac_sm3(key, message) == expected


def test_our_public_key_derivation_matches_gmssl():
    public, private = gmssl_pyx.sm2_key_generate()

    assert sm.sm2_public_key_of(private) == public


def test_an_sm2_signature_of_ours_verifies_in_snowland_smx():
    key = platform_keys.sm2_signing_keys()[0]
    key_id, signature = platform_keys.sm2_sign(MESSAGE)

    assert key_id == "dev-1"
    assert smx.Verify(raw_of(signature), MESSAGE, key.public_key, 64, uid=SIGNER_ID) is True
    assert smx.Verify(raw_of(signature), MESSAGE + b" ", key.public_key, 64, uid=SIGNER_ID) is False


def test_an_sm2_signature_of_snowland_smx_verifies_in_ours():
    pair = smx.generate_keypair()
    raw = smx.Sign(MESSAGE, pair.privateKey, secrets.token_hex(32), 64, uid=SIGNER_ID)

    assert sm.sm2_verify(pair.publicKey, MESSAGE, der_of(raw)) is True
    assert sm.sm2_verify(pair.publicKey, MESSAGE + b" ", der_of(raw)) is False
    assert sm.sm2_verify(pair.publicKey, MESSAGE, der_of(raw), signer_id="another-signer") is False
    assert sm.sm2_verify(pair.publicKey, MESSAGE, b"") is False
    assert sm.sm2_verify(pair.publicKey, MESSAGE, b"\x30\x02zz") is False


def test_public_keys_are_taken_in_every_usual_form_and_must_be_on_the_curve():
    public, _ = gmssl_pyx.sm2_key_generate()
    y_is_odd = public[-1] & 1
    compressed = bytes([2 + y_is_odd]) + public[:32]

    for form in (public.hex(), "04" + public.hex(), compressed.hex(), public.hex().upper()):
        assert sm.sm2_public_key_normalized(form) == public
    with pytest.raises(ValueError, match="not an SM2 public key"):
        sm.sm2_public_key_normalized("04" + "11" * 64)
