"""Group boards: groups ranked by carbon reduced per member, city-wide and per district; and each
group's members ranked within it. Built like the people's boards (`rewards.gamification.leaderboards`):
one set-based statement per build over `DailyCarbon` with `ROW_NUMBER()`, on the same schedule and
for the same periods; readers take the latest finished build of a period.

- Per member, so a big group does not win by size alone: the carbon of all its members divided by
  how many they are. Groups with fewer than `GROUPS_BOARD_MIN_MEMBERS` (3) are not ranked, so a team
  of one cannot top the city.
- Every member's carbon counts for their group; people who opted out of rankings are not listed on
  their group's member board. Only active groups are ranked.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from rewards.gamification.leaderboards import period_bounds
from rewards.gamification.progress import progress_refresh
from rewards.groups import statements
from rewards.groups.models import (
    Group,
    GroupBoardBuild,
    GroupBoardEntry,
    GroupMemberBoardEntry,
)
from rewards.models import LeaderboardPeriod

TOP = 50
DEFAULT_MIN_MEMBERS = 3


def board_min_members() -> int:
    return int(getattr(settings, "GROUPS_BOARD_MIN_MEMBERS", DEFAULT_MIN_MEMBERS))


def group_board_rebuild(*, period: str, today: datetime.date | None = None) -> GroupBoardBuild:
    """Builds the group boards of a period kind from scratch, then deletes older builds' entries.

    Safe to run twice or at once: each run writes its own build; readers take the latest finished one.
    """
    start, through = period_bounds(period=period, today=today)
    if period == LeaderboardPeriod.ALL_TIME:
        progress_refresh(through=through)
        build_statement = statements.GROUP_BOARD_BUILD_ALL_TIME
    else:
        build_statement = statements.GROUP_BOARD_BUILD_PERIOD
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit TO OFF")
        build = GroupBoardBuild.objects.create(
            period=period, period_start=start, through_day=through, started_at=timezone.now()
        )
        with connection.cursor() as cursor:
            cursor.execute(
                build_statement,
                {"build": build.pk, "start": start, "through": through, "min_members": board_min_members()},
            )
            build.groups = cursor.rowcount
        build.finished_at = timezone.now()
        build.save(update_fields=["groups", "finished_at"])
    older = list(GroupBoardBuild.objects.filter(period=period, pk__lt=build.pk).values_list("pk", flat=True))
    if older:
        with transaction.atomic():
            GroupBoardEntry.objects.filter(build_id__in=older).delete()
            GroupMemberBoardEntry.objects.filter(build_id__in=older).delete()
    return build


def group_boards_rebuild(*, periods: list[str] | None = None, today: datetime.date | None = None) -> dict:
    """Rebuilds the group boards of the given period kinds (all by default): {period: groups ranked}."""
    return {
        period: group_board_rebuild(period=period, today=today).groups
        for period in (periods or LeaderboardPeriod.values)
    }


# --- Reads ------------------------------------------------------------------------------------


def current_group_build(*, period: str) -> GroupBoardBuild | None:
    start, _through = period_bounds(period=period)
    return (
        GroupBoardBuild.objects.filter(period=period, period_start=start, finished_at__isnull=False)
        .order_by("-id")
        .first()
    )


@dataclass(frozen=True)
class GroupBoard:
    period: str
    scope: str
    period_start: datetime.date
    through_day: datetime.date
    built_at: datetime.datetime | None
    entries: list[dict]
    mine: list[dict]


def _group_rows(rows) -> list[dict]:
    groups = {group.pk: group for group in Group.objects.filter(pk__in=[row.group_id for row in rows])}
    return [
        {
            "group": groups[row.group_id],
            "rank": row.district_rank
            if row.district_rank is not None and row.scope == "district"
            else row.city_rank,
            "members": row.members,
            "carbon_mg": row.carbon_mg,
            "carbon_per_member_mg": row.carbon_per_member_mg,
        }
        for row in rows
        if row.group_id in groups
    ]


def group_board_for(*, user: User, period: str, scope: str, district_id: int | None) -> GroupBoard:
    """The top 50 groups, city-wide or in a district, and where the person's own groups stand."""
    start, through = period_bounds(period=period)
    build = current_group_build(period=period)
    entries: list = []
    mine: list = []
    if build is not None:
        rows = GroupBoardEntry.objects.filter(build_id=build.pk)
        if scope == "district":
            top = list(rows.filter(district_id=district_id, district_rank__lte=TOP).order_by("district_rank"))
        else:
            top = list(rows.filter(city_rank__lte=TOP).order_by("city_rank"))
        own_ids = list(user.group_memberships.values_list("group_id", flat=True))
        own = list(rows.filter(group_id__in=own_ids).order_by("city_rank"))
        if scope == "district":
            own = [row for row in own if row.district_id == district_id]
        for row in top + own:
            row.scope = scope
        entries, mine = _group_rows(top), _group_rows(own)
    return GroupBoard(
        period=period,
        scope=scope,
        period_start=build.period_start if build else start,
        through_day=build.through_day if build else through,
        built_at=build.finished_at if build else None,
        entries=entries,
        mine=mine,
    )


def member_board_for(*, group: Group, period: str) -> tuple[GroupBoardBuild | None, list[dict]]:
    """The group's members ranked by carbon reduced in the period, as the last build ranked them, of
    those who are members now: who left or was removed since, opted out or closed the account is
    not listed (the boards are rebuilt nightly)."""
    build = current_group_build(period=period)
    if build is None:
        return None, []
    rows = list(
        GroupMemberBoardEntry.objects.filter(build_id=build.pk, group_id=group.pk)
        .order_by("rank")
        .values_list("user_id", "rank", "carbon_mg")[:200]
    )
    people = {
        person.pk: person
        for person in User.objects.filter(
            pk__in=[row[0] for row in rows],
            shows_on_leaderboards=True,
            closed_at__isnull=True,
            group_memberships__group=group,
        )
    }
    return build, [
        {"person": people[user_id], "rank": rank, "carbon_mg": carbon_mg}
        for user_id, rank, carbon_mg in rows
        if user_id in people
    ]
