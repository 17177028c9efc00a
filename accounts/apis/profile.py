"""The signed-in person's profile, avatar, identities and merge."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import errors, selectors, services
from accounts.apis.common import (
    OPEN_WITHOUT_AGREEMENTS,
    JsonApiView,
    ProfileOutput,
    profile_data,
)
from accounts.masking import mask_identifier
from accounts.throttles import MergeThrottle
from config.api.errors import ApplicationError


class MeApi(JsonApiView):
    """The signed-in person's profile."""

    class ProfileInput(serializers.Serializer):
        nickname = serializers.CharField(max_length=40, required=False, allow_blank=True)
        district = serializers.CharField(max_length=32, required=False, allow_null=True)
        shows_on_leaderboards = serializers.BooleanField(required=False)

    @extend_schema(responses=ProfileOutput)
    def get(self, request: Request) -> Response:
        return Response(profile_data(request, request.user))

    @extend_schema(request=ProfileInput, responses=ProfileOutput)
    def patch(self, request: Request) -> Response:
        data = self.ProfileInput(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "district" in changes:
            changes["district_code"] = changes.pop("district")
        user = services.profile_update(user=request.user, **changes)
        return Response(profile_data(request, user))


class AvatarApi(APIView):
    """Upload (multipart field `avatar`) or remove the person's picture."""

    parser_classes = [MultiPartParser]

    class AvatarInput(serializers.Serializer):
        avatar = serializers.FileField()

    @extend_schema(request={"multipart/form-data": AvatarInput}, responses=ProfileOutput)
    def put(self, request: Request) -> Response:
        data = self.AvatarInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.avatar_set(user=request.user, upload=data.validated_data["avatar"])
        return Response(profile_data(request, user))

    @extend_schema(request=None, responses={200: ProfileOutput})
    def delete(self, request: Request) -> Response:
        return Response(profile_data(request, services.avatar_remove(user=request.user)))


# --- Identities and merge --------------------------------------------------------------


class IdentityOutput(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField(help_text="`wechat_miniprogram` or a bank's id.")
    account = serializers.SerializerMethodField(help_text="Masked openid / bank subject.")
    linked_at = serializers.DateTimeField(source="date_joined")
    last_sign_in_at = serializers.DateTimeField(source="last_login")

    def get_account(self, account) -> str:
        return mask_identifier(account.uid)


class IdentitiesApi(JsonApiView):
    """The bank and WeChat identities that sign in to this account."""

    permission_classes = OPEN_WITHOUT_AGREEMENTS

    @extend_schema(responses=IdentityOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(IdentityOutput(selectors.identities_of(user=request.user), many=True).data)


class IdentityApi(JsonApiView):
    permission_classes = OPEN_WITHOUT_AGREEMENTS

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, identity_id: int) -> Response:
        services.identity_unlink(user=request.user, identity_id=identity_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MergeApi(JsonApiView):
    """Merges the account signed in by `source_session_token` into this one, and closes it."""

    permission_classes = OPEN_WITHOUT_AGREEMENTS
    throttle_classes = [MergeThrottle]

    class MergeInput(serializers.Serializer):
        source_session_token = serializers.CharField(max_length=128)

    @extend_schema(request=MergeInput, responses=ProfileOutput)
    def post(self, request: Request) -> Response:
        data = self.MergeInput(data=request.data)
        data.is_valid(raise_exception=True)
        source = selectors.user_for_session_token(token=data.validated_data["source_session_token"])
        if source is None:
            raise ApplicationError(errors.MERGE_SOURCE_INVALID)
        user = services.account_merge(source_user=source, target_user=request.user)
        return Response(profile_data(request, user))
