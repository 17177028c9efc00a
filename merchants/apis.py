"""The merchants API: the catalog and coupons for citizens, the merchant API for staff.

Thin views: validate, call one service or selector, serialize. Merchant routes resolve the
caller's merchant from their staff membership and look objects up inside that merchant only,
so another merchant's offer or coupon is simply not found.
"""

from __future__ import annotations

import re
from typing import Any

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from accounts.models import District
from config.api.errors import ApplicationError
from merchants import errors, selectors, services
from merchants.coupon_tokens import TOKEN_REFRESH_AFTER_SECONDS, coupon_token_make, qr_png
from merchants.exports import csv_bytes
from merchants.models import Coupon, MerchantCategory, MerchantStaff, Offer

# --- Shared pieces ------------------------------------------------------------------------


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
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = ("-issued_at", "-id")


class OfferCursorPagination(CouponCursorPagination):
    ordering = ("-created_at", "-id")


class StaffPagination(CouponCursorPagination):
    ordering = ("added_at", "id")


def _staff(request: Request, *, owner_only: bool = False) -> MerchantStaff:
    return selectors.staff_for_user(user=request.user, owner_only=owner_only)


# --- Serializers (output) --------------------------------------------------------------------


class DistrictCodeField(serializers.SlugRelatedField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="code", queryset=District.objects.all(), **kwargs)


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
    id = serializers.UUIDField(source="public_id")
    title = serializers.CharField()
    thumbnail_url = serializers.SerializerMethodField()

    def get_thumbnail_url(self, offer: Offer) -> str | None:
        return offer.thumbnail.url if offer.thumbnail else None


class CouponOutput(serializers.Serializer):
    """A coupon as its holder sees it: the code in text for typing, the status, the validity."""

    id = serializers.UUIDField(source="public_id")
    code = serializers.CharField(source="display_code")
    status = serializers.ChoiceField(choices=Coupon.Status.choices, source="current_status")
    offer = CouponOfferOutput()
    merchant_name = serializers.CharField(source="merchant.name")
    price_coins = serializers.IntegerField()
    issued_at = serializers.DateTimeField()
    valid_until = serializers.DateTimeField()
    verified_at = serializers.DateTimeField(allow_null=True)
    expired_at = serializers.DateTimeField(allow_null=True)
    is_refunded = serializers.SerializerMethodField()

    def get_is_refunded(self, coupon: Coupon) -> bool:
        return coupon.refunded_at is not None


class MerchantCouponOutput(serializers.Serializer):
    """A coupon as the merchant sees it: never who holds it."""

    id = serializers.UUIDField(source="public_id")
    code = serializers.CharField(source="display_code")
    status = serializers.ChoiceField(choices=Coupon.Status.choices, source="current_status")
    offer = serializers.UUIDField(source="offer.public_id")
    offer_title = serializers.CharField(source="offer.title")
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


# --- Citizens: merchant application ------------------------------------------------------------


class MerchantApplyApi(APIView):
    class MerchantApplicationInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=80)
        category = serializers.ChoiceField(choices=MerchantCategory.choices)
        district = DistrictCodeField()
        licence_number = serializers.RegexField(r"^[0-9A-Za-z]{8,32}$", max_length=32)
        contact_name = serializers.CharField(max_length=40)
        contact_phone = serializers.RegexField(r"^\+?[0-9 -]{6,20}$", max_length=20)
        address = serializers.CharField(max_length=200, required=False, default="")

    @extend_schema(
        request=MerchantApplicationInputSerializer,
        responses={201: MerchantOutput},
        operation_id="merchant_apply",
    )
    def post(self, request: Request) -> Response:
        data = self.MerchantApplicationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        merchant = services.merchant_apply(user=request.user, **data.validated_data)
        return Response(MerchantOutput(merchant).data, status=status.HTTP_201_CREATED)


# --- Citizens: catalog and redemption --------------------------------------------------------


class CatalogListApi(APIView):
    class CatalogFilterSerializer(serializers.Serializer):
        category = serializers.ChoiceField(choices=MerchantCategory.choices, required=False)
        district = serializers.SlugField(required=False, max_length=32)
        affordable = serializers.BooleanField(required=False, default=False)
        sort = serializers.ChoiceField(choices=list(selectors.CATALOG_SORTS), default="newest")
        page = serializers.IntegerField(min_value=1, default=1)
        page_size = serializers.IntegerField(min_value=1, max_value=50, default=20)

    class CatalogPageSerializer(serializers.Serializer):
        count = serializers.IntegerField()
        page = serializers.IntegerField()
        next_page = serializers.IntegerField(allow_null=True)
        wallet_balance = serializers.IntegerField(allow_null=True)
        results = CatalogOfferOutput(many=True)

    @extend_schema(
        parameters=[CatalogFilterSerializer],
        responses=CatalogPageSerializer,
        operation_id="catalog_offers_list",
    )
    def get(self, request: Request) -> Response:
        filters = self.CatalogFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        balance = selectors.wallet_balance(user=request.user) if params["affordable"] else None
        offers = selectors.catalog_offers(
            category=params.get("category"),
            district=params.get("district"),
            sort=params["sort"],
            max_price=balance,
        )
        page, size = params["page"], params["page_size"]
        window = offers[(page - 1) * size : page * size]
        return Response(
            {
                "count": len(offers),
                "page": page,
                "next_page": page + 1 if page * size < len(offers) else None,
                "wallet_balance": balance,
                "results": window,
            }
        )


class CatalogDetailApi(APIView):
    @extend_schema(responses=CatalogOfferOutput, operation_id="catalog_offers_retrieve")
    def get(self, request: Request, offer_id) -> Response:
        offer = selectors.catalog_offer(offer_public_id=offer_id)
        codes = sorted(district.code for district in offer.districts.all())
        return Response(selectors.catalog_offer_dict(offer, codes))


_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class OfferRedeemApi(APIView):
    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        key = request.headers.get("Idempotency-Key") or None
        if (key is None or _IDEMPOTENCY_KEY.match(key)) and selectors.sold_out_before_sign_in(
            offer_public_id=kwargs["offer_id"],
            session_token=request.headers.get("X-Session-Token", ""),
            idempotency_key=key,
        ):
            raise ApplicationError(errors.OFFER_SOLD_OUT)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description=(
                    "8–64 letters, digits, - or _. A retry with the same key returns the same coupon."
                ),
            )
        ],
        responses={201: CouponOutput, 200: CouponOutput},
        operation_id="catalog_offers_redeem",
    )
    def post(self, request: Request, offer_id) -> Response:
        key = request.headers.get("Idempotency-Key") or None
        if key is not None and not _IDEMPOTENCY_KEY.match(key):
            raise ApplicationError(errors.IDEMPOTENCY_KEY_INVALID)
        redemption = services.offer_redeem(user=request.user, offer_public_id=offer_id, idempotency_key=key)
        return Response(
            CouponOutput(redemption.coupon).data,
            status=status.HTTP_201_CREATED if redemption.created else status.HTTP_200_OK,
            headers={} if redemption.created else {"Idempotent-Replayed": "true"},
        )


# --- Citizens: their coupons ------------------------------------------------------------------


class CouponListApi(APIView):
    class CouponFilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Coupon.Status.choices, required=False)

    @extend_schema(
        parameters=[CouponFilterSerializer], responses=CouponOutput(many=True), operation_id="coupons_list"
    )
    def get(self, request: Request) -> Response:
        filters = self.CouponFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        coupons = selectors.coupons_of_person(user=request.user)
        if "status" in filters.validated_data:
            coupons = selectors.coupons_with_status(coupons, filters.validated_data["status"])
        paginator = CouponCursorPagination()
        page = paginator.paginate_queryset(coupons, request, view=self)
        return paginator.get_paginated_response(CouponOutput(page, many=True).data)


def _my_coupon(request: Request, coupon_id) -> Coupon:
    return get_object_or_404(selectors.coupons_of_person(user=request.user), public_id=coupon_id)


class CouponDetailApi(APIView):
    @extend_schema(responses=CouponOutput, operation_id="coupons_retrieve")
    def get(self, request: Request, coupon_id) -> Response:
        return Response(CouponOutput(_my_coupon(request, coupon_id)).data)


def _usable_coupon(request: Request, coupon_id) -> Coupon:
    coupon = _my_coupon(request, coupon_id)
    if coupon.current_status != Coupon.Status.ISSUED:
        raise ApplicationError(errors.COUPON_NOT_USABLE, fields={"status": coupon.current_status})
    return coupon


class CouponTokenApi(APIView):
    class CouponTokenSerializer(serializers.Serializer):
        token = serializers.CharField(help_text="What the QR code carries.")
        code = serializers.CharField(help_text="The code in text, for typing at the counter.")
        expires_at = serializers.DateTimeField()
        refresh_after_seconds = serializers.IntegerField()

    @extend_schema(responses=CouponTokenSerializer, operation_id="coupons_token")
    def get(self, request: Request, coupon_id) -> Response:
        coupon = _usable_coupon(request, coupon_id)
        token = coupon_token_make(coupon_public_id=coupon.public_id)
        return Response(
            {
                "token": token.token,
                "code": coupon.display_code,
                "expires_at": token.expires_at,
                "refresh_after_seconds": TOKEN_REFRESH_AFTER_SECONDS,
            },
            headers={"Cache-Control": "no-store"},
        )


class CouponQrApi(JsonErrorsMixin, APIView):
    renderer_classes = [PNGRenderer, JSONRenderer]

    @extend_schema(
        responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY)},
        operation_id="coupons_qr",
    )
    def get(self, request: Request, coupon_id) -> Response:
        coupon = _usable_coupon(request, coupon_id)
        token = coupon_token_make(coupon_public_id=coupon.public_id)
        return Response(
            qr_png(text=token.token),
            content_type="image/png",
            headers={
                "Cache-Control": "no-store",
                "X-Token-Expires-At": token.expires_at.isoformat(),
                "X-Coupon-Code": coupon.display_code,
                "X-Refresh-After-Seconds": str(TOKEN_REFRESH_AFTER_SECONDS),
            },
        )


# --- Merchant: itself and its staff ----------------------------------------------------------


class MerchantMeApi(APIView):
    class MerchantMembershipSerializer(serializers.Serializer):
        merchant = MerchantOutput()
        role = serializers.ChoiceField(choices=MerchantStaff.Role.choices)

    @extend_schema(responses=MerchantMembershipSerializer, operation_id="merchant_retrieve")
    def get(self, request: Request) -> Response:
        staff = selectors.staff_for_user(user=request.user, require_approved=False)
        return Response({"merchant": MerchantOutput(staff.merchant).data, "role": staff.role})


class StaffListApi(APIView):
    class StaffAddInputSerializer(serializers.Serializer):
        user = serializers.UUIDField(help_text="The person's public id.")
        role = serializers.ChoiceField(choices=MerchantStaff.Role.choices)

    @extend_schema(responses=StaffOutput(many=True), operation_id="merchant_staff_list")
    def get(self, request: Request) -> Response:
        staff = _staff(request, owner_only=True)
        paginator = StaffPagination()
        page = paginator.paginate_queryset(selectors.staff_list(merchant=staff.merchant), request, view=self)
        return paginator.get_paginated_response(StaffOutput(page, many=True).data)

    @extend_schema(
        request=StaffAddInputSerializer, responses={201: StaffOutput}, operation_id="merchant_staff_create"
    )
    def post(self, request: Request) -> Response:
        staff = _staff(request, owner_only=True)
        data = self.StaffAddInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = services.staff_add(
            merchant=staff.merchant,
            user_public_id=data.validated_data["user"],
            role=data.validated_data["role"],
        )
        return Response(StaffOutput(member).data, status=status.HTTP_201_CREATED)


class StaffDetailApi(APIView):
    class StaffRoleInputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=MerchantStaff.Role.choices)

    def _member(self, request: Request, staff_id) -> MerchantStaff:
        staff = _staff(request, owner_only=True)
        return get_object_or_404(selectors.staff_list(merchant=staff.merchant), public_id=staff_id)

    @extend_schema(
        request=StaffRoleInputSerializer, responses=StaffOutput, operation_id="merchant_staff_update"
    )
    def patch(self, request: Request, staff_id) -> Response:
        member = self._member(request, staff_id)
        data = self.StaffRoleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = services.staff_change_role(staff=member, role=data.validated_data["role"])
        return Response(StaffOutput(member).data)

    @extend_schema(responses={204: None}, operation_id="merchant_staff_destroy")
    def delete(self, request: Request, staff_id) -> Response:
        services.staff_remove(staff=self._member(request, staff_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Merchant: offers -----------------------------------------------------------------------


class OfferInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=80)
    description = serializers.CharField(max_length=2000, allow_blank=True, default="")
    category = serializers.ChoiceField(choices=MerchantCategory.choices)
    price_coins = serializers.IntegerField(min_value=1, max_value=1_000_000)
    total_stock = serializers.IntegerField(min_value=0, max_value=10_000_000)
    limit_per_person = serializers.IntegerField(min_value=1, max_value=1000, default=1)
    sale_starts_at = serializers.DateTimeField()
    sale_ends_at = serializers.DateTimeField()
    coupon_valid_days = serializers.IntegerField(min_value=1, max_value=366, default=30)
    districts = DistrictCodeField(many=True, required=False, default=list)
    refunds_on_expiry = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        starts, ends = attrs.get("sale_starts_at"), attrs.get("sale_ends_at")
        if starts and ends and ends <= starts:
            raise serializers.ValidationError({"sale_ends_at": [_("The sale must end after it starts.")]})
        return attrs


def _my_offer(request: Request, offer_id) -> Offer:
    staff = _staff(request, owner_only=True)
    return get_object_or_404(selectors.offers_of_merchant(merchant=staff.merchant), public_id=offer_id)


class OfferListApi(APIView):
    class OfferFilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Offer.Status.choices, required=False)

    @extend_schema(
        parameters=[OfferFilterSerializer],
        responses=OfferOutput(many=True),
        operation_id="merchant_offers_list",
    )
    def get(self, request: Request) -> Response:
        staff = _staff(request, owner_only=True)
        filters = self.OfferFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        offers = selectors.offers_of_merchant(merchant=staff.merchant)
        if "status" in filters.validated_data:
            offers = offers.filter(status=filters.validated_data["status"])
        paginator = OfferCursorPagination()
        page = paginator.paginate_queryset(offers, request, view=self)
        return paginator.get_paginated_response(OfferOutput(page, many=True).data)

    @extend_schema(
        request=OfferInputSerializer, responses={201: OfferOutput}, operation_id="merchant_offers_create"
    )
    def post(self, request: Request) -> Response:
        staff = _staff(request, owner_only=True)
        data = OfferInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        offer = services.offer_create(merchant=staff.merchant, **data.validated_data)
        return Response(OfferOutput(offer).data, status=status.HTTP_201_CREATED)


class OfferDetailApi(APIView):
    @extend_schema(responses=OfferOutput, operation_id="merchant_offers_retrieve")
    def get(self, request: Request, offer_id) -> Response:
        return Response(OfferOutput(_my_offer(request, offer_id)).data)

    @extend_schema(
        request=OfferInputSerializer(partial=True),
        responses=OfferOutput,
        operation_id="merchant_offers_update",
    )
    def patch(self, request: Request, offer_id) -> Response:
        offer = _my_offer(request, offer_id)
        data = OfferInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        offer = services.offer_update(offer=offer, data=data.validated_data)
        return Response(OfferOutput(offer).data)


class OfferImageApi(APIView):
    class OfferImageInputSerializer(serializers.Serializer):
        image = serializers.FileField(help_text="JPEG, PNG or WebP, at most 5 MB and 24 megapixels.")

    @extend_schema(
        request={"multipart/form-data": OfferImageInputSerializer},
        responses=OfferOutput,
        operation_id="merchant_offers_image",
    )
    def put(self, request: Request, offer_id) -> Response:
        offer = _my_offer(request, offer_id)
        data = self.OfferImageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        offer = services.offer_image_set(offer=offer, upload=data.validated_data["image"])
        return Response(OfferOutput(offer).data)


def _offer_action(service, operation_id: str):
    class OfferActionApi(APIView):
        @extend_schema(request=None, responses=OfferOutput, operation_id=operation_id)
        def post(self, request: Request, offer_id) -> Response:
            offer = service(offer=_my_offer(request, offer_id))
            return Response(OfferOutput(offer).data)

    OfferActionApi.__name__ = OfferActionApi.__qualname__ = f"Offer{operation_id.title().replace('_', '')}Api"
    return OfferActionApi


OfferSubmitApi = _offer_action(services.offer_submit, "merchant_offers_submit")
OfferPauseApi = _offer_action(services.offer_pause, "merchant_offers_pause")
OfferResumeApi = _offer_action(services.offer_resume, "merchant_offers_resume")
OfferEndApi = _offer_action(services.offer_end, "merchant_offers_end")


# --- Merchant: coupons and verification ------------------------------------------------------


class MerchantCouponListApi(APIView):
    class MerchantCouponFilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Coupon.Status.choices, required=False)
        offer = serializers.UUIDField(required=False)

    @extend_schema(
        parameters=[MerchantCouponFilterSerializer],
        responses=MerchantCouponOutput(many=True),
        operation_id="merchant_coupons_list",
    )
    def get(self, request: Request) -> Response:
        staff = _staff(request, owner_only=True)
        filters = self.MerchantCouponFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        coupons = selectors.coupons_of_merchant(merchant=staff.merchant)
        if "status" in filters.validated_data:
            coupons = selectors.coupons_with_status(coupons, filters.validated_data["status"])
        if "offer" in filters.validated_data:
            coupons = coupons.filter(offer__public_id=filters.validated_data["offer"])
        paginator = CouponCursorPagination()
        page = paginator.paginate_queryset(coupons, request, view=self)
        return paginator.get_paginated_response(MerchantCouponOutput(page, many=True).data)


class VerificationApi(APIView):
    throttle_classes = [VerifyThrottle]

    class VerificationInputSerializer(serializers.Serializer):
        token = serializers.CharField(required=False, max_length=200, help_text="Scanned from the QR code.")
        code = serializers.CharField(required=False, max_length=32, help_text="Typed by the clerk.")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if bool(attrs.get("token")) == bool(attrs.get("code")):
                raise serializers.ValidationError(_("Send either the scanned token or the typed code."))
            return attrs

    @extend_schema(
        request=VerificationInputSerializer,
        responses=MerchantCouponOutput,
        operation_id="merchant_verifications_create",
    )
    def post(self, request: Request) -> Response:
        staff = _staff(request)
        data = self.VerificationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        coupon = services.coupon_verify(staff=staff, **data.validated_data)
        return Response(MerchantCouponOutput(coupon).data)


# --- Merchant: reports and statements -----------------------------------------------------------


class ReportFilterSerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)


class OfferReportApi(APIView):
    @extend_schema(
        parameters=[ReportFilterSerializer],
        responses=OfferReportOutput(many=True),
        operation_id="merchant_reports_offers",
    )
    def get(self, request: Request) -> Response:
        staff = _staff(request, owner_only=True)
        filters = ReportFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response(selectors.offer_report(merchant=staff.merchant, **filters.validated_data))


class OfferReportCsvApi(JsonErrorsMixin, APIView):
    renderer_classes = [CSVRenderer, JSONRenderer]

    @extend_schema(
        parameters=[ReportFilterSerializer],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)},
        operation_id="merchant_reports_offers_csv",
    )
    def get(self, request: Request) -> Response:
        staff = _staff(request, owner_only=True)
        filters = ReportFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = selectors.offer_report(merchant=staff.merchant, **filters.validated_data)
        return Response(
            csv_bytes(rows, REPORT_COLUMNS),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="offers-report.csv"'},
        )


def _month(text: str) -> selectors.Month:
    try:
        return selectors.Month.parse(text)
    except ValueError:
        raise serializers.ValidationError({"month": [_("Give the month as YYYY-MM.")]}) from None


class MerchantStatementApi(APIView):
    @extend_schema(responses=StatementOutput, operation_id="merchant_statements_retrieve")
    def get(self, request: Request, month: str) -> Response:
        staff = _staff(request, owner_only=True)
        period = _month(month)
        rows = selectors.monthly_statements(month=period, merchant_ids=[staff.merchant_id])
        if rows:
            return Response(rows[0])
        merchant = staff.merchant
        return Response(
            {
                "month": str(period),
                "merchant_id": str(merchant.public_id),
                "merchant_name": merchant.name,
                "licence_number": merchant.licence_number,
                "coupons_redeemed": 0,
                "coins_redeemed": 0,
                "coupons_refunded": 0,
                "coins_refunded": 0,
                "coins_cleared": 0,
            }
        )


class PlatformStatementsApi(JsonErrorsMixin, APIView):
    """The platform's monthly statement of every merchant, to settle with them (operators only)."""

    permission_classes = [IsAdminUser]
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        responses={
            (200, "application/json"): StatementOutput(many=True),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR),
        },
        operation_id="platform_merchant_statements",
    )
    def get(self, request: Request, month: str) -> Response:
        rows = selectors.monthly_statements(month=_month(month))
        if request.accepted_renderer.format == "csv":
            return Response(
                csv_bytes(rows, STATEMENT_COLUMNS),
                content_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="merchant-statements-{month}.csv"'},
            )
        return Response(rows)
