"""Guests and agreements: the ways in that are ours (bank and WeChat go through allauth)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.apis.common import (
    OPEN_WITHOUT_AGREEMENTS,
    AcceptedAgreementsField,
    AgreementOutput,
    ProfileOutput,
    profile_data,
)
from accounts.models import REQUIRED_AGREEMENT_KINDS, User
from accounts.services import DEVICE_ID_PATTERN
from accounts.throttles import GuestDeviceThrottle, GuestIpThrottle
from core.api.views import JsonApiView

ACCEPTED_HELP = (
    "The versions of the user agreement and the privacy policy shown, as `GET /api/v1/agreements` "
    'gives them: `[{"kind": "user_agreement", "version": …}, {"kind": "privacy_policy", "version": …}]`.'
)
DEPRECATED_VERSION_HELP = "Deprecated: send `accepted` instead (still read when `accepted` is left out)."


class GuestApi(JsonApiView):
    """Opens (or gives back) the guest account of a device and signs it in."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [GuestIpThrottle, GuestDeviceThrottle]

    class GuestInput(serializers.Serializer):
        device_id = serializers.RegexField(
            DEVICE_ID_PATTERN.pattern,
            max_length=128,
            help_text="A random id the app generates once and keeps (16-128 letters, digits, - or _).",
        )
        accepted = AcceptedAgreementsField(required=False, help_text=ACCEPTED_HELP)
        # The first shape released apps sent: one field per kind of agreement.
        user_agreement_version = serializers.CharField(
            max_length=32, required=False, help_text=DEPRECATED_VERSION_HELP
        )
        privacy_policy_version = serializers.CharField(
            max_length=32, required=False, help_text=DEPRECATED_VERSION_HELP
        )

        def validate(self, attrs: dict) -> dict:
            deprecated = {
                kind: attrs.pop(f"{kind}_version")
                for kind in REQUIRED_AGREEMENT_KINDS
                if f"{kind}_version" in attrs
            }
            versions = {**deprecated, **attrs.pop("accepted", {})}
            # The agreements everyone accepts (the pooling consent is given apart, by choice).
            if set(versions) != set(REQUIRED_AGREEMENT_KINDS):
                raise serializers.ValidationError(
                    {"accepted": [_("Send the versions of both the user agreement and the privacy policy.")]}
                )
            return {**attrs, "versions": versions}

    @extend_schema_serializer(
        component_name="GuestGuestInput",  # the name the schema always gave it
        deprecate_fields=["user_agreement_version", "privacy_policy_version"],
    )
    class GuestDocumentedInput(GuestInput):
        """What the schema shows: `accepted` is the shape to send; the old fields are deprecated."""

        accepted = AcceptedAgreementsField(help_text=ACCEPTED_HELP)

    class GuestOutput(serializers.Serializer):
        class SessionMeta(serializers.Serializer):
            session_token = serializers.CharField()

        meta = SessionMeta()
        created = serializers.BooleanField()
        user = ProfileOutput()

    @extend_schema(request=GuestDocumentedInput, responses={200: GuestOutput, 201: GuestOutput})
    def post(self, request: Request) -> Response:
        data = self.GuestInput(data=request.data)
        data.is_valid(raise_exception=True)
        user, created = services.guest_open(**data.validated_data)
        token = services.session_token_issue(user=user)
        return Response(
            {"meta": {"session_token": token}, "created": created, "user": profile_data(request, user)},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class AgreementsCurrentApi(JsonApiView):
    """The user agreement and privacy policy in force (shown before an account exists)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses=AgreementOutput(many=True))
    def get(self, request: Request) -> Response:
        current = sorted(selectors.agreements_current().values(), key=lambda agreement: agreement.kind)
        return Response(AgreementOutput(current, many=True).data)


class MyAgreementsApi(JsonApiView):
    """What the person has accepted and what still waits for them; accept the versions shown."""

    permission_classes = OPEN_WITHOUT_AGREEMENTS

    class AgreementAcceptInput(serializers.Serializer):
        accepted = AcceptedAgreementsField(
            help_text="The versions shown (those `pending` listed), as `[{kind, version}, …]`."
        )

    class MyAgreementsOutput(serializers.Serializer):
        class Acceptance(serializers.Serializer):
            kind = serializers.CharField(source="agreement.kind")
            version = serializers.CharField(source="agreement.version")
            accepted_at = serializers.DateTimeField()

        pending = AgreementOutput(many=True)
        accepted = Acceptance(many=True)

    def _state(self, user: User) -> dict:
        return self.MyAgreementsOutput(
            {
                "pending": selectors.agreements_pending_for(user=user),
                "accepted": selectors.agreement_acceptances_of(user=user),
            }
        ).data

    @extend_schema(responses=MyAgreementsOutput)
    def get(self, request: Request) -> Response:
        return Response(self._state(request.user))

    @extend_schema(request=AgreementAcceptInput, responses=MyAgreementsOutput)
    def post(self, request: Request) -> Response:
        data = self.AgreementAcceptInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.agreements_accept(user=request.user, versions=data.validated_data["accepted"])
        return Response(self._state(request.user))
