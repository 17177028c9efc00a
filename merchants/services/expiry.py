"""The daily expiry of unused coupons, and refunds where the offer's policy promises them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import NotificationKind
from accounts.notifications.services import notifications_insert
from core.api.errors import ApplicationError
from merchants import statements
from merchants.models import Coupon
from rewards import services as ledger
from rewards.errors import INSUFFICIENT_COINS
from rewards.models import LedgerTransactionKind

logger = logging.getLogger(__name__)


# --- Expiry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryResult:
    expired: int
    refunded: int
    # Refunds the merchant's clearing account could not pay tonight (its coins went to a challenge
    # budget): each coupon stays unrefunded, and the next night's run tries it again.
    refunds_waiting: int = 0


@dataclass(frozen=True)
class RefundsResult:
    refunded: int
    waiting: int


def coupons_expire(*, now: datetime | None = None, batch_size: int = 1000) -> ExpiryResult:
    """The daily job: unused coupons past validity expire (one set-based UPDATE per batch), then
    coupons of offers that refund on expiry get their coins back through the ledger.

    Safe to run twice or concurrently: the UPDATE only takes `issued` rows, and each refund is
    claimed by a conditional UPDATE of `refunded_at` and keyed in the ledger by the coupon.
    """
    now = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statements.COUPONS_EXPIRE, {"now": now, "batch": batch_size})
            count = cursor.rowcount
        expired += count
        if count < batch_size:
            break
    refunds = coupons_refund_expired(now=now, batch_size=batch_size)
    logger.info(
        "coupons expired",
        extra={"expired": expired, "refunded": refunds.refunded, "refunds_waiting": refunds.waiting},
    )
    return ExpiryResult(expired=expired, refunded=refunds.refunded, refunds_waiting=refunds.waiting)


def coupons_refund_expired(*, now: datetime, batch_size: int = 1000) -> RefundsResult:
    """Refunds expired coupons whose offer promises it and who still have an owner.

    A coupon whose merchant's clearing account cannot pay it (a merchant-backed challenge budget
    took those coins) waits, unrefunded, for the next run; it does not stop the others."""
    refunded = waiting = 0
    last_id = 0
    while True:
        candidates = list(
            Coupon.objects.filter(
                status=Coupon.Status.EXPIRED,
                refunded_at__isnull=True,
                offer__refunds_on_expiry=True,
                user__isnull=False,
                id__gt=last_id,
            )
            .order_by("id")
            .values_list("id", flat=True)[:batch_size]
        )
        if not candidates:
            return RefundsResult(refunded=refunded, waiting=waiting)
        for coupon_id in candidates:
            try:
                refunded += coupon_refund(coupon_id=coupon_id, now=now)
            except ApplicationError as error:
                if error.error is not INSUFFICIENT_COINS:
                    raise
                waiting += 1
                logger.warning("coupon refund waits for its merchant's coins", extra={"coupon_id": coupon_id})
        last_id = candidates[-1]


@transaction.atomic
def coupon_refund(*, coupon_id: int, now: datetime) -> int:
    """Gives one expired coupon's coins back (clearing → wallet); 1 if this call refunded it."""
    claimed = Coupon.objects.filter(
        pk=coupon_id, status=Coupon.Status.EXPIRED, refunded_at__isnull=True, user__isnull=False
    ).update(refunded_at=now)
    if not claimed:
        return 0
    coupon = Coupon.objects.get(pk=coupon_id)
    ledger.coins_transfer(
        source=ledger.clearing_account_for_merchant(merchant_id=coupon.merchant_id),
        destination=ledger.wallet_account_for_user(user_id=coupon.user_id),
        amount=coupon.price_coins,
        kind=LedgerTransactionKind.COUPON_REFUND,
        idempotency_key=f"coupon:{coupon.public_id}:refund",
        reference=f"coupon:{coupon.public_id}",
        memo="expired unused",
    )
    return 1


COUPON_REMINDER_DAYS = 3


def coupons_expiring_notify(*, now: datetime | None = None) -> int:
    """Tells people of unused coupons that expire within three days: once a coupon, set-based."""
    now = now or timezone.now()
    return notifications_insert(
        kind=NotificationKind.COUPON_EXPIRING,
        rows=statements.COUPONS_EXPIRING,
        params={
            "c_now": now,
            "c_until": now + timedelta(days=COUPON_REMINDER_DAYS),
            "c_tz": settings.TIME_ZONE,
        },
    ).notifications
