"""The people's progress (`BadgeProgress`): carbon credited in all and runs of active days, counted day
by day.

Each day remembers what the progress has counted of it (`DailyCarbon.counted_carbon_mg`); a refresh
through a day counts the days whose credited carbon differs (the partial index of uncounted days: a
night's days and the few changed late), in set-based statements, and stores the progress of the
people they belong to: a summary folded on by the change, or for someone whose runs of days the
change may have cut or joined (an import of last quarter, a day whose carbon a merge's caps took
away), counted again from all their days. So a night costs what changed, not the history; both
badge runs and the all-time boards refresh it through yesterday, and each refresh is recorded
(`ProgressRefresh`), in order: a badge looks at the people changed since the refresh it last looked
through.

A refresh is a chunked run (`rewards.chunked`): planned over ranges of people holding about
`CHUNK_DAYS` uncounted days each, each chunk one transaction that counts its range and counts
itself done, which any number of workers share (`rewards.tasks.progress_refresh_chunked`) or one
caller runs in turn (`progress_refresh`). One refresh runs at a time: planning one while another is
unfinished joins it instead, so the numbers stamped on the people's progress follow the order the
refreshes ran in, and a refresh is finished only when every chunk of it has committed. Chunks
count under a shared lock; planning and what resets the counting (a merge) take it exclusively. A
person's progress is what their counted days say (`operations.invariants`: "progress counts the
days").
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from rewards.chunked import UNBOUNDED, ChunkOutcome, chunk_complete, chunked_run_start, run_followers_send
from rewards.gamification import statements
from rewards.models import ChunkedRun, ProgressRefresh, RunChunk

# Uncounted days a chunk takes (all days of its last person join it): each chunk is a transaction of
# its own, so the days it counts are locked against capture (a late sync of yesterday's steps) for
# about a second, not for a whole night's counting. settings.REWARDS_PROGRESS_CHUNK_DAYS overrides.
CHUNK_DAYS = 20_000

PROGRESS_JOB = "progress"

# How many times a chunk runs when a deadlock with capture ends it.
CHUNK_ATTEMPTS = 3


@dataclass(frozen=True)
class Refreshed:
    """A refresh's outcome: the refresh it ran or helped to finish (None when no day had changed),
    and the latest refresh finished when it ended (its own, or an earlier one): every change
    stamped with that number or below was committed then."""

    refresh: ProgressRefresh | None
    latest_number: int | None


def progress_refresh(*, through: datetime.date | None = None, chunk_days: int | None = None) -> Refreshed:
    """Counts every day through `through` (yesterday unless told) whose carbon changed since it was
    last counted and stores the progress of their people, chunk after chunk, each committing (or a
    savepoint inside a caller's transaction). A refresh unfinished (its chunks with workers, or
    lost with one) is finished first, by running its chunks here too; a chunk that a worker is
    counting is waited for, not counted twice."""
    through = through or timezone.localdate() - datetime.timedelta(days=1)
    refresh = None
    while True:
        run, pending = progress_chunked_start(through=through, chunk_days=chunk_days)
        if run is None:
            break
        for chunk_id in pending:
            progress_chunk_count(chunk_id=chunk_id)
        # A night's refresh finished here sends what follows it, as its last chunk task would have.
        run_followers_send(run.pk)
        refresh = ProgressRefresh.objects.get(pk=_refresh_number(run))
        if refresh.through_day >= through:
            break
    latest = refresh_latest()
    return Refreshed(refresh=refresh, latest_number=latest.pk if latest else None)


def progress_chunked_start(
    *,
    through: datetime.date,
    chunk_days: int | None = None,
    followers: list[dict] | None = None,
    followers_if_behind: list[dict] | None = None,
) -> tuple[ChunkedRun | None, list[int]]:
    """The refresh to run (its chunked run) and its chunks not done yet: a new one through `through`
    when none is unfinished, planned over the uncounted days; else the unfinished one, joined.
    (None, []) when no day through `through` is uncounted: nothing to refresh.

    `followers` (serialized signatures) are sent once the refresh is finished; when the unfinished
    refresh joined counts only through an earlier day, `followers_if_behind` instead (a refresh
    through `through` again, then those). A run cannot finish while this plans (its chunks hold the
    lock shared), so what is joined to it is sent.

    The ranges are walked before the lock is taken (a refresh after deploying walks everyone's
    history: a merge should not wait for that): any ranges cover every person, from the first id
    to the last open one, so days that change meanwhile are in one of them all the same.
    """
    chunk_days = chunk_days or getattr(settings, "REWARDS_PROGRESS_CHUNK_DAYS", CHUNK_DAYS)
    ranges = None
    if not _unfinished_runs().exists():
        with connection.cursor() as cursor:
            ranges = _ranges(cursor, through=through, chunk_days=chunk_days)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statements.PROGRESS_LOCK_EXCLUSIVE)
        unfinished = _unfinished_runs().first()
        if unfinished is not None:
            behind = ProgressRefresh.objects.get(pk=_refresh_number(unfinished)).through_day < through
            return chunked_run_start(
                job=PROGRESS_JOB,
                key=unfinished.key,
                ranges=[],
                followers=followers_if_behind if behind else followers,
            )
        if ranges is None:  # the refresh that was running has finished since
            ranges = _ranges(cursor, through=through, chunk_days=chunk_days)
        if not ranges:
            return None, []
        now = timezone.now()
        refresh = ProgressRefresh.objects.create(
            through_day=through,
            started_at=now,
            finished_at=None,
            days_counted=0,
            people_changed=0,
            people_recounted=0,
        )
        return chunked_run_start(
            job=PROGRESS_JOB, key=f"{PROGRESS_JOB}:{refresh.pk}", ranges=ranges, followers=followers
        )


def _unfinished_runs() -> QuerySet[ChunkedRun]:
    return ChunkedRun.objects.filter(job=PROGRESS_JOB, finished_at__isnull=True)


def _ranges(cursor, *, through: datetime.date, chunk_days: int) -> list[tuple[int, int]]:
    """(exclusive lower, inclusive upper) person ids of chunks of about `chunk_days` uncounted days
    through `through`, the last one open; none when no day is uncounted."""
    ranges = []
    after = 0
    while True:
        cursor.execute(
            statements.PROGRESS_CHUNK_END, {"after": after, "through": through, "rows": chunk_days}
        )
        (upper,) = cursor.fetchone()
        if upper is None:
            break
        ranges.append((after, upper))
        after = upper
    if ranges:
        ranges[-1] = (ranges[-1][0], UNBOUNDED)
    return ranges


def progress_chunks_pending() -> list[int]:
    """The chunks not done of the refresh still unfinished, if any: what a worker's catch-up sends
    again when the refresh's tasks were lost (a repeat of one a worker holds counts nothing)."""
    return list(
        RunChunk.objects.filter(run__job=PROGRESS_JOB, run__finished_at__isnull=True, done_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _refresh_number(run: ChunkedRun) -> int:
    return int(run.key.split(":")[1])


def progress_chunk_count(*, chunk_id: int) -> ChunkOutcome:
    """One chunk of a refresh, in one transaction: counts its people's changed days, stores their
    progress, adds to the refresh's totals and counts the chunk done (the last one finishes the
    refresh). A second delivery waits for the first (the chunk's row) and then counts nothing.

    The chunk locks its days in the order its scan meets them, a capture a person's days in day
    order: the two can deadlock, and PostgreSQL then ends one of them. A chunk ended so, all of it
    rolled back, runs again (`CHUNK_ATTEMPTS` times in all)."""
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            return _chunk_count_once(chunk_id=chunk_id)
        except OperationalError as error:
            if attempt == CHUNK_ATTEMPTS or not isinstance(error.__cause__, psycopg.errors.DeadlockDetected):
                raise
    raise AssertionError("unreachable")


def _chunk_count_once(*, chunk_id: int) -> ChunkOutcome:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statements.PROGRESS_LOCK_SHARED)
        chunk = (
            RunChunk.objects.select_for_update(of=("self",))
            .select_related("run")
            .filter(pk=chunk_id, done_at__isnull=True)
            .first()
        )
        if chunk is not None:
            refresh = ProgressRefresh.objects.get(pk=_refresh_number(chunk.run))
            _chunk_count(cursor, refresh=refresh, after=chunk.lower, upper=chunk.upper)
        return chunk_complete(chunk_id=chunk_id, on_finished=_refresh_finish)


def _chunk_count(cursor, *, refresh: ProgressRefresh, after: int, upper: int) -> None:
    """Counts the changed days of the people in (`after`, `upper`] and stores their progress; adds
    to the refresh's totals."""
    through = refresh.through_day
    # Statements of many small index probes whose estimates would otherwise buy JIT compilation
    # (600 ms of it on a small city's night, for under 300 ms of work).
    cursor.execute(statements.JIT_OFF)
    cursor.execute(statements.PROGRESS_CHANGES_DROP)
    cursor.execute(statements.PROGRESS_COUNT, {"through": through, "after": after, "upper": upper})
    days_counted = cursor.rowcount
    # The planner's estimates for the joins that follow (a chunk's days, or a handful).
    cursor.execute(statements.PROGRESS_CHANGES_ANALYZE)
    cursor.execute(statements.PROGRESS_PEOPLE)
    people_changed = cursor.rowcount
    cursor.execute(statements.PROGRESS_PEOPLE_ANALYZE)
    cursor.execute(statements.PROGRESS_RECOUNTED)
    (people_recounted,) = cursor.fetchone()
    cursor.execute(statements.PROGRESS_STORE, {"through": through, "refresh": refresh.pk})
    ProgressRefresh.objects.filter(pk=refresh.pk).update(
        days_counted=F("days_counted") + days_counted,
        people_changed=F("people_changed") + people_changed,
        people_recounted=F("people_recounted") + people_recounted,
    )


def _refresh_finish(run: ChunkedRun) -> None:
    ProgressRefresh.objects.filter(pk=_refresh_number(run)).update(finished_at=run.finished_at)


def refresh_latest() -> ProgressRefresh | None:
    """The latest refresh finished (every one before it is finished too: they run one at a time)."""
    return ProgressRefresh.objects.filter(finished_at__isnull=False).order_by("-id").first()


def progress_forget(*, user_ids: list[int]) -> None:
    """Forgets what was counted of these people's days, and their progress: the next refresh counts
    them again from all their days (a merge, which moves and caps days). Waits for chunks counting."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statements.PROGRESS_LOCK_EXCLUSIVE)
        cursor.execute(statements.PROGRESS_FORGET, {"people": list(user_ids)})
