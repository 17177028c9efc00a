"""Periodic jobs of the merchants app (scheduled in config/settings/integrations/celery.py)."""

from __future__ import annotations

from celery import shared_task

from merchants.services import coupons_expire
from merchants.services.expiry import coupons_expiring_notify


@shared_task(name="merchants.tasks.expire_coupons")
def expire_coupons() -> dict[str, int]:
    """Daily: unused coupons past their validity expire; refunds where the offer's policy says so.
    Safe to run twice: it only takes coupons still `issued`, and each refund is keyed by its coupon."""
    result = coupons_expire()
    reminded = coupons_expiring_notify()
    return {
        "expired": result.expired,
        "refunded": result.refunded,
        "refunds_waiting": result.refunds_waiting,
        "reminded": reminded,
    }
