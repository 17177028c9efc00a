"""Operators: the monthly statement of every merchant, to settle with them."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.renderers import CSVRenderer, JsonErrorsMixin, JSONRenderer
from merchants import selectors
from merchants.apis.common import month_of
from merchants.apis.serializers import (
    STATEMENT_COLUMNS,
    StatementOutput,
)
from merchants.exports import csv_bytes


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
        rows = selectors.monthly_statements(month=month_of(month))
        if request.accepted_renderer.format == "csv":
            return Response(
                csv_bytes(rows, STATEMENT_COLUMNS),
                content_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="merchant-statements-{month}.csv"'},
            )
        return Response(rows)
