"""The accounts API: guests, agreements, profile, identities, data sources, friends, rights.

Thin views: validate with the nested input serializer, call one service or selector, answer with
the output serializer. Everything a person reads or changes here is their own (`request.user`);
the only other person a route names is a friend to remove, and only among their own friends.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import errors, selectors, services
from accounts.masking import mask_identifier
from accounts.models import AgreementKind, DataSource, User
from accounts.throttles import GuestDeviceThrottle, GuestIpThrottle, MergeThrottle
from config.api.errors import ApplicationError

# Writes a person can always make, even before accepting new terms: take back a consent,
# unlink an identity, merge, leave, accept the terms themselves.
OPEN_WITHOUT_AGREEMENTS = [IsAuthenticated]


class AgreementOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AgreementKind.choices)
    version = serializers.CharField()
    title = serializers.CharField()
    url = serializers.CharField()
    summary = serializers.CharField()
    effective_at = serializers.DateTimeField()


class ProfileOutput(serializers.Serializer):
    public_id = serializers.UUIDField()
    nickname = serializers.CharField()
    district = serializers.SerializerMethodField()
    avatar_url = serializers.SerializerMethodField()
    is_guest = serializers.BooleanField()
    shows_on_leaderboards = serializers.BooleanField()
    phone_number = serializers.SerializerMethodField(help_text="Bank-verified, masked: 138****5678.")
    id_number = serializers.SerializerMethodField(help_text="Bank-verified, masked: 330***********123X.")
    pending_agreements = serializers.SerializerMethodField()

    def get_district(self, user: User) -> str | None:
        return user.district.code if user.district_id else None

    def get_avatar_url(self, user: User) -> str | None:
        if not user.avatar:
            return None
        request = self.context.get("request")
        return request.build_absolute_uri(user.avatar.url) if request else user.avatar.url

    def _masked(self, user: User) -> dict[str, str]:
        if "_masked" not in self.context:
            self.context["_masked"] = selectors.verified_details_masked(user=user)
        return self.context["_masked"]

    def get_phone_number(self, user: User) -> str:
        return self._masked(user)["phone_number"]

    def get_id_number(self, user: User) -> str:
        return self._masked(user)["id_number"]

    @extend_schema_field(AgreementOutput(many=True))
    def get_pending_agreements(self, user: User) -> list:
        return AgreementOutput(selectors.agreements_pending_for(user=user), many=True).data


def _profile(request: Request, user: User) -> dict:
    return ProfileOutput(user, context={"request": request}).data


# --- Guests and agreements -------------------------------------------------------------


class GuestApi(APIView):
    """Opens (or gives back) the guest account of a device and signs it in."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [GuestIpThrottle, GuestDeviceThrottle]

    class GuestInput(serializers.Serializer):
        device_id = serializers.CharField(max_length=128)
        user_agreement_version = serializers.CharField(max_length=32)
        privacy_policy_version = serializers.CharField(max_length=32)

    class GuestOutput(serializers.Serializer):
        class SessionMeta(serializers.Serializer):
            session_token = serializers.CharField()

        meta = SessionMeta()
        created = serializers.BooleanField()
        user = ProfileOutput()

    @extend_schema(request=GuestInput, responses={200: GuestOutput, 201: GuestOutput})
    def post(self, request: Request) -> Response:
        data = self.GuestInput(data=request.data)
        data.is_valid(raise_exception=True)
        user, created = services.guest_open(**data.validated_data)
        token = services.session_token_issue(user=user)
        return Response(
            {"meta": {"session_token": token}, "created": created, "user": _profile(request, user)},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class AgreementsCurrentApi(APIView):
    """The user agreement and privacy policy in force (shown before an account exists)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses=AgreementOutput(many=True))
    def get(self, request: Request) -> Response:
        current = sorted(selectors.agreements_current().values(), key=lambda agreement: agreement.kind)
        return Response(AgreementOutput(current, many=True).data)


class MyAgreementsApi(APIView):
    """What the person has accepted and what still waits for them; accept the versions shown."""

    permission_classes = OPEN_WITHOUT_AGREEMENTS

    class AgreementAcceptInput(serializers.Serializer):
        class Accepted(serializers.Serializer):
            kind = serializers.ChoiceField(choices=AgreementKind.choices)
            version = serializers.CharField(max_length=32)

        accepted = Accepted(many=True, allow_empty=False)

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
        versions = {item["kind"]: item["version"] for item in data.validated_data["accepted"]}
        services.agreements_accept(user=request.user, versions=versions)
        return Response(self._state(request.user))


# --- Profile ---------------------------------------------------------------------------


class MeApi(APIView):
    """The signed-in person's profile."""

    class ProfileInput(serializers.Serializer):
        nickname = serializers.CharField(max_length=40, required=False, allow_blank=True)
        district = serializers.CharField(max_length=32, required=False, allow_null=True)
        shows_on_leaderboards = serializers.BooleanField(required=False)

    @extend_schema(responses=ProfileOutput)
    def get(self, request: Request) -> Response:
        return Response(_profile(request, request.user))

    @extend_schema(request=ProfileInput, responses=ProfileOutput)
    def patch(self, request: Request) -> Response:
        data = self.ProfileInput(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "district" in changes:
            changes["district_code"] = changes.pop("district")
        user = services.profile_update(user=request.user, **changes)
        return Response(_profile(request, user))


class AvatarApi(APIView):
    """Upload (multipart field `avatar`) or remove the person's picture."""

    parser_classes = [MultiPartParser, FormParser]

    class AvatarInput(serializers.Serializer):
        avatar = serializers.FileField()

    @extend_schema(request={"multipart/form-data": AvatarInput}, responses=ProfileOutput)
    def put(self, request: Request) -> Response:
        data = self.AvatarInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.avatar_set(user=request.user, upload=data.validated_data["avatar"])
        return Response(_profile(request, user))

    @extend_schema(request=None, responses=ProfileOutput)
    def delete(self, request: Request) -> Response:
        return Response(_profile(request, services.avatar_remove(user=request.user)))


# --- Identities and merge --------------------------------------------------------------


class IdentityOutput(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField(help_text="`wechat_miniprogram` or a bank's id.")
    account = serializers.SerializerMethodField(help_text="Masked openid / bank subject.")
    linked_at = serializers.DateTimeField(source="date_joined")
    last_sign_in_at = serializers.DateTimeField(source="last_login")

    def get_account(self, account) -> str:
        return mask_identifier(account.uid)


class IdentitiesApi(APIView):
    """The bank and WeChat identities that sign in to this account."""

    permission_classes = OPEN_WITHOUT_AGREEMENTS

    @extend_schema(responses=IdentityOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(IdentityOutput(selectors.identities_of(user=request.user), many=True).data)


class IdentityApi(APIView):
    permission_classes = OPEN_WITHOUT_AGREEMENTS

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, identity_id: int) -> Response:
        services.identity_unlink(user=request.user, identity_id=identity_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MergeApi(APIView):
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
        return Response(_profile(request, user))


# --- Data sources ----------------------------------------------------------------------


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
    active = {
        authorization.source: authorization
        for authorization in selectors.data_source_authorizations_of(user=user).filter(
            revoked_at__isnull=True
        )
    }
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


class DataSourcesApi(APIView):
    """Each data source and whether the person authorizes it."""

    @extend_schema(responses=DataSourceOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(_data_sources(request.user))


class DataSourceHistoryApi(APIView):
    """Every grant and revocation, newest first."""

    @extend_schema(responses=DataSourceHistoryOutput(many=True))
    def get(self, request: Request) -> Response:
        history = selectors.data_source_authorizations_of(user=request.user)
        return Response(DataSourceHistoryOutput(history, many=True).data)


class DataSourceApi(APIView):
    """PUT grants the source, DELETE revokes it (revoking never waits for new terms)."""

    def get_permissions(self):
        if self.request.method == "DELETE":
            return [permission() for permission in OPEN_WITHOUT_AGREEMENTS]
        return super().get_permissions()

    @extend_schema(request=None, responses=DataSourceOutput(many=True))
    def put(self, request: Request, source: str) -> Response:
        services.data_source_authorize(user=request.user, source=source)
        return Response(_data_sources(request.user))

    @extend_schema(request=None, responses=DataSourceOutput(many=True))
    def delete(self, request: Request, source: str) -> Response:
        services.data_source_revoke(user=request.user, source=source)
        return Response(_data_sources(request.user))


# --- Friends ---------------------------------------------------------------------------


class FriendOutput(serializers.Serializer):
    public_id = serializers.UUIDField()
    nickname = serializers.CharField()


class InviteOutput(serializers.Serializer):
    code = serializers.CharField()
    link = serializers.CharField()


def _invite(invite) -> dict:
    from django.conf import settings

    link = settings.ACCOUNTS_INVITE_LINK_TEMPLATE.format(code=invite.code)
    return InviteOutput({"code": invite.code, "link": link}).data


class MyInviteApi(APIView):
    """The person's invite code and link; POST makes a new one (old links stop working)."""

    @extend_schema(responses=InviteOutput)
    def get(self, request: Request) -> Response:
        return Response(_invite(services.invite_code_get_or_create(user=request.user)))

    @extend_schema(request=None, responses=InviteOutput)
    def post(self, request: Request) -> Response:
        return Response(_invite(services.invite_code_rotate(user=request.user)))


class InvitationApi(APIView):
    """Who invites you (shown before accepting)."""

    @extend_schema(responses=FriendOutput)
    def get(self, request: Request, code: str) -> Response:
        inviter = selectors.inviter_for_code(code=code)
        if inviter is None:
            raise ApplicationError(errors.INVITE_CODE_UNKNOWN)
        return Response(FriendOutput(inviter).data)


class FriendsApi(APIView):
    """The person's friends; POST accepts an invitation by its code."""

    class InvitationAcceptInput(serializers.Serializer):
        code = serializers.CharField(max_length=16)

    @extend_schema(responses=FriendOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(FriendOutput(selectors.friends_of(user=request.user), many=True).data)

    @extend_schema(request=InvitationAcceptInput, responses={201: FriendOutput})
    def post(self, request: Request) -> Response:
        data = self.InvitationAcceptInput(data=request.data)
        data.is_valid(raise_exception=True)
        friend = services.friendship_accept(user=request.user, code=data.validated_data["code"])
        return Response(FriendOutput(friend).data, status=status.HTTP_201_CREATED)


class FriendApi(APIView):
    permission_classes = OPEN_WITHOUT_AGREEMENTS

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, public_id) -> Response:
        services.friendship_remove(user=request.user, friend_public_id=public_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- A person's rights -----------------------------------------------------------------


class ExportApi(APIView):
    """Everything held about the person, as one JSON document."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        response = Response(services.account_export(user=request.user))
        response["Content-Disposition"] = 'attachment; filename="carbon-account-export.json"'
        return response


class ErasureApi(APIView):
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
