"""The people's progress (`BadgeProgress`): carbon credited in all and runs of active days, counted day
by day.

Each day remembers what the progress has counted of it (`DailyCarbon.counted_carbon_mg`); a refresh
through a day counts the days whose credited carbon differs (the partial index of uncounted days: a
night's days and the few changed late), in set-based statements, and stores the progress of the
people they belong to: a summary folded on by the change, or for someone whose runs of days the
change may have cut or joined (an import of last quarter, a day whose carbon a merge's caps took
away), counted again from all their days. So a night costs what changed, not the history; both
badge runs and the all-time boards refresh it through yesterday, and each refresh that counted
something is recorded (`ProgressRefresh`), in order: a badge looks at the people changed since the
refresh it last looked through.

Refreshes run one at a time, whole (an advisory lock the session holds across its chunks, each a
transaction of its own), as does what resets the counting (a merge): each reads what the last one
counted. A person's progress is what their counted days say (`operations.invariants`: "progress
counts the days").
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from rewards.gamification import statements
from rewards.models import ProgressRefresh

# Uncounted days a chunk takes (all days of its last person join it): each chunk is a transaction of
# its own, so the days it counts are locked against capture (a late sync of yesterday's steps) for
# about a second, not for a whole night's counting.
CHUNK_DAYS = 20_000


@dataclass(frozen=True)
class Refreshed:
    """A refresh's outcome: what it recorded (None when no day had changed), and the latest refresh
    recorded when it ended (its own, or an earlier one): every change stamped with that number or
    below was committed then."""

    refresh: ProgressRefresh | None
    latest_number: int | None


@contextmanager
def _refreshes_lock() -> Iterator[None]:
    """The refreshes' lock, held by this session across the chunks' transactions."""
    with connection.cursor() as cursor:
        cursor.execute(statements.PROGRESS_LOCK)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(statements.PROGRESS_UNLOCK)


def progress_refresh(*, through: datetime.date | None = None, chunk_days: int = CHUNK_DAYS) -> Refreshed:
    """Counts every day through `through` (yesterday unless told) whose carbon changed since it was
    last counted and stores the progress of their people, in person-ordered chunks that each commit
    (savepoints, inside a caller's transaction). Refreshes run one at a time, whole: the numbers
    stamped on the people's progress follow the order they ran in."""
    through = through or timezone.localdate() - datetime.timedelta(days=1)
    refresh = None
    with _refreshes_lock():
        after = 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    statements.PROGRESS_CHUNK_END, {"after": after, "through": through, "rows": chunk_days}
                )
                (upper,) = cursor.fetchone()
                if upper is None:
                    break
                if refresh is None:
                    now = timezone.now()
                    refresh = ProgressRefresh.objects.create(
                        through_day=through,
                        started_at=now,
                        finished_at=now,
                        days_counted=0,
                        people_changed=0,
                        people_recounted=0,
                    )
                _chunk_count(cursor, refresh=refresh, through=through, after=after, upper=upper)
            after = upper
        latest = refresh_latest()
    return Refreshed(refresh=refresh, latest_number=latest.pk if latest else None)


def _chunk_count(cursor, *, refresh: ProgressRefresh, through: datetime.date, after: int, upper: int) -> None:
    """One chunk: counts its people's changed days and stores their progress; adds to the refresh's
    totals, recorded with the chunk."""
    # Statements of many small index probes whose estimates would otherwise buy JIT compilation
    # (600 ms of it on a small city's night, for under 300 ms of work).
    cursor.execute(statements.JIT_OFF)
    cursor.execute(statements.PROGRESS_CHANGES_DROP)
    cursor.execute(statements.PROGRESS_COUNT, {"through": through, "after": after, "upper": upper})
    refresh.days_counted += cursor.rowcount
    # The planner's estimates for the joins that follow (a chunk's days, or a handful).
    cursor.execute(statements.PROGRESS_CHANGES_ANALYZE)
    cursor.execute(statements.PROGRESS_PEOPLE)
    refresh.people_changed += cursor.rowcount
    cursor.execute(statements.PROGRESS_PEOPLE_ANALYZE)
    cursor.execute(statements.PROGRESS_RECOUNTED)
    refresh.people_recounted += cursor.fetchone()[0]
    cursor.execute(statements.PROGRESS_STORE, {"through": through, "refresh": refresh.pk})
    refresh.finished_at = timezone.now()
    refresh.save(update_fields=["days_counted", "people_changed", "people_recounted", "finished_at"])


def refresh_latest() -> ProgressRefresh | None:
    """The latest refresh recorded."""
    return ProgressRefresh.objects.order_by("-id").first()


def progress_forget(*, user_ids: list[int]) -> None:
    """Forgets what was counted of these people's days, and their progress: the next refresh counts
    them again from all their days (a merge, which moves and caps days). Waits for a refresh running."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statements.PROGRESS_LOCK_FOR_TRANSACTION)
        cursor.execute(statements.PROGRESS_FORGET, {"people": list(user_ids)})
