"""The pooling consent: read it with the text in force, grant it, revoke it, and its history."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.apis.common import OPEN_WITHOUT_AGREEMENTS, AgreementOutput
from accounts.models import User
from core.api.views import JsonApiView


class PoolingConsentOutput(serializers.Serializer):
    is_granted = serializers.BooleanField()
    granted_at = serializers.DateTimeField(allow_null=True)
    granted_version = serializers.CharField(
        allow_null=True, help_text="The text version the grant was made under."
    )
    agreement = AgreementOutput(
        allow_null=True, help_text="The pooling text in force (show it before granting)."
    )


class PoolingConsentHistoryOutput(serializers.Serializer):
    version = serializers.CharField(source="agreement.version")
    granted_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class PoolingConsentInput(serializers.Serializer):
    version = serializers.CharField(max_length=32, help_text="The version of the pooling text shown.")


def _consent(user: User) -> dict:
    active = selectors.pooling_consent_active(user=user)
    return PoolingConsentOutput(
        {
            "is_granted": active is not None,
            "granted_at": active.granted_at if active else None,
            "granted_version": active.agreement.version if active else None,
            "agreement": selectors.pooling_agreement_current(),
        }
    ).data


class PoolingConsentApi(JsonApiView):
    """GET the consent and the text in force; PUT grants it (naming the version shown); DELETE revokes
    it for the future (never waits for new terms). Without it, no grams of the person enter a lot."""

    def get_permissions(self):
        if self.request.method == "DELETE":
            return [permission() for permission in OPEN_WITHOUT_AGREEMENTS]
        return super().get_permissions()

    @extend_schema(responses=PoolingConsentOutput, operation_id="pooling_consent_retrieve")
    def get(self, request: Request) -> Response:
        return Response(_consent(request.user))

    @extend_schema(
        request=PoolingConsentInput, responses=PoolingConsentOutput, operation_id="pooling_consent_grant"
    )
    def put(self, request: Request) -> Response:
        data = PoolingConsentInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.pooling_consent_grant(user=request.user, version=data.validated_data["version"])
        return Response(_consent(request.user))

    @extend_schema(request=None, responses={200: PoolingConsentOutput}, operation_id="pooling_consent_revoke")
    def delete(self, request: Request) -> Response:
        services.pooling_consent_revoke(user=request.user)
        return Response(_consent(request.user))


class PoolingConsentHistoryApi(JsonApiView):
    """Every grant and revocation of the pooling consent, newest first."""

    @extend_schema(responses=PoolingConsentHistoryOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(
            PoolingConsentHistoryOutput(selectors.pooling_consents_of(user=request.user), many=True).data
        )
