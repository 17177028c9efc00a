"""Pieces shared by the merchants API views: pagination, throttles, the caller's staff membership."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.api.dates import month_from_text
from core.api.pagination import CursorPagination
from merchants import selectors
from merchants.console import ratelimit
from merchants.models import MerchantStaff


class VerifyThrottle(BaseThrottle):
    """Typed codes are 60 bits, and a clerk gets 60 tries a minute, through this API and the console
    together (one counter: `ratelimit.VERIFY_PER_USER`): no guessing by brute force. Each try is
    counted by one atomic increment before it is let through, so tries sent at the same moment
    cannot pass the limit together."""

    def allow_request(self, request: Request, view) -> bool:
        if not request.user.is_authenticated:
            return True  # refused before this by the view's permission
        self.subject = str(request.user.pk)
        return ratelimit.attempt(ratelimit.VERIFY_PER_USER, self.subject)

    def wait(self) -> float:
        return ratelimit.seconds_left(ratelimit.VERIFY_PER_USER, self.subject)


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
