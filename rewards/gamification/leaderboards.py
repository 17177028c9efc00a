"""Leaderboards by carbon reduced: today, this week, this month, all time; city, district, friends.

A board is a period kind and its first day. Each build of a board is written set-based in one
`INSERT … SELECT` over `DailyCarbon`, ranking with `ROW_NUMBER()` (city-wide, and partitioned by
district) into `LeaderboardEntry`; readers find the latest finished build (its id is the board's
version) and read by index: the top 50 through (build, city_rank) or (build, district, rank), a
person through (build, user).

- Today counts the carbon credited today, settled or not (rebuilt every few minutes).
- This week / this month / all time count closed days: the week, month or whole history up to
  yesterday, rebuilt after the nightly settlement. On the first day of a week the board of "this
  week" is the one of the week that just ended, until tonight (`through_day` says so). All time
  ranks the people's progress (`rewards.gamification.progress`), refreshed through yesterday first:
  one row a person, counted day by day as days change, so its rebuild does not grow with the
  city's age.
- Ties are broken by account age (the lower user id first): the same scores always give the same order.
- People who opted out of rankings, closed accounts and zero scores are left out.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from accounts.models import District, User
from accounts.selectors import PEOPLE_SHOWN_SOURCE, friend_ids_of
from core.db import prepared_cursor
from core.db_routing import primary_reads
from core.person_cache import Reading, shared_tag, shared_tag_key
from rewards.gamification import statements
from rewards.gamification.progress import progress_refresh
from rewards.models import LeaderboardBuild, LeaderboardEntry, LeaderboardPeriod

logger = logging.getLogger(__name__)

# The partial indexes of LeaderboardEntry hold the first 50 places: keep them in step.
TOP = 50
ALL_TIME_START = datetime.date(2000, 1, 1)
# The pointer to a board's latest build and its top 50 are cached in the shared cache (a rebuild
# replaces the pointer) and, for a few seconds, in the process: the board is the app's hottest read.
# A top is kept under the shared tag of who may be shown (`accounts.selectors.PEOPLE_SHOWN_SOURCE`),
# read beside the session: someone who opts out or whose account closes (erasure, merge) is off
# every process's top at the commit, not when its copies expire.
POINTER_SECONDS = 300
TOP_SECONDS = 300
LOCAL_POINTER_SECONDS = 5
LOCAL_TOP_SECONDS = 30
_LOCAL_ENTRIES_MAX = 512
_local: dict[str, tuple[float, object]] = {}


def _local_get(key: str) -> object | None:
    item = _local.get(key)
    if item is None or item[0] < time.monotonic():
        return None
    return item[1]


def _local_set(key: str, value: object, seconds: float) -> None:
    if len(_local) >= _LOCAL_ENTRIES_MAX:
        _local.clear()
    _local[key] = (time.monotonic() + seconds, value)


def local_cache_clear() -> None:
    """Forgets this process's copies (tests; the shared cache stays the reference)."""
    _local.clear()


class Scope:
    CITY = "city"
    DISTRICT = "district"
    FRIENDS = "friends"
    CHOICES = [CITY, DISTRICT, FRIENDS]


def period_bounds(*, period: str, today: datetime.date | None = None) -> tuple[datetime.date, datetime.date]:
    """(first day, last day counted) of the current board of a period kind."""
    today = today or timezone.localdate()
    if period == LeaderboardPeriod.TODAY:
        return today, today
    closed = today - datetime.timedelta(days=1)
    if period == LeaderboardPeriod.WEEK:
        return closed - datetime.timedelta(days=closed.weekday()), closed
    if period == LeaderboardPeriod.MONTH:
        return closed.replace(day=1), closed
    if period == LeaderboardPeriod.ALL_TIME:
        return ALL_TIME_START, closed
    raise ValueError(f"unknown period {period!r}")


def _pointer_key(period: str, start: datetime.date) -> str:
    return f"rewards:leaderboard:current:{period}:{start.isoformat()}"


def _build_summary(build: LeaderboardBuild) -> dict:
    return {
        "id": build.pk,
        "period": build.period,
        "period_start": build.period_start,
        "through_day": build.through_day,
        "built_at": build.finished_at,
        "people": build.people,
    }


ENTRIES_TABLE = LeaderboardEntry._meta.db_table


def _partition_of(build_id: int) -> str:
    return f"{ENTRIES_TABLE}_b{int(build_id)}"


def _rank_into_partition(
    cursor, *, build_id: int, period: str, start: datetime.date, through: datetime.date
) -> int:
    """Writes a build's entries into a table of its own, indexes it, attaches it; returns the count.

    The table is unlogged (derived data), checked to hold only its build (so attaching it needs no
    scan), filled in (build, person) order, then indexed in one sorted pass per index: the same
    three the parent declares, which attaching matches instead of building again. Readers reach it
    only through its unique and partial indexes, so it needs no planner statistics.
    """
    partition = _partition_of(build_id)
    names = {"partition": sql.Identifier(partition), "build": sql.Literal(int(build_id))}
    # Written once, read by index, dropped whole: nothing for autovacuum to do but compete with the
    # next rebuild for the cores (it would analyze two million fresh rows right away).
    cursor.execute(statements.ENTRIES_PARTITION_CREATE.format(entries=statements.ENTRIES, **names))
    scores = statements.PROGRESS_SCORES if period == LeaderboardPeriod.ALL_TIME else statements.PERIOD_SCORES
    cursor.execute(
        statements.ENTRIES_RANK.format(partition=names["partition"], scored=scores),
        {"build": build_id, "start": start, "through": through},
    )
    people = cursor.rowcount
    cursor.execute(
        statements.ENTRIES_PARTITION_ATTACH.format(
            entries=statements.ENTRIES,
            person=sql.Identifier(f"{partition}_person"),
            city_top=sql.Identifier(f"{partition}_city_top"),
            district_top=sql.Identifier(f"{partition}_district_top"),
            top=sql.Literal(TOP),
            **names,
        )
    )
    return people


@dataclass(frozen=True)
class BuildResult:
    build: LeaderboardBuild
    rank_seconds: float
    cleanup_seconds: float


def leaderboard_rebuild(*, period: str, today: datetime.date | None = None) -> BuildResult:
    """Builds the current board of a period kind from scratch, then drops older builds' entries.

    Safe to run twice or concurrently: each run writes its own build; readers take the latest
    finished one, and only entries of builds older than the one just finished are deleted.
    """
    start, through = period_bounds(period=period, today=today)
    started = time.monotonic()
    if period == LeaderboardPeriod.ALL_TIME:
        progress_refresh(through=through)
    with transaction.atomic():
        # One big sort per window: give it memory rather than spilling to disk, and skip JIT.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem TO '256MB'")
            cursor.execute("SET LOCAL jit TO OFF")
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        build = LeaderboardBuild.objects.create(
            period=period, period_start=start, through_day=through, started_at=timezone.now()
        )
        with connection.cursor() as cursor:
            people = _rank_into_partition(
                cursor, build_id=build.pk, period=period, start=start, through=through
            )
        rank_seconds = time.monotonic() - started
        build.people = people
        build.finished_at = timezone.now()
        build.duration_seconds = rank_seconds
        build.save(update_fields=["people", "finished_at", "duration_seconds"])
    cache.set(_pointer_key(period, start), _build_summary(build), POINTER_SECONDS)
    _local_set(_pointer_key(period, start), _build_summary(build), LOCAL_POINTER_SECONDS)
    cleanup_started = time.monotonic()
    older = list(LeaderboardBuild.objects.filter(period=period, pk__lt=build.pk).values_list("pk", flat=True))
    with transaction.atomic():
        if older:
            with connection.cursor() as cursor:
                cursor.execute(
                    statements.ENTRIES_PARTITIONS_DROP.format(
                        partitions=sql.SQL(", ").join(sql.Identifier(_partition_of(pk)) for pk in older)
                    )
                )
    cleanup_seconds = time.monotonic() - cleanup_started
    logger.info(
        "leaderboard.rebuilt",
        extra={"period": period, "start": start.isoformat(), "people": people, "seconds": rank_seconds},
    )
    return BuildResult(build=build, rank_seconds=rank_seconds, cleanup_seconds=cleanup_seconds)


def leaderboards_heal(*, today: datetime.date | None = None) -> list[str]:
    """Rebuilds the current boards whose latest build lost its entries (PostgreSQL empties the
    unlogged entries table after a crash) or was never built. Returns the periods rebuilt."""
    healed = []
    for period in LeaderboardPeriod.values:
        start, _through = period_bounds(period=period, today=today)
        build = (
            LeaderboardBuild.objects.filter(period=period, period_start=start, finished_at__isnull=False)
            .order_by("-id")
            .first()
        )
        if build is None or (
            build.people and not LeaderboardEntry.objects.filter(build_id=build.pk).exists()
        ):
            leaderboard_rebuild(period=period, today=today)
            healed.append(period)
    return healed


def leaderboards_rebuild(*, periods: list[str] | None = None, today: datetime.date | None = None) -> list:
    """Rebuilds the given period kinds (all of them by default)."""
    return [
        leaderboard_rebuild(period=period, today=today) for period in (periods or LeaderboardPeriod.values)
    ]


# --- Reads ------------------------------------------------------------------------------------


def current_build(*, period: str, today: datetime.date | None = None) -> dict | None:
    """The latest finished build of the current board of a period kind (cached), or None."""
    start, _through = period_bounds(period=period, today=today)
    key = _pointer_key(period, start)
    summary = _local_get(key)
    if summary is not None:
        return summary
    summary = cache.get(key)
    if summary is None:
        # From the primary: a replica behind the latest build would point everyone, for as long as
        # the pointer is cached, at an older build whose entries the rebuild drops.
        with primary_reads():
            build = (
                LeaderboardBuild.objects.filter(period=period, period_start=start, finished_at__isnull=False)
                .order_by("-id")
                .first()
            )
        if build is None:
            return None
        summary = _build_summary(build)
        cache.set(key, summary, POINTER_SECONDS)
    _local_set(key, summary, LOCAL_POINTER_SECONDS)
    return summary


def _people(user_ids: list[int]) -> dict[int, dict]:
    """What a board shows of a person: nickname, avatar and district; opted-out people are not shown."""
    rows = User.objects.filter(pk__in=user_ids, shows_on_leaderboards=True, closed_at__isnull=True).values(
        "pk", "public_id", "nickname", "avatar", "district__code", "district__name"
    )
    return {
        row["pk"]: {
            "public_id": str(row["public_id"]),
            "nickname": row["nickname"],
            "avatar": row["avatar"] or "",
            "district": row["district__code"],
            "district_name": row["district__name"],
        }
        for row in rows
    }


def _entries(rows: list[tuple[int, int, int]]) -> list[dict]:
    """(user id, rank, carbon) rows as board entries; people who opted out since the build are dropped."""
    people = _people([user_id for user_id, _rank, _carbon in rows])
    return [
        {"user_id": user_id, "rank": rank, "carbon_mg": carbon_mg, **people[user_id]}
        for user_id, rank, carbon_mg in rows
        if user_id in people
    ]


def people_shown_tag_key() -> str:
    """The cache key of the tag the tops are kept under, for a request to read beside its session."""
    return shared_tag_key(PEOPLE_SHOWN_SOURCE)


def top_entries(
    *,
    build_id: int,
    scope: str,
    district_id: int | None = None,
    prefetched: tuple[Mapping, Collection[str]] | None = None,
) -> list[dict]:
    """The top 50 of a build, city-wide or in a district, cached under the build's version and the
    current tag of who may be shown (`prefetched`: a prefetch that read `people_shown_tag_key`)."""
    people_tag = shared_tag(PEOPLE_SHOWN_SOURCE, *(prefetched or ({}, ())))
    key = f"rewards:leaderboard:top:{build_id}:{people_tag}:{scope}:{district_id or ''}"
    entries = _local_get(key)
    if entries is not None:
        return entries
    entries = cache.get(key)
    if entries is None:
        rows = LeaderboardEntry.objects.filter(build_id=build_id)
        if scope == Scope.DISTRICT:
            rows = rows.filter(district_id=district_id, district_rank__lte=TOP).order_by("district_rank")
            fields = ("user_id", "district_rank", "carbon_mg")
        else:
            rows = rows.filter(city_rank__lte=TOP).order_by("city_rank")
            fields = ("user_id", "city_rank", "carbon_mg")
        entries = _entries(list(rows.values_list(*fields)))
        cache.set(key, entries, TOP_SECONDS)
    _local_set(key, entries, LOCAL_TOP_SECONDS)
    return entries


@dataclass(frozen=True)
class Standing:
    rank: int | None
    carbon_mg: int


# A person's row on a build, cached per person and build (`core.person_cache`): a build never
# changes once finished, so nothing renews it; it lives as long as a "today" board is current.
STANDING_READING = Reading("standing", sources=())


def standing_of(
    *, build_id: int, user: User, scope: str, prefetched: tuple[Mapping, Collection[str]] | None = None
) -> Standing:
    """The person's own rank and score on a build (city or their district); unranked if not on it.

    `prefetched`: the cache values the request read beside its session, and the keys it asked for
    (`accounts.sessions.prefetched_values`): the row comes from there when `STANDING_READING` was.
    """
    cached = None
    if prefetched is not None:
        cached = STANDING_READING.lookup(user.pk, *prefetched, part=str(build_id))
    if cached is not None and cached.hit:
        row = cached.value
    else:
        # By its unique index: plain SQL spares compiling the same SELECT for every request,
        # and preparing it on the server spares planning it.
        with prepared_cursor() as cursor:
            cursor.execute(statements.STANDING, [build_id, user.pk])
            row = cursor.fetchone()
        if cached is not None:
            cached.store(row)
    if row is None:
        return Standing(rank=None, carbon_mg=0)
    city_rank, district_rank, carbon_mg = row
    return Standing(rank=district_rank if scope == Scope.DISTRICT else city_rank, carbon_mg=carbon_mg)


def friends_board(*, build_id: int, user: User) -> tuple[list[dict], Standing]:
    """The person and their friends on a build, ranked among themselves in the city order."""
    ids = friend_ids_of(user_id=user.pk) | {user.pk}
    rows = list(
        LeaderboardEntry.objects.filter(build_id=build_id, user_id__in=ids)
        .order_by("city_rank")
        .values_list("user_id", "carbon_mg")
    )
    ranked = [(user_id, position, carbon_mg) for position, (user_id, carbon_mg) in enumerate(rows, start=1)]
    mine = next((Standing(rank, carbon) for user_id, rank, carbon in ranked if user_id == user.pk), None)
    return _entries(ranked[:TOP]), mine or Standing(rank=None, carbon_mg=0)


@dataclass(frozen=True)
class Board:
    period: str
    scope: str
    period_start: datetime.date
    through_day: datetime.date
    built_at: datetime.datetime | None
    version: int | None
    district: District | None
    entries: list[dict]
    me: Standing
    shows_on_leaderboards: bool


def board_for(
    *,
    user: User,
    period: str,
    scope: str,
    district: District | None = None,
    prefetched: tuple[Mapping, Collection[str]] | None = None,
) -> Board:
    """The top 50 of a board and the person's own rank and score on it (`prefetched`: see `standing_of`
    and `top_entries`)."""
    start, through = period_bounds(period=period)
    summary = current_build(period=period)
    if scope == Scope.DISTRICT:
        district = district or (
            District.objects.filter(pk=user.district_id).first() if user.district_id else None
        )
    if summary is None or (scope == Scope.DISTRICT and district is None):
        entries, me = [], Standing(rank=None, carbon_mg=0)
    elif scope == Scope.FRIENDS:
        entries, me = friends_board(build_id=summary["id"], user=user)
    else:
        entries = top_entries(
            build_id=summary["id"],
            scope=scope,
            district_id=district.pk if district else None,
            prefetched=prefetched,
        )
        if scope == Scope.DISTRICT and district.pk != user.district_id:
            me = Standing(rank=None, carbon_mg=0)
        else:
            me = standing_of(build_id=summary["id"], user=user, scope=scope, prefetched=prefetched)
    return Board(
        period=period,
        scope=scope,
        period_start=summary["period_start"] if summary else start,
        through_day=summary["through_day"] if summary else through,
        built_at=summary["built_at"] if summary else None,
        version=summary["id"] if summary else None,
        district=district if scope == Scope.DISTRICT else None,
        entries=entries,
        me=me,
        shows_on_leaderboards=user.shows_on_leaderboards,
    )
