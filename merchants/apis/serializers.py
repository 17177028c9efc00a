"""The merchants API's output serializers (input serializers live with their views)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts import selectors as account_selectors
from core.api.serializers import represent
from merchants.models import Coupon, MerchantCategory, MerchantStaff, Offer


class DistrictCodeField(serializers.SlugRelatedField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="code", queryset=account_selectors.districts(), **kwargs)


class MerchantOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField()
    category = serializers.ChoiceField(choices=MerchantCategory.choices)
    district = serializers.CharField(source="district.code")
    licence_number = serializers.CharField()
    contact_name = serializers.CharField()
    contact_phone = serializers.CharField()
    address = serializers.CharField()
    status = serializers.CharField()
    review_note = serializers.CharField()
    applied_at = serializers.DateTimeField()
    reviewed_at = serializers.DateTimeField(allow_null=True)


class StaffOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    user = serializers.UUIDField(source="user.public_id")
    nickname = serializers.CharField(source="user.nickname")
    role = serializers.ChoiceField(choices=MerchantStaff.Role.choices)
    added_at = serializers.DateTimeField()


class OfferOutput(serializers.Serializer):
    """An offer as its merchant sees it: everything, including its review state."""

    id = serializers.UUIDField(source="public_id")
    title = serializers.CharField()
    description = serializers.CharField()
    category = serializers.ChoiceField(choices=MerchantCategory.choices)
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    price_coins = serializers.IntegerField()
    total_stock = serializers.IntegerField()
    stock_left = serializers.IntegerField()
    limit_per_person = serializers.IntegerField()
    sale_starts_at = serializers.DateTimeField()
    sale_ends_at = serializers.DateTimeField()
    coupon_valid_days = serializers.IntegerField()
    districts = serializers.SerializerMethodField()
    refunds_on_expiry = serializers.BooleanField()
    status = serializers.ChoiceField(choices=Offer.Status.choices)
    review_note = serializers.CharField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_image_url(self, offer: Offer) -> str | None:
        return offer.image.url if offer.image else None

    def get_thumbnail_url(self, offer: Offer) -> str | None:
        return offer.thumbnail.url if offer.thumbnail else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_districts(self, offer: Offer) -> list[str]:
        return sorted(district.code for district in offer.districts.all())


class CatalogMerchantOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    district = serializers.CharField()


class CatalogOfferOutput(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    description = serializers.CharField()
    category = serializers.ChoiceField(choices=MerchantCategory.choices)
    merchant = CatalogMerchantOutput()
    image_url = serializers.CharField(allow_null=True)
    thumbnail_url = serializers.CharField(allow_null=True)
    price_coins = serializers.IntegerField()
    total_stock = serializers.IntegerField()
    stock_left = serializers.IntegerField()
    is_sold_out = serializers.BooleanField()
    limit_per_person = serializers.IntegerField()
    sale_starts_at = serializers.DateTimeField()
    sale_ends_at = serializers.DateTimeField()
    coupon_valid_days = serializers.IntegerField()
    districts = serializers.ListField(child=serializers.CharField())
    refunds_on_expiry = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class CouponOfferOutput(serializers.Serializer):
    """The offer a coupon was bought from, as named at purchase (the coupon's), with its picture."""

    id = serializers.UUIDField(source="offer.public_id")
    title = serializers.CharField()
    thumbnail_url = serializers.SerializerMethodField()

    def get_thumbnail_url(self, coupon: Coupon) -> str | None:
        return coupon.offer.thumbnail.url if coupon.offer.thumbnail else None


class CouponOutput(serializers.Serializer):
    """A coupon as its holder sees it: the code in text for typing, the status, the validity, and
    what was bought as it stood at purchase (title, price, refund promise)."""

    id = serializers.UUIDField(source="public_id")
    code = serializers.CharField(source="display_code")
    status = serializers.ChoiceField(choices=Coupon.Status.choices, source="current_status")
    offer = CouponOfferOutput(source="*")
    merchant_name = serializers.CharField(source="merchant.name")
    price_coins = serializers.IntegerField()
    issued_at = serializers.DateTimeField()
    valid_until = serializers.DateTimeField()
    refunds_on_expiry = serializers.BooleanField(
        help_text="whether the coins come back if the coupon expires unused (promised at purchase)"
    )
    verified_at = serializers.DateTimeField(allow_null=True)
    expired_at = serializers.DateTimeField(allow_null=True)
    is_refunded = serializers.SerializerMethodField()

    def get_is_refunded(self, coupon: Coupon) -> bool:
        return coupon.refunded_at is not None


def coupon_output(coupon: Coupon) -> dict[str, Any]:
    """`CouponOutput(coupon).data`, from the serializer built once (it is on every redemption)."""
    return represent(CouponOutput, coupon)


class MerchantCouponOutput(serializers.Serializer):
    """A coupon as the merchant sees it: never who holds it."""

    id = serializers.UUIDField(source="public_id")
    code = serializers.CharField(source="display_code")
    status = serializers.ChoiceField(choices=Coupon.Status.choices, source="current_status")
    offer = serializers.UUIDField(source="offer.public_id")
    offer_title = serializers.CharField(source="title", help_text="the offer's title at purchase")
    price_coins = serializers.IntegerField()
    issued_at = serializers.DateTimeField()
    valid_until = serializers.DateTimeField()
    verified_at = serializers.DateTimeField(allow_null=True)
    expired_at = serializers.DateTimeField(allow_null=True)


class OfferReportOutput(serializers.Serializer):
    offer_id = serializers.UUIDField()
    title = serializers.CharField()
    status = serializers.CharField()
    price_coins = serializers.IntegerField()
    issued = serializers.IntegerField()
    verified = serializers.IntegerField()
    expired = serializers.IntegerField()
    outstanding = serializers.IntegerField()
    verification_rate = serializers.FloatField(help_text="Percent of issued coupons that were used.")
    coins_earned = serializers.IntegerField()


REPORT_COLUMNS = list(OfferReportOutput().fields)


class StatementOutput(serializers.Serializer):
    month = serializers.CharField()
    merchant_id = serializers.UUIDField()
    merchant_name = serializers.CharField()
    licence_number = serializers.CharField()
    coupons_redeemed = serializers.IntegerField()
    coins_redeemed = serializers.IntegerField()
    coupons_refunded = serializers.IntegerField()
    coins_refunded = serializers.IntegerField()
    coins_cleared = serializers.IntegerField()


STATEMENT_COLUMNS = list(StatementOutput().fields)
