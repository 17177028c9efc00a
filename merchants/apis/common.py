"""Pieces shared by the merchants API views: renderers for files, pagination, throttles, the
caller's staff membership."""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

from config.api.dates import month_from_text
from config.api.pagination import CursorPagination
from merchants import selectors
from merchants.models import MerchantStaff


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None) -> bytes:
        if isinstance(data, bytes):
            return data
        return str(data).encode("utf-8")


class PNGRenderer(BaseRenderer):
    media_type = "image/png"
    format = "png"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None) -> bytes:
        return data if isinstance(data, bytes) else b""


class JsonErrorsMixin:
    """For routes whose success is a file (PNG, CSV): their errors still leave as the JSON envelope."""

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


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
