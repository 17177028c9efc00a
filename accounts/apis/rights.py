"""A person's rights: export and erasure."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services
from accounts.apis.common import (
    OPEN_WITHOUT_AGREEMENTS,
)
from core.api.views import JsonApiView


class ExportApi(JsonApiView):
    """Everything held about the person, as one JSON document."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        response = Response(services.account_export(user=request.user))
        response["Content-Disposition"] = 'attachment; filename="carbon-account-export.json"'
        return response


class ErasureApi(JsonApiView):
    """Closes the account and erases the person's data. Send `{"confirm": "ERASE"}`."""

    permission_classes = OPEN_WITHOUT_AGREEMENTS

    class ErasureInput(serializers.Serializer):
        confirm = serializers.ChoiceField(choices=["ERASE"])

    @extend_schema(request=ErasureInput, responses={204: None})
    def post(self, request: Request) -> Response:
        data = self.ErasureInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.account_erase(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
