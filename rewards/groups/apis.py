"""The app's group routes: my groups, open or apply, join by invite code or QR, leave, members and
roles, the group boards, and team challenges with their progress. Thin views over rewards.groups."""

from __future__ import annotations

import io

import qrcode
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.models import User
from core.api import dates
from core.api.errors import ApplicationError
from core.api.renderers import PNGFileMixin
from core.api.serializers import QuerySerializer
from core.api.views import JsonApiView
from rewards.errors import (
    CHALLENGE_NOT_FOUND,
    GROUP_MEMBER_NOT_FOUND,
    GROUP_NOT_FOUND,
    GROUP_PERMISSION_DENIED,
    LEADERBOARD_DISTRICT_UNKNOWN,
)
from rewards.groups import boards, challenges, selectors, services
from rewards.groups.models import (
    ChallengeTarget,
    Group,
    GroupKind,
    GroupMembership,
    GroupRole,
    GroupStatus,
    TeamChallenge,
)
from rewards.models import LeaderboardPeriod

DEFAULT_GROUP_LINK = "/pages/groups/join?code={code}"


def _link(group: Group) -> str:
    return getattr(settings, "GROUPS_INVITE_LINK_TEMPLATE", DEFAULT_GROUP_LINK).format(code=group.invite_code)


class GroupOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    kind = serializers.ChoiceField(choices=GroupKind.choices)
    name = serializers.CharField()
    description = serializers.CharField()
    district = serializers.CharField(source="district.code", allow_null=True, default=None)
    status = serializers.ChoiceField(choices=GroupStatus.choices)
    is_verified = serializers.SerializerMethodField()
    members = serializers.IntegerField(source="member_count")

    def get_is_verified(self, group: Group) -> bool:
        return group.verified_at is not None


class MyGroupOutput(GroupOutput):
    role = serializers.ChoiceField(choices=GroupRole.choices)
    invite_code = serializers.CharField(allow_null=True, help_text="Shown to the owner and admins only.")
    invite_link = serializers.CharField(allow_null=True)


def _mine(group: Group, membership: GroupMembership) -> dict:
    manages = membership.role in (GroupRole.OWNER, GroupRole.ADMIN)
    data = GroupOutput(group).data
    data.update(
        role=membership.role,
        invite_code=group.invite_code if manages else None,
        invite_link=_link(group) if manages else None,
    )
    return data


def _my_group(request: Request, group_id) -> tuple[Group, GroupMembership]:
    membership = selectors.membership_in(user=request.user, group_public_id=group_id)
    if membership is None:
        raise ApplicationError(GROUP_NOT_FOUND)
    return membership.group, membership


class GroupsApi(JsonApiView):
    """The person's groups; POST opens a team (open at once) or applies for a community, employer
    or school (verified by operators first)."""

    class CreateInput(serializers.Serializer):
        kind = serializers.ChoiceField(choices=GroupKind.choices)
        name = serializers.CharField(max_length=60)
        description = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)
        district = serializers.CharField(max_length=32, required=False, allow_null=True, default=None)
        applicant_name = serializers.CharField(max_length=120, required=False, default="", allow_blank=True)
        applicant_proof = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)

    @extend_schema(responses=MyGroupOutput(many=True))
    def get(self, request: Request) -> Response:
        memberships = selectors.memberships_of(user=request.user)
        return Response([_mine(membership.group, membership) for membership in memberships])

    @extend_schema(request=CreateInput, responses={201: MyGroupOutput})
    def post(self, request: Request) -> Response:
        data = self.CreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        district = None
        if values["district"]:
            district = account_selectors.district_of_code(code=values["district"])
            if district is None:
                raise ApplicationError(
                    LEADERBOARD_DISTRICT_UNKNOWN, fields={"district": [values["district"]]}
                )
        group = services.group_create(user=request.user, **{**values, "district": district})
        membership = services.membership_of(group=group, user=request.user)
        return Response(_mine(group, membership), status=status.HTTP_201_CREATED)


class GroupJoinApi(JsonApiView):
    """Joins a group by its invite code (typed, or read from the group's QR code)."""

    class JoinInput(serializers.Serializer):
        invite_code = serializers.CharField(max_length=16)

    @extend_schema(request=JoinInput, responses={201: MyGroupOutput})
    def post(self, request: Request) -> Response:
        data = self.JoinInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.group_join(user=request.user, invite_code=data.validated_data["invite_code"])
        membership.group.refresh_from_db()
        return Response(_mine(membership.group, membership), status=status.HTTP_201_CREATED)


class GroupApi(JsonApiView):
    """One of the person's groups; DELETE leaves it (an owner's ownership passes on)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MyGroupOutput)
    def get(self, request: Request, group_id) -> Response:
        group, membership = _my_group(request, group_id)
        return Response(_mine(group, membership))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, group_id) -> Response:
        group, _membership = _my_group(request, group_id)
        services.group_leave(user=request.user, group=group)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GroupInviteApi(JsonApiView):
    """POST makes a new invite code (owner or admins); the old code and QR code stop working."""

    @extend_schema(request=None, responses={200: MyGroupOutput})
    def post(self, request: Request, group_id) -> Response:
        group, membership = _my_group(request, group_id)
        group = services.invite_code_rotate(actor=request.user, group=group)
        return Response(_mine(group, membership))


class GroupQrApi(PNGFileMixin, APIView):
    """The invite link as a QR code (PNG), for the owner and admins to show or print."""

    @extend_schema(
        responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY)}, operation_id="groups_invite_qr"
    )
    def get(self, request: Request, group_id) -> Response:
        group, membership = _my_group(request, group_id)
        if membership.role not in (GroupRole.OWNER, GroupRole.ADMIN):
            raise ApplicationError(GROUP_PERMISSION_DENIED)
        buffer = io.BytesIO()
        qrcode.make(_link(group), box_size=8, border=2).save(buffer, format="PNG")
        return Response(
            buffer.getvalue(), content_type="image/png", headers={"Cache-Control": "private, no-store"}
        )


class MemberOutput(serializers.Serializer):
    public_id = serializers.UUIDField(source="user.public_id")
    nickname = serializers.CharField(source="user.nickname")
    role = serializers.ChoiceField(choices=GroupRole.choices)
    joined_at = serializers.DateTimeField()


class GroupMembersApi(JsonApiView):
    """The group's members, owner and admins first."""

    @extend_schema(responses=MemberOutput(many=True))
    def get(self, request: Request, group_id) -> Response:
        group, _membership = _my_group(request, group_id)
        return Response(MemberOutput(selectors.members_of(group=group), many=True).data)


def _member(group: Group, public_id) -> User:
    membership = selectors.member_of(group=group, user_public_id=public_id)
    if membership is None:
        raise ApplicationError(GROUP_MEMBER_NOT_FOUND)
    return membership.user


class GroupMemberApi(JsonApiView):
    """PATCH changes a member's role (owner only; role `owner` hands ownership over); DELETE removes
    a member (owner, or an admin for plain members)."""

    permission_classes = [IsAuthenticated]

    class RoleInput(serializers.Serializer):
        role = serializers.ChoiceField(choices=GroupRole.choices)

    @extend_schema(request=RoleInput, responses={200: MemberOutput})
    def patch(self, request: Request, group_id, member_id) -> Response:
        group, _membership = _my_group(request, group_id)
        data = self.RoleInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_role_set(
            actor=request.user,
            group=group,
            member=_member(group, member_id),
            role=data.validated_data["role"],
        )
        return Response(MemberOutput(membership).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, group_id, member_id) -> Response:
        group, _membership = _my_group(request, group_id)
        services.member_remove(actor=request.user, group=group, member=_member(group, member_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Boards -------------------------------------------------------------------------------------


class GroupBoardEntryOutput(serializers.Serializer):
    rank = serializers.IntegerField()
    group = GroupOutput()
    members = serializers.IntegerField()
    carbon_mg = serializers.IntegerField()
    carbon_per_member_mg = serializers.IntegerField(help_text="What the ranking is by.")


class GroupBoardOutput(serializers.Serializer):
    period = serializers.ChoiceField(choices=LeaderboardPeriod.choices)
    scope = serializers.ChoiceField(choices=["city", "district"])
    period_start = serializers.DateField()
    through_day = serializers.DateField()
    built_at = serializers.DateTimeField(allow_null=True)
    entries = GroupBoardEntryOutput(many=True, help_text="The top 50 by carbon reduced per member.")
    mine = GroupBoardEntryOutput(many=True, help_text="The person's own groups on this board.")


class GroupBoardApi(APIView):
    """Groups ranked by carbon reduced per member, city-wide or in a district (default: the person's)."""

    class Query(QuerySerializer):
        period = serializers.ChoiceField(choices=LeaderboardPeriod.choices, default="week")
        scope = serializers.ChoiceField(choices=["city", "district"], default="city")
        district = serializers.CharField(max_length=32, required=False)

    @extend_schema(parameters=[Query], responses=GroupBoardOutput)
    def get(self, request: Request) -> Response:
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        values = query.validated_data
        district_id = request.user.district_id
        if values.get("district"):
            district = account_selectors.district_of_code(code=values["district"])
            if district is None:
                raise ApplicationError(
                    LEADERBOARD_DISTRICT_UNKNOWN, fields={"district": [values["district"]]}
                )
            district_id = district.pk
        board = boards.group_board_for(
            user=request.user, period=values["period"], scope=values["scope"], district_id=district_id
        )
        return Response(GroupBoardOutput(board).data)


class MemberBoardEntryOutput(serializers.Serializer):
    rank = serializers.IntegerField()
    public_id = serializers.UUIDField(source="person.public_id")
    nickname = serializers.CharField(source="person.nickname")
    carbon_mg = serializers.IntegerField()
    is_me = serializers.BooleanField()


class MemberBoardOutput(serializers.Serializer):
    period = serializers.ChoiceField(choices=LeaderboardPeriod.choices)
    built_at = serializers.DateTimeField(allow_null=True)
    entries = MemberBoardEntryOutput(many=True)


class GroupMemberBoardApi(APIView):
    """The group's members ranked by carbon reduced (who opted out of rankings is not listed)."""

    class Query(QuerySerializer):
        period = serializers.ChoiceField(choices=LeaderboardPeriod.values, default="week")

    @extend_schema(
        operation_id="groups_members_leaderboard_retrieve", parameters=[Query], responses=MemberBoardOutput
    )
    def get(self, request: Request, group_id) -> Response:
        group, _membership = _my_group(request, group_id)
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        period = query.validated_data["period"]
        build, entries = boards.member_board_for(group=group, period=period)
        for entry in entries:
            entry["is_me"] = entry["person"].pk == request.user.pk
        return Response(
            MemberBoardOutput(
                {"period": period, "built_at": build.finished_at if build else None, "entries": entries}
            ).data
        )


# --- Challenges ---------------------------------------------------------------------------------


class ProgressOutput(serializers.Serializer):
    value = serializers.IntegerField(help_text="Grams of CO₂e reduced, or members active, so far.")
    target = serializers.IntegerField()
    percent = serializers.IntegerField()
    active_members = serializers.IntegerField()
    members = serializers.IntegerField()


class ChallengeOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    title = serializers.CharField()
    target_kind = serializers.ChoiceField(choices=ChallengeTarget.choices)
    target_value = serializers.IntegerField()
    starts_on = serializers.DateField()
    ends_on = serializers.DateField()
    status = serializers.CharField()
    reward_kind = serializers.CharField()
    coins_per_member = serializers.IntegerField()
    sponsor = serializers.CharField(source="sponsor.name", allow_null=True, default=None)
    welfare_project = serializers.CharField(source="welfare_project.title", allow_null=True, default=None)
    donation_coins = serializers.IntegerField()
    met_at = serializers.DateTimeField(allow_null=True)
    progress = ProgressOutput(source="progress_now")
    my_reward_coins = serializers.IntegerField(help_text="Coins this challenge paid the person (0 if none).")


def _challenge_data(challenge: TeamChallenge, user: User) -> dict:
    challenge.progress_now = challenges.challenge_progress(challenge=challenge)
    payout = selectors.payout_to(challenge=challenge, user=user)
    challenge.my_reward_coins = payout.coins if payout else 0
    return ChallengeOutput(challenge).data


class GroupChallengesApi(JsonApiView):
    """The group's challenges with their progress; POST (owner or admins) sets one without a reward
    (rewarded challenges are set by operators and sponsors in the admin)."""

    class CreateInput(serializers.Serializer):
        title = serializers.CharField(max_length=80)
        target_kind = serializers.ChoiceField(choices=ChallengeTarget.choices)
        target_value = serializers.IntegerField(min_value=1, max_value=10**12)
        starts_on = dates.DateField()
        ends_on = dates.DateField()

    @extend_schema(responses=ChallengeOutput(many=True))
    def get(self, request: Request, group_id) -> Response:
        group, _membership = _my_group(request, group_id)
        return Response(
            [_challenge_data(challenge, request.user) for challenge in selectors.challenges_of(group=group)]
        )

    @extend_schema(request=CreateInput, responses={201: ChallengeOutput})
    def post(self, request: Request, group_id) -> Response:
        group, membership = _my_group(request, group_id)
        if membership.role not in (GroupRole.OWNER, GroupRole.ADMIN):
            raise ApplicationError(GROUP_PERMISSION_DENIED)
        data = self.CreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        challenge = challenges.challenge_create(group=group, created_by=request.user, **data.validated_data)
        return Response(_challenge_data(challenge, request.user), status=status.HTTP_201_CREATED)


class GroupChallengeApi(APIView):
    @extend_schema(responses=ChallengeOutput)
    def get(self, request: Request, group_id, challenge_id) -> Response:
        group, _membership = _my_group(request, group_id)
        challenge = selectors.challenge_of(group=group, challenge_public_id=challenge_id)
        if challenge is None:
            raise ApplicationError(CHALLENGE_NOT_FOUND)
        return Response(_challenge_data(challenge, request.user))
