"""Verification at the counter: a coupon is consumed once, by its merchant, while valid."""

from __future__ import annotations

from django.utils import timezone

from core.api.errors import ApplicationError
from merchants import errors
from merchants.coupon_tokens import coupon_token_read
from merchants.models import Coupon, MerchantStaff
from merchants.services.redemption import coupon_code_normalize

# --- Verification at the counter ------------------------------------------------------------


def coupon_verify(*, staff: MerchantStaff, token: str = "", code: str = "") -> Coupon:
    """A clerk consumes a coupon, by its QR token or its typed code: once, here, while valid.

    One conditional UPDATE … WHERE status='issued' decides; when it changes nothing, the coupon
    is read again only to say why (already used, expired, another merchant's).
    """
    if token:
        public_id = coupon_token_read(token=token)
        coupon = Coupon.objects.filter(public_id=public_id).first()
        if coupon is None:
            raise ApplicationError(errors.COUPON_TOKEN_FORGED)
    else:
        coupon = Coupon.objects.filter(code=coupon_code_normalize(code)).first()
        if coupon is None:
            raise ApplicationError(errors.COUPON_NOT_FOUND)

    if coupon.merchant_id != staff.merchant_id:
        raise ApplicationError(errors.COUPON_OTHER_MERCHANT)

    now = timezone.now()
    updated = Coupon.objects.filter(
        pk=coupon.pk,
        merchant_id=staff.merchant_id,
        status=Coupon.Status.ISSUED,
        valid_until__gt=now,
    ).update(status=Coupon.Status.VERIFIED, verified_at=now, verified_by_id=staff.user_id)
    coupon.refresh_from_db()
    if updated:
        return coupon
    if coupon.status == Coupon.Status.VERIFIED:
        raise ApplicationError(errors.COUPON_ALREADY_USED, fields={"verified_at": coupon.verified_at})
    raise ApplicationError(errors.COUPON_EXPIRED, fields={"valid_until": coupon.valid_until})
