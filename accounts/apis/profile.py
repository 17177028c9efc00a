"""The signed-in person's profile, avatar, identities and merge."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import errors, selectors, services
from accounts.apis.common import (
    OPEN_WITHOUT_AGREEMENTS,
    ProfileOutput,
    profile_data,
)
from accounts.masking import mask_identifier
from accounts.throttles import MergeThrottle
from core.api.errors import ApplicationError
from core.api.views import JsonApiView


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


class JoinedIdentitiesSeenApi(JsonApiView):
    """The person has seen these joins (`joined_identities` of the profile): stop showing them."""

    permission_classes = OPEN_WITHOUT_AGREEMENTS

    class SeenInput(serializers.Serializer):
        ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=50)

    @extend_schema(request=SeenInput, responses=ProfileOutput)
    def post(self, request: Request) -> Response:
        data = self.SeenInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.identity_joins_seen(user=request.user, join_ids=data.validated_data["ids"])
        return Response(profile_data(request, request.user))


class IdentityApi(JsonApiView):
    permission_classes = OPEN_WITHOUT_AGREEMENTS

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, identity_id: int) -> Response:
        services.identity_unlink(user=request.user, identity_id=identity_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MergeOutcomeOutput(serializers.Serializer):
    capped_carbon_mg = serializers.IntegerField(
        help_text="Carbon (mg) of both accounts' same days beyond the daily and monthly caps, no longer "
        "credited: each record it came off says so in its receipt."
    )
    capped_days = serializers.IntegerField(help_text="How many days lost carbon to the caps.")
    settled_kept_carbon_mg = serializers.IntegerField(
        help_text="Of the capped carbon, what had already become coins: those coins are kept."
    )
    settled_coins_kept = serializers.BooleanField(help_text="Always true: a merge takes no coins back.")
    groups_left = serializers.IntegerField(
        help_text="How many of the other account's groups it left: one person may be in a limited "
        "number of groups (the groups owned, then administered, then joined earliest were kept)."
    )
    message = serializers.CharField(help_text="The rule in the person's language, to show as it is.")


class MergeOutput(ProfileOutput):
    merge = serializers.SerializerMethodField()

    @extend_schema_field(MergeOutcomeOutput)
    def get_merge(self, user) -> dict:
        return self.context["merge"]


class MergeApi(JsonApiView):
    """Merges the account signed in by `source_session_token` into this one, and closes it.

    The answer is the merged profile and, under `merge`, what the caps took off now that both
    accounts' activities count as one person's (coins already earned are kept).
    """

    permission_classes = OPEN_WITHOUT_AGREEMENTS
    throttle_classes = [MergeThrottle]

    class MergeInput(serializers.Serializer):
        source_session_token = serializers.CharField(max_length=128)

    @extend_schema(request=MergeInput, responses=MergeOutput)
    def post(self, request: Request) -> Response:
        data = self.MergeInput(data=request.data)
        data.is_valid(raise_exception=True)
        source = selectors.user_for_session_token(token=data.validated_data["source_session_token"])
        if source is None:
            raise ApplicationError(errors.MERGE_SOURCE_INVALID)
        merged = services.account_merge(source_user=source, target_user=request.user)
        outcome = {
            "capped_carbon_mg": merged.capped_carbon_mg,
            "capped_days": merged.capped_days,
            "settled_kept_carbon_mg": merged.settled_kept_carbon_mg,
            "settled_coins_kept": True,
            "groups_left": merged.groups_left,
            "message": merge_rule_message(merged),
        }
        return Response(MergeOutput(merged.user, context={"request": request, "merge": outcome}).data)


def merge_rule_message(merged: services.AccountMerge) -> str:
    """The merge's rule for the person, with what it did to their days (and groups)."""
    rule = _merge_caps_message(merged)
    if merged.groups_left:
        rule += " " + str(
            _(
                "One person may be in a limited number of groups: the other account left %(count)s of "
                "its groups (those it owned, administered or joined first were kept)."
            )
            % {"count": merged.groups_left}
        )
    return rule


def _merge_caps_message(merged: services.AccountMerge) -> str:
    if not merged.capped_carbon_mg:
        return str(
            _(
                "Both accounts' activities now count as one person's: the daily and monthly caps apply "
                "to their sum. Nothing went over them. Coins already earned are kept."
            )
        )
    return str(
        _(
            "Both accounts' activities now count as one person's: the daily and monthly caps apply to "
            "their sum. %(grams)s g over the caps on %(days)s day(s) is no longer credited; each record "
            "it came off says so. Coins already earned are kept."
        )
        % {
            "grams": f"{merged.capped_carbon_mg / 1000:,.3f}".rstrip("0").rstrip("."),
            "days": merged.capped_days,
        }
    )
