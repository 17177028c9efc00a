"""Citizens: merchant applications, the catalog, redemption and their coupons."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import ApplicationError
from core.api.idempotency import IdempotentWrite
from core.api.renderers import PNGFileMixin
from core.api.serializers import QuerySerializer
from merchants import errors, selectors, services
from merchants.apis.common import CouponCursorPagination
from merchants.apis.serializers import (
    CatalogOfferOutput,
    CouponOutput,
    DistrictCodeField,
    MerchantOutput,
    coupon_output,
)
from merchants.coupon_tokens import TOKEN_REFRESH_AFTER_SECONDS, coupon_token_make, qr_png
from merchants.models import Coupon, MerchantCategory

# --- Citizens: merchant application ------------------------------------------------------------


class MerchantApplyApi(APIView):
    class MerchantApplicationInput(serializers.Serializer):
        name = serializers.CharField(max_length=80)
        category = serializers.ChoiceField(choices=MerchantCategory.choices)
        district = DistrictCodeField()
        licence_number = serializers.RegexField(r"^[0-9A-Za-z]{8,32}$", max_length=32)
        contact_name = serializers.CharField(max_length=40)
        contact_phone = serializers.RegexField(r"^\+?[0-9 -]{6,20}$", max_length=20)
        address = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    @extend_schema(
        request=MerchantApplicationInput,
        responses={201: MerchantOutput},
        operation_id="merchant_apply",
    )
    def post(self, request: Request) -> Response:
        data = self.MerchantApplicationInput(data=request.data)
        data.is_valid(raise_exception=True)
        merchant = services.merchant_apply(user=request.user, **data.validated_data)
        return Response(MerchantOutput(merchant).data, status=status.HTTP_201_CREATED)


# --- Citizens: catalog and redemption --------------------------------------------------------


class CatalogListApi(APIView):
    class CatalogQuery(QuerySerializer):
        category = serializers.ChoiceField(choices=MerchantCategory.choices, required=False)
        district = serializers.SlugField(required=False, max_length=32)
        affordable = serializers.BooleanField(required=False, default=False)
        sort = serializers.ChoiceField(choices=list(selectors.CATALOG_SORTS), default="newest")
        page = serializers.IntegerField(min_value=1, default=1)
        page_size = serializers.IntegerField(min_value=1, max_value=50, default=20)

    @extend_schema_serializer(component_name="CatalogListCatalogPage")  # the name the schema always gave it
    class CatalogPageOutput(serializers.Serializer):
        count = serializers.IntegerField()
        page = serializers.IntegerField()
        next_page = serializers.IntegerField(allow_null=True)
        wallet_balance = serializers.IntegerField(allow_null=True)
        results = CatalogOfferOutput(many=True)

    @extend_schema(
        parameters=[CatalogQuery],
        responses=CatalogPageOutput,
        operation_id="catalog_offers_list",
    )
    def get(self, request: Request) -> Response:
        filters = self.CatalogQuery(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        balance = selectors.wallet_balance(user=request.user) if params["affordable"] else None
        offers = services.catalog_offers(
            category=params.get("category"),
            district=params.get("district"),
            sort=params["sort"],
            max_price=balance,
        )
        page, size = params["page"], params["page_size"]
        window = selectors.catalog_stock_live(offers[(page - 1) * size : page * size])
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


class OfferRedeemApi(IdempotentWrite, APIView):
    # Coins move: the Idempotency-Key is required (IdempotentWrite); a retry with the same key
    # returns the same coupon. A redemption of an offer flagged sold out is answered before it gets
    # here, by merchants.middleware.SoldOutRedemptionMiddleware; a redemption it let through brings
    # the session it read to sign-in.
    @extend_schema(
        request=None,
        responses={201: CouponOutput, 200: CouponOutput},
        operation_id="catalog_offers_redeem",
    )
    def post(self, request: Request, offer_id) -> Response:
        redemption = services.offer_redeem(
            user=request.user, offer_public_id=offer_id, idempotency_key=request.idempotency_key
        )
        return Response(
            coupon_output(redemption.coupon),
            status=status.HTTP_201_CREATED if redemption.created else status.HTTP_200_OK,
            headers={} if redemption.created else {"Idempotent-Replayed": "true"},
        )


# --- Citizens: their coupons ------------------------------------------------------------------


class CouponListApi(APIView):
    # Declared so the OpenAPI schema documents the page envelope the view returns.
    pagination_class = CouponCursorPagination

    class CouponQuery(QuerySerializer):
        status = serializers.ChoiceField(choices=Coupon.Status.choices, required=False)

    @extend_schema(parameters=[CouponQuery], responses=CouponOutput(many=True), operation_id="coupons_list")
    def get(self, request: Request) -> Response:
        filters = self.CouponQuery(data=request.query_params)
        filters.is_valid(raise_exception=True)
        coupons = selectors.coupons_of_person(user=request.user, status=filters.validated_data.get("status"))
        paginator = CouponCursorPagination()
        page = paginator.paginate_queryset(coupons, request, view=self)
        return paginator.get_paginated_response(CouponOutput(page, many=True).data)


def _my_coupon(request: Request, coupon_id) -> Coupon:
    return get_object_or_404(selectors.coupons_of_person(user=request.user), public_id=coupon_id)


class CouponDetailApi(APIView):
    @extend_schema(responses=CouponOutput, operation_id="coupons_retrieve")
    def get(self, request: Request, coupon_id) -> Response:
        return Response(coupon_output(_my_coupon(request, coupon_id)))


def _usable_coupon(request: Request, coupon_id) -> Coupon:
    coupon = _my_coupon(request, coupon_id)
    if coupon.current_status != Coupon.Status.ISSUED:
        raise ApplicationError(errors.COUPON_NOT_USABLE, fields={"status": coupon.current_status})
    return coupon


class CouponTokenApi(APIView):
    @extend_schema_serializer(component_name="CouponTokenCouponToken")  # the name the schema always gave it
    class CouponTokenOutput(serializers.Serializer):
        token = serializers.CharField(help_text="What the QR code carries.")
        code = serializers.CharField(help_text="The code in text, for typing at the counter.")
        expires_at = serializers.DateTimeField()
        refresh_after_seconds = serializers.IntegerField()

    @extend_schema(responses=CouponTokenOutput, operation_id="coupons_token")
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


class CouponQrApi(PNGFileMixin, APIView):
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
