"""The token in a coupon's QR code: signed, short-lived, refreshed by the app.

A screenshot of a QR code is useless after `TOKEN_MAX_AGE_SECONDS`; the clerk then hears
"ask the customer to refresh the coupon". The code in text is the fallback for typing.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import qrcode
from django.core import signing
from django.utils import timezone
from qrcode.image.pil import PilImage

from core.api.errors import ApplicationError
from core.crypto.keyring import keyring
from merchants import errors

TOKEN_SALT = "merchants.coupon-qr"  # noqa: S105 - a signing namespace, not a secret
TOKEN_MAX_AGE_SECONDS = 180
# The app asks for a fresh token well before the old one goes stale.
TOKEN_REFRESH_AFTER_SECONDS = 60


def _signer() -> signing.TimestampSigner:
    """Signs under COUPON_TOKEN_KEYS (the first signs, every one verifies), never SECRET_KEY's key."""
    keys = keyring("COUPON_TOKEN_KEYS")
    return signing.TimestampSigner(
        key=keys.current.material.hex(),
        fallback_keys=[key.material.hex() for key in keys.keys[1:]],
        salt=TOKEN_SALT,
    )


@dataclass(frozen=True)
class CouponToken:
    token: str
    issued_at: datetime
    expires_at: datetime


def coupon_token_make(*, coupon_public_id: uuid.UUID) -> CouponToken:
    signer = _signer()
    now = timezone.now()
    return CouponToken(
        token=signer.sign(coupon_public_id.hex),
        issued_at=now,
        expires_at=now + timedelta(seconds=TOKEN_MAX_AGE_SECONDS),
    )


def coupon_token_read(*, token: str) -> uuid.UUID:
    """The coupon's public id from a scanned token; forged and stale tokens are told apart."""
    signer = _signer()
    try:
        value = signer.unsign(token.strip(), max_age=TOKEN_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise ApplicationError(errors.COUPON_TOKEN_STALE) from None
    except signing.BadSignature:
        raise ApplicationError(errors.COUPON_TOKEN_FORGED) from None
    try:
        return uuid.UUID(hex=value)
    except ValueError:
        raise ApplicationError(errors.COUPON_TOKEN_FORGED) from None


def qr_png(*, text: str) -> bytes:
    """A QR code of `text` as PNG bytes, with a quiet zone a phone camera needs."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(text)
    code.make(fit=True)
    image = code.make_image(image_factory=PilImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()
