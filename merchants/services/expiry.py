"""The daily expiry of unused coupons, and refunds where the coupon was bought with that promise."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import NotificationKind
from accounts.notifications.services import notifications_insert
from core.db import execute
from merchants import statements
from rewards import services as ledger
from rewards.models import LedgerTransactionKind

logger = logging.getLogger(__name__)


# --- Expiry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryResult:
    expired: int
    refunded: int
    # Refunds the merchant's clearing account could not pay tonight (its coins went to a challenge
    # budget): the merchant's coupons of that batch stay unrefunded, and the next night's run tries
    # them again.
    refunds_waiting: int = 0


@dataclass(frozen=True)
class RefundsResult:
    refunded: int
    waiting: int


def coupons_expire(*, now: datetime | None = None, batch_size: int = 1000) -> ExpiryResult:
    """The daily job: unused coupons past validity expire (one set-based UPDATE per batch), then
    coupons bought with the promise of a refund get their coins back through the ledger.

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
    """Refunds expired coupons bought with the promise of a refund (the coupon's own
    `refunds_on_expiry`, whatever the offer says now) that still have an owner, set-based: per
    batch, one statement claims the coupons and the ledger posts their refunds together, each a
    transaction of its own under the coupon's key (`rewards.services.coins_transfers`).

    A merchant whose clearing account cannot pay all of its coupons of a batch (a merchant-backed
    challenge budget took those coins) pays none of them: they wait, unrefunded, for the next run;
    they do not stop the others."""
    refunded = waiting = 0
    after = 0
    while True:
        with transaction.atomic():
            batch = _refunds_pay(now=now, after=after, batch_size=batch_size)
        refunded += batch.refunded
        waiting += batch.waiting
        if batch.claimed < batch_size:
            return RefundsResult(refunded=refunded, waiting=waiting)
        after = batch.last_id


@dataclass(frozen=True)
class _RefundBatch:
    claimed: int
    refunded: int
    waiting: int
    last_id: int


def _refunds_pay(*, now: datetime, after: int, batch_size: int) -> _RefundBatch:
    """Claims the next batch of refunds due after coupon `after` and pays them; the caller's
    transaction holds the claim and the coins together."""
    claimed = sorted(
        execute(statements.COUPON_REFUNDS_CLAIM, {"now": now, "after": after, "batch": batch_size})
    )
    if not claimed:
        return _RefundBatch(claimed=0, refunded=0, waiting=0, last_id=after)
    refunds = {
        coupon_id: ledger.Transfer(
            source=ledger.clearing_of(merchant_id=merchant_id),
            destination=ledger.wallet_of(user_id=user_id),
            amount=price_coins,
            idempotency_key=f"coupon:{public_id}:refund",
            reference=f"coupon:{public_id}",
        )
        for coupon_id, public_id, merchant_id, user_id, price_coins in claimed
    }
    outcome = ledger.coins_transfers(
        transfers=list(refunds.values()), kind=LedgerTransactionKind.COUPON_REFUND, memo="expired unused"
    )
    refused = set(outcome.refused)
    waiting = [coupon_id for coupon_id, refund in refunds.items() if refund.idempotency_key in refused]
    if waiting:
        execute(statements.COUPON_REFUNDS_UNCLAIM, {"ids": waiting})
        logger.warning("coupon refunds wait for their merchants' coins", extra={"coupon_ids": waiting})
    return _RefundBatch(
        claimed=len(claimed),
        refunded=len(claimed) - len(waiting),
        waiting=len(waiting),
        last_id=claimed[-1][0],
    )


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
