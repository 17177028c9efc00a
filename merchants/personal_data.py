"""The merchants app's part of export, erasure and account merges (called by accounts)."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef

from accounts.models import User
from core.api.errors import ApplicationError
from core.api.serializers import local_datetime_text
from merchants import errors
from merchants.models import Coupon, MerchantStaff, Offer, OfferRedemptionCount
from merchants.services import redemption_counts_lock, redemption_counts_merge


def personal_data_export(*, user: User) -> dict[str, Any]:
    """The person's coupons, and their place on a merchant's staff if they have one."""
    coupons = Coupon.objects.filter(user=user).select_related("merchant").order_by("issued_at", "pk")
    staff = MerchantStaff.objects.filter(user=user).select_related("merchant").first()
    return {
        "coupons": [
            {
                "id": str(coupon.public_id),
                "code": coupon.display_code,
                "offer": coupon.title,
                "merchant": coupon.merchant.name,
                "price_coins": coupon.price_coins,
                "status": coupon.status,
                "issued_at": local_datetime_text(coupon.issued_at),
                "valid_until": local_datetime_text(coupon.valid_until),
                "verified_at": local_datetime_text(coupon.verified_at) if coupon.verified_at else None,
                "expired_at": local_datetime_text(coupon.expired_at) if coupon.expired_at else None,
                "refunded_at": local_datetime_text(coupon.refunded_at) if coupon.refunded_at else None,
            }
            for coupon in coupons
        ],
        "merchant_staff": (
            {
                "merchant": staff.merchant.name,
                "role": staff.role,
                "added_at": local_datetime_text(staff.added_at),
            }
            if staff
            else None
        ),
        "coupons_verified_as_clerk": Coupon.objects.filter(verified_by=user).count(),
    }


def personal_data_erase(*, user: User) -> None:
    """Coupons stay for the merchants' books and the ledger, without the person (and without the
    request keys they sent); the per-offer counters and any staff place go."""
    Coupon.objects.filter(user=user).update(user=None, idempotency_key=None)
    Coupon.objects.filter(verified_by=user).update(verified_by=None)
    Offer.objects.filter(reviewed_by=user).update(reviewed_by=None)
    OfferRedemptionCount.objects.filter(user=user).delete()
    MerchantStaff.objects.filter(user=user).delete()


def accounts_merge_lock(*, source_user: User, target_user: User) -> None:
    """Before the wallets are locked: both people's per-offer counts (a redemption counts its coupon,
    then locks the wallet), so a redemption in flight finishes before the merge adds the counts up."""
    redemption_counts_lock(user_ids=[source_user.pk, target_user.pk])


def accounts_merge(*, source_user: User, target_user: User) -> None:
    """Moves the source's coupons and per-offer counts to the target (counts add up, nothing twice).

    An Idempotency-Key both accounts happened to use stays with the target's coupon; the source's
    copy of the key is dropped. A staff place moves when the target has none; when both work for
    the same merchant, the target keeps one place with the stronger role (an owner stays an owner);
    staff of two different merchants cannot be merged (`merge_staff_of_two_merchants`: a person
    works for one merchant, and neither merchant may silently lose someone).
    """
    _staff_places_merge(source_user=source_user, target_user=target_user)
    clashing = Coupon.objects.filter(user=target_user, idempotency_key=OuterRef("idempotency_key"))
    Coupon.objects.filter(user=source_user).filter(Exists(clashing)).update(idempotency_key=None)
    Coupon.objects.filter(user=source_user).update(user=target_user)
    redemption_counts_merge(source_user_id=source_user.pk, target_user_id=target_user.pk)


def _staff_places_merge(*, source_user: User, target_user: User) -> None:
    places = {
        place.user_id: place for place in MerchantStaff.objects.filter(user__in=[source_user, target_user])
    }
    source, target = places.get(source_user.pk), places.get(target_user.pk)
    if source is None:
        return
    if target is None:
        MerchantStaff.objects.filter(pk=source.pk).update(user=target_user)
        return
    if source.merchant_id != target.merchant_id:
        raise ApplicationError(errors.MERGE_STAFF_OF_TWO_MERCHANTS)
    if source.role == MerchantStaff.Role.OWNER:
        MerchantStaff.objects.filter(pk=target.pk).update(role=MerchantStaff.Role.OWNER)
    MerchantStaff.objects.filter(pk=source.pk).delete()
