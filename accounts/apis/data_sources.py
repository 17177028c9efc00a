"""Per-source data authorization: list, grant, revoke, history."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.apis.common import (
    OPEN_WITHOUT_AGREEMENTS,
)
from accounts.models import DataSource, User
from core.api.views import JsonApiView


class DataSourceOutput(serializers.Serializer):
    source = serializers.ChoiceField(choices=DataSource.choices)
    label = serializers.CharField()
    is_authorized = serializers.BooleanField()
    granted_at = serializers.DateTimeField(allow_null=True)


class DataSourceHistoryOutput(serializers.Serializer):
    source = serializers.ChoiceField(choices=DataSource.choices)
    granted_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


def _data_sources(user: User) -> list[dict]:
    active = selectors.data_source_authorizations_active_of(user=user)
    return DataSourceOutput(
        [
            {
                "source": source.value,
                "label": str(source.label),
                "is_authorized": source.value in active,
                "granted_at": active[source.value].granted_at if source.value in active else None,
            }
            for source in DataSource
        ],
        many=True,
    ).data


class DataSourcesApi(JsonApiView):
    """Each data source and whether the person authorizes it."""

    @extend_schema(responses=DataSourceOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(_data_sources(request.user))


class DataSourceHistoryApi(JsonApiView):
    """Every grant and revocation, newest first."""

    @extend_schema(responses=DataSourceHistoryOutput(many=True))
    def get(self, request: Request) -> Response:
        history = selectors.data_source_authorizations_of(user=request.user)
        return Response(DataSourceHistoryOutput(history, many=True).data)


class DataSourceApi(JsonApiView):
    """PUT grants the source, DELETE revokes it (revoking never waits for new terms)."""

    def get_permissions(self):
        if self.request.method == "DELETE":
            return [permission() for permission in OPEN_WITHOUT_AGREEMENTS]
        return super().get_permissions()

    @extend_schema(request=None, responses={200: DataSourceOutput(many=True)})
    def put(self, request: Request, source: str) -> Response:
        services.data_source_authorize(user=request.user, source=source)
        return Response(_data_sources(request.user))

    @extend_schema(request=None, responses={200: DataSourceOutput(many=True)})
    def delete(self, request: Request, source: str) -> Response:
        services.data_source_revoke(user=request.user, source=source)
        return Response(_data_sources(request.user))
