"""Merchant staff (the merchant console's API): the merchant, its staff, offers, coupons,
verification at the counter, reports and statements. Objects are looked up inside the caller's
merchant only, so another merchant's offer or coupon is simply not found."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import dates
from core.api.renderers import CSVRenderer, JsonErrorsMixin, JSONRenderer
from core.api.serializers import QuerySerializer
from merchants import selectors, services
from merchants.apis.common import (
    CouponCursorPagination,
    OfferCursorPagination,
    StaffPagination,
    VerifyThrottle,
    month_of,
    staff_of_request,
)
from merchants.apis.serializers import (
    REPORT_COLUMNS,
    DistrictCodeField,
    MerchantCouponOutput,
    MerchantOutput,
    OfferOutput,
    OfferReportOutput,
    StaffOutput,
    StatementOutput,
)
from merchants.exports import csv_bytes
from merchants.models import OFFER_NUMBER_BOUNDS, Coupon, MerchantCategory, MerchantStaff, Offer

# --- Merchant: itself and its staff ----------------------------------------------------------


class MerchantMeApi(APIView):
    @extend_schema_serializer(
        component_name="MerchantMeMerchantMembership"
    )  # the name the schema always gave it
    class MerchantMembershipOutput(serializers.Serializer):
        merchant = MerchantOutput()
        role = serializers.ChoiceField(choices=MerchantStaff.Role.choices)

    @extend_schema(responses=MerchantMembershipOutput, operation_id="merchant_retrieve")
    def get(self, request: Request) -> Response:
        staff = selectors.staff_for_user(user=request.user, require_approved=False)
        return Response({"merchant": MerchantOutput(staff.merchant).data, "role": staff.role})


class StaffListApi(APIView):
    # Declared so the OpenAPI schema documents the page envelope the view returns.
    pagination_class = StaffPagination

    class StaffAddInput(serializers.Serializer):
        user = serializers.UUIDField(help_text="The person's public id.")
        role = serializers.ChoiceField(choices=MerchantStaff.Role.choices)

    @extend_schema(responses=StaffOutput(many=True), operation_id="merchant_staff_list")
    def get(self, request: Request) -> Response:
        staff = staff_of_request(request, owner_only=True)
        paginator = StaffPagination()
        page = paginator.paginate_queryset(selectors.staff_list(merchant=staff.merchant), request, view=self)
        return paginator.get_paginated_response(StaffOutput(page, many=True).data)

    @extend_schema(request=StaffAddInput, responses={201: StaffOutput}, operation_id="merchant_staff_create")
    def post(self, request: Request) -> Response:
        staff = staff_of_request(request, owner_only=True)
        data = self.StaffAddInput(data=request.data)
        data.is_valid(raise_exception=True)
        member = services.staff_add(
            merchant=staff.merchant,
            user_public_id=data.validated_data["user"],
            role=data.validated_data["role"],
        )
        return Response(StaffOutput(member).data, status=status.HTTP_201_CREATED)


class StaffDetailApi(APIView):
    class StaffRoleInput(serializers.Serializer):
        role = serializers.ChoiceField(choices=MerchantStaff.Role.choices)

    def _member(self, request: Request, staff_id) -> MerchantStaff:
        staff = staff_of_request(request, owner_only=True)
        return get_object_or_404(selectors.staff_list(merchant=staff.merchant), public_id=staff_id)

    @extend_schema(request=StaffRoleInput, responses=StaffOutput, operation_id="merchant_staff_update")
    def patch(self, request: Request, staff_id) -> Response:
        member = self._member(request, staff_id)
        # A PATCH names only what it changes (the schema says so): without a role, nothing changes.
        data = self.StaffRoleInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if "role" in data.validated_data:
            member = services.staff_change_role(staff=member, role=data.validated_data["role"])
        return Response(StaffOutput(member).data)

    @extend_schema(responses={204: None}, operation_id="merchant_staff_destroy")
    def delete(self, request: Request, staff_id) -> Response:
        services.staff_remove(staff=self._member(request, staff_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Merchant: offers -----------------------------------------------------------------------


def _bounded_number(name: str, **kwargs: Any) -> serializers.IntegerField:
    lowest, highest = OFFER_NUMBER_BOUNDS[name]
    return serializers.IntegerField(min_value=lowest, max_value=highest, **kwargs)


class OfferInput(serializers.Serializer):
    title = serializers.CharField(max_length=80)
    description = serializers.CharField(max_length=2000, allow_blank=True, default="")
    category = serializers.ChoiceField(choices=MerchantCategory.choices)
    price_coins = _bounded_number("price_coins")
    total_stock = _bounded_number("total_stock")
    limit_per_person = _bounded_number("limit_per_person", default=1)
    sale_starts_at = dates.DateTimeField()
    sale_ends_at = dates.DateTimeField()
    coupon_valid_days = _bounded_number("coupon_valid_days", default=30)
    districts = DistrictCodeField(many=True, required=False, default=list)
    refunds_on_expiry = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        starts, ends = attrs.get("sale_starts_at"), attrs.get("sale_ends_at")
        if starts and ends and ends <= starts:
            raise serializers.ValidationError({"sale_ends_at": [_("The sale must end after it starts.")]})
        return attrs


def _my_offer(request: Request, offer_id) -> Offer:
    staff = staff_of_request(request, owner_only=True)
    return get_object_or_404(selectors.offers_of_merchant(merchant=staff.merchant), public_id=offer_id)


class OfferListApi(APIView):
    # Declared so the OpenAPI schema documents the page envelope the view returns.
    pagination_class = OfferCursorPagination

    class OfferQuery(QuerySerializer):
        status = serializers.ChoiceField(choices=Offer.Status.choices, required=False)

    @extend_schema(
        parameters=[OfferQuery],
        responses=OfferOutput(many=True),
        operation_id="merchant_offers_list",
    )
    def get(self, request: Request) -> Response:
        staff = staff_of_request(request, owner_only=True)
        filters = self.OfferQuery(data=request.query_params)
        filters.is_valid(raise_exception=True)
        offers = selectors.offers_of_merchant(
            merchant=staff.merchant, status=filters.validated_data.get("status")
        )
        paginator = OfferCursorPagination()
        page = paginator.paginate_queryset(offers, request, view=self)
        return paginator.get_paginated_response(OfferOutput(page, many=True).data)

    @extend_schema(request=OfferInput, responses={201: OfferOutput}, operation_id="merchant_offers_create")
    def post(self, request: Request) -> Response:
        staff = staff_of_request(request, owner_only=True)
        data = OfferInput(data=request.data)
        data.is_valid(raise_exception=True)
        offer = services.offer_create(merchant=staff.merchant, **data.validated_data)
        return Response(OfferOutput(offer).data, status=status.HTTP_201_CREATED)


class OfferDetailApi(APIView):
    @extend_schema(responses=OfferOutput, operation_id="merchant_offers_retrieve")
    def get(self, request: Request, offer_id) -> Response:
        return Response(OfferOutput(_my_offer(request, offer_id)).data)

    @extend_schema(
        request=OfferInput(partial=True),
        responses=OfferOutput,
        operation_id="merchant_offers_update",
    )
    def patch(self, request: Request, offer_id) -> Response:
        offer = _my_offer(request, offer_id)
        data = OfferInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        offer = services.offer_update(offer=offer, data=data.validated_data)
        return Response(OfferOutput(offer).data)


class OfferImageApi(APIView):
    parser_classes = [MultiPartParser]

    class OfferImageInput(serializers.Serializer):
        image = serializers.FileField(help_text="JPEG, PNG or WebP, at most 5 MB and 24 megapixels.")

    @extend_schema(
        request={"multipart/form-data": OfferImageInput},
        responses=OfferOutput,
        operation_id="merchant_offers_image",
    )
    def put(self, request: Request, offer_id) -> Response:
        offer = _my_offer(request, offer_id)
        data = self.OfferImageInput(data=request.data)
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
    # Declared so the OpenAPI schema documents the page envelope the view returns.
    pagination_class = CouponCursorPagination

    class MerchantCouponQuery(QuerySerializer):
        status = serializers.ChoiceField(choices=Coupon.Status.choices, required=False)
        offer = serializers.UUIDField(required=False)

    @extend_schema(
        parameters=[MerchantCouponQuery],
        responses=MerchantCouponOutput(many=True),
        operation_id="merchant_coupons_list",
    )
    def get(self, request: Request) -> Response:
        staff = staff_of_request(request, owner_only=True)
        filters = self.MerchantCouponQuery(data=request.query_params)
        filters.is_valid(raise_exception=True)
        coupons = selectors.coupons_of_merchant(
            merchant=staff.merchant,
            status=filters.validated_data.get("status"),
            offer_public_id=filters.validated_data.get("offer"),
        )
        paginator = CouponCursorPagination()
        page = paginator.paginate_queryset(coupons, request, view=self)
        return paginator.get_paginated_response(MerchantCouponOutput(page, many=True).data)


class VerificationApi(APIView):
    # The general limits as on every view, and the clerk's verification tries.
    throttle_classes = [*APIView.throttle_classes, VerifyThrottle]

    class VerificationInput(serializers.Serializer):
        token = serializers.CharField(required=False, max_length=200, help_text="Scanned from the QR code.")
        code = serializers.CharField(required=False, max_length=32, help_text="Typed by the clerk.")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if bool(attrs.get("token")) == bool(attrs.get("code")):
                raise serializers.ValidationError(_("Send either the scanned token or the typed code."))
            return attrs

    @extend_schema(
        request=VerificationInput,
        responses=MerchantCouponOutput,
        operation_id="merchant_verifications_create",
    )
    def post(self, request: Request) -> Response:
        staff = staff_of_request(request)
        data = self.VerificationInput(data=request.data)
        data.is_valid(raise_exception=True)
        coupon = services.coupon_verify(staff=staff, **data.validated_data)
        return Response(MerchantCouponOutput(coupon).data)


# --- Merchant: reports and statements -----------------------------------------------------------


class ReportQuery(QuerySerializer):
    date_from = dates.DateField(required=False)
    date_to = dates.DateField(required=False)


class OfferReportApi(APIView):
    @extend_schema(
        parameters=[ReportQuery],
        responses=OfferReportOutput(many=True),
        operation_id="merchant_reports_offers",
    )
    def get(self, request: Request) -> Response:
        staff = staff_of_request(request, owner_only=True)
        filters = ReportQuery(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response(selectors.offer_report(merchant=staff.merchant, **filters.validated_data))


class OfferReportCsvApi(JsonErrorsMixin, APIView):
    renderer_classes = [CSVRenderer, JSONRenderer]

    @extend_schema(
        parameters=[ReportQuery],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)},
        operation_id="merchant_reports_offers_csv",
    )
    def get(self, request: Request) -> Response:
        staff = staff_of_request(request, owner_only=True)
        filters = ReportQuery(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = selectors.offer_report(merchant=staff.merchant, **filters.validated_data)
        return Response(
            csv_bytes(rows, REPORT_COLUMNS),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="offers-report.csv"'},
        )


class MerchantStatementApi(APIView):
    @extend_schema(responses=StatementOutput, operation_id="merchant_statements_retrieve")
    def get(self, request: Request, month: str) -> Response:
        staff = staff_of_request(request, owner_only=True)
        period = month_of(month)
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
