"""Reads of groups, their members and challenges, for the group routes (`rewards/groups/apis.py`)."""

from __future__ import annotations

from django.db.models import Case, IntegerField, QuerySet, Value, When

from accounts.models import User
from rewards.groups.models import (
    ChallengePayout,
    Group,
    GroupMembership,
    GroupRole,
    GroupStatus,
    TeamChallenge,
)

MEMBERS_SHOWN = 500
CHALLENGES_SHOWN = 50
_ROLE_ORDER = {GroupRole.OWNER: 0, GroupRole.ADMIN: 1, GroupRole.MEMBER: 2}


def memberships_of(*, user: User) -> QuerySet[GroupMembership]:
    """The person's memberships of groups not closed, the first joined first, with their groups."""
    return (
        GroupMembership.objects.filter(user=user)
        .exclude(group__status=GroupStatus.CLOSED)
        .select_related("group", "group__district")
        .order_by("joined_at", "id")
    )


def membership_in(*, user: User, group_public_id) -> GroupMembership | None:
    """The person's membership of this group (not closed), or None: a group they are not in is absent."""
    return (
        GroupMembership.objects.select_related("group", "group__district")
        .filter(user=user, group__public_id=group_public_id)
        .exclude(group__status=GroupStatus.CLOSED)
        .first()
    )


def members_of(*, group: Group) -> list[GroupMembership]:
    """The group's members (accounts still open), owner and admins first, then by joining; ordered
    in the query, so a group larger than `MEMBERS_SHOWN` lists its owner and admins."""
    role_order = Case(
        *(When(role=role, then=Value(rank)) for role, rank in _ROLE_ORDER.items()),
        output_field=IntegerField(),
    )
    return list(
        group.memberships.select_related("user")
        .filter(user__closed_at__isnull=True)
        .order_by(role_order, "joined_at", "pk")[:MEMBERS_SHOWN]
    )


def member_of(*, group: Group, user_public_id) -> GroupMembership | None:
    """The membership of the person of this public id in the group, or None."""
    return group.memberships.select_related("user").filter(user__public_id=user_public_id).first()


def challenges_of(*, group: Group) -> QuerySet[TeamChallenge]:
    """The group's latest challenges, the latest to start first."""
    return group.challenges.select_related("sponsor", "welfare_project").order_by("-starts_on", "-id")[
        :CHALLENGES_SHOWN
    ]


def challenge_of(*, group: Group, challenge_public_id) -> TeamChallenge | None:
    """One of the group's challenges, or None."""
    return (
        group.challenges.select_related("sponsor", "welfare_project")
        .filter(public_id=challenge_public_id)
        .first()
    )


def payout_to(*, challenge: TeamChallenge, user: User) -> ChallengePayout | None:
    """What the challenge paid the person, or None."""
    return challenge.payouts.filter(user_key=user.pk).first()
