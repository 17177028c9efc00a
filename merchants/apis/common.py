"""Pieces shared by the merchants API views: pagination, throttles, the caller's staff membership."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

from core.api.dates import month_from_text
from core.api.pagination import CursorPagination
from merchants import selectors
from merchants.models import MerchantStaff


class VerifyThrottle(UserRateThrottle):
    """Typed codes are 60 bits, and a clerk gets 60 tries a minute: no guessing by brute force."""

    scope = "merchants_coupon_verify"
    rate = "60/min"


class CouponCursorPagination(CursorPagination):
    ordering = ("-issued_at", "-id")


class OfferCursorPagination(CouponCursorPagination):
    ordering = ("-created_at", "-id")


class StaffPagination(CouponCursorPagination):
    ordering = ("added_at", "id")


def staff_of_request(request: Request, *, owner_only: bool = False) -> MerchantStaff:
    return selectors.staff_for_user(user=request.user, owner_only=owner_only)


def month_of(text: str) -> selectors.Month:
    first = month_from_text(text)
    return selectors.Month(first.year, first.month)
