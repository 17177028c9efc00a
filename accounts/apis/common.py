"""Serializers and helpers shared by the accounts API modules."""

from __future__ import annotations

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request

from accounts import selectors
from accounts.models import AgreementKind, User

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


@extend_schema_serializer(component_name="AcceptedAgreement")
class AcceptedAgreementInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AgreementKind.choices)
    version = serializers.CharField(max_length=32)


class AcceptedAgreementsField(serializers.ListField):
    """The agreement versions a person accepted, in the one shape every request sends them: a list
    of `{"kind", "version"}`, as `GET /api/v1/agreements` shows them. Validated into kind → version."""

    child = AcceptedAgreementInput()

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("min_length", 1)
        kwargs.setdefault("max_length", len(AgreementKind.values))
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> dict[str, str]:
        accepted = super().to_internal_value(data)
        versions = {item["kind"]: item["version"] for item in accepted}
        if len(versions) != len(accepted):
            raise serializers.ValidationError(_("Send each kind of agreement once."))
        return versions


class JoinedIdentityOutput(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField(help_text="The bank's id, as in `/api/v1/me/identities`.")
    joined_at = serializers.DateTimeField()
    message = serializers.SerializerMethodField()

    def get_message(self, join) -> str:
        return gettext(
            "You signed in through %(bank)s for the first time. The bank verified the same ID number "
            "as this account, so it is now one of your ways in here, not a second account."
        ) % {"bank": selectors.bank_name(join.provider)}


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
    joined_identities = serializers.SerializerMethodField(
        help_text="Bank identities that joined this account at their first sign-in because their bank "
        "verified the same ID number; shown until marked seen (`POST /api/v1/me/joined-identities/seen`)."
    )

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

    @extend_schema_field(JoinedIdentityOutput(many=True))
    def get_joined_identities(self, user: User) -> list[dict]:
        return JoinedIdentityOutput(selectors.identity_joins_unseen(user=user), many=True).data

    def get_phone_number(self, user: User) -> str:
        return self._masked(user)["phone_number"]

    def get_id_number(self, user: User) -> str:
        return self._masked(user)["id_number"]

    @extend_schema_field(AgreementOutput(many=True))
    def get_pending_agreements(self, user: User) -> list:
        return AgreementOutput(selectors.agreements_pending_for(user=user), many=True).data


def profile_data(request: Request, user: User) -> dict:
    return ProfileOutput(user, context={"request": request}).data
