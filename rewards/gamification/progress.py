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

Refreshes run one at a time (a transaction-level advisory lock), as does what resets the counting
(a merge): each reads what the last one counted. A person's progress is what their counted days
say (`operations.invariants`: "progress counts the days").
"""

from __future__ import annotations

import datetime

from django.db import connection, transaction
from django.utils import timezone

from rewards.gamification import statements
from rewards.models import ProgressRefresh


def progress_refresh(*, through: datetime.date | None = None) -> ProgressRefresh | None:
    """Counts every day through `through` (yesterday unless told) whose carbon changed since it was
    last counted and stores the progress of their people; returns the refresh as recorded, or None
    when no day had changed (nothing is recorded). In the caller's transaction if there is one (the
    badge runs'), holding the refreshes' lock to its end."""
    through = through or timezone.localdate() - datetime.timedelta(days=1)
    started = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statements.PROGRESS_LOCK)
        # Statements of many small index probes whose estimates would otherwise buy JIT compilation
        # (600 ms of it on a small city's night, for under 300 ms of work).
        cursor.execute(statements.JIT_OFF)
        cursor.execute(statements.PROGRESS_CHANGES_DROP)
        cursor.execute(statements.PROGRESS_COUNT, {"through": through})
        days = cursor.rowcount
        if not days:
            return None
        # The planner's estimates for the joins that follow (a night's days, or a handful).
        cursor.execute(statements.PROGRESS_CHANGES_ANALYZE)
        cursor.execute(statements.PROGRESS_PEOPLE)
        people = cursor.rowcount
        cursor.execute(statements.PROGRESS_PEOPLE_ANALYZE)
        cursor.execute(statements.PROGRESS_RECOUNTED)
        (recounted,) = cursor.fetchone()
        refresh = ProgressRefresh.objects.create(
            through_day=through,
            started_at=started,
            finished_at=started,
            days_counted=days,
            people_changed=people,
            people_recounted=recounted,
        )
        cursor.execute(statements.PROGRESS_STORE, {"through": through, "now": started, "refresh": refresh.pk})
        refresh.finished_at = timezone.now()
        refresh.save(update_fields=["finished_at"])
    return refresh


def refresh_latest() -> ProgressRefresh | None:
    """The latest refresh recorded: under the refreshes' lock (after `progress_refresh` in the same
    transaction), the one whose changes everything read since has seen."""
    return ProgressRefresh.objects.order_by("-id").first()


def progress_forget(*, user_ids: list[int]) -> None:
    """Forgets what was counted of these people's days, and their progress: the next refresh counts
    them again from all their days (a merge, which moves and caps days)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statements.PROGRESS_LOCK)
        cursor.execute(statements.PROGRESS_FORGET, {"people": list(user_ids)})
