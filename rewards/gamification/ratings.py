"""Monthly ratings, Quzhou's three greens: dark, medium and light green by carbon reduced.

Every account that reduced at least the minimum in the month is rated, set-based in one
`INSERT … SELECT` with window functions: `RANK()` gives how many reduced strictly more, `COUNT(*)
OVER ()` how many were rated. With the default thresholds a person is dark green when fewer than
10 % of rated accounts reduced more than them, medium green when fewer than 40 %, light green
otherwise — so people with the same carbon always get the same rating. The dark greens of a month
are its carbon reduction ambassadors.

Carbon is what `DailyCarbon` credited, plus the statements of other platforms the person
imported for that month where the platform's registration counts them in the rating.

The daily job rates the month of yesterday: provisional during the month, final after its last
day (on the 1st, or the first run after it when the nights of the 1st were lost), when the month's
report is announced. A rerun replaces that month's ratings; earlier months stay as history. Two
runs of one month at once (beat's daily job and the rebuild after a settlement) take turns on the
month's advisory lock.
"""

from __future__ import annotations

import datetime
import json

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import NotificationKind, User
from accounts.notifications.services import notifications_insert
from rewards.gamification import statements
from rewards.models import MonthlyRating, RatingLevel, RatingRun, RatingThresholds


def month_last_day(month: datetime.date) -> datetime.date:
    return (month.replace(day=28) + datetime.timedelta(days=4)).replace(day=1) - datetime.timedelta(days=1)


def thresholds_in_force() -> RatingThresholds:
    return RatingThresholds.objects.order_by("-id").first() or RatingThresholds()


@transaction.atomic
def ratings_rate_month(*, month: datetime.date, through_day: datetime.date | None = None) -> RatingRun:
    """Rates every active account for the month (its first day), counting days up to `through_day`."""
    month = month.replace(day=1)
    through_day = min(through_day or month_last_day(month), month_last_day(month))
    thresholds = thresholds_in_force()
    params = {
        "month": month,
        "through": through_day,
        "dark": thresholds.dark_green_top_percent,
        "medium": thresholds.dark_green_top_percent + thresholds.medium_green_next_percent,
        "minimum": thresholds.light_green_minimum_mg,
        "dark_green": RatingLevel.DARK_GREEN.value,
        "medium_green": RatingLevel.MEDIUM_GREEN.value,
        "light_green": RatingLevel.LIGHT_GREEN.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(statements.MONTHLY_RATINGS_LOCK, params)
        cursor.execute(statements.MONTHLY_RATINGS_DELETE, params)
        cursor.execute(statements.MONTHLY_RATINGS_INSERT, params)
        cursor.execute(statements.MONTHLY_RATING_COUNTS, params)
        counts = dict(cursor.fetchall())
    run, _created = RatingRun.objects.update_or_create(
        month=month,
        defaults={
            "through_day": through_day,
            "dark_green_top_percent": thresholds.dark_green_top_percent,
            "medium_green_next_percent": thresholds.medium_green_next_percent,
            "light_green_minimum_mg": thresholds.light_green_minimum_mg,
            "rated": sum(counts.values()),
            "dark_green": counts.get(RatingLevel.DARK_GREEN, 0),
            "medium_green": counts.get(RatingLevel.MEDIUM_GREEN, 0),
            "light_green": counts.get(RatingLevel.LIGHT_GREEN, 0),
            "finished_at": timezone.now(),
        },
    )
    return run


def ratings_rate_recent(*, today: datetime.date | None = None) -> RatingRun:
    """The daily job: rates the month of yesterday up to yesterday (final on the 1st).

    The month before it, if its rating is still provisional, is closed first: the nights of the 1st
    were lost (beat or the broker down) and a later run, such as a worker's catch-up, is the first
    after the month ended. Only that month: each run closes the month that ended before it."""
    yesterday = (today or timezone.localdate()) - datetime.timedelta(days=1)
    month = yesterday.replace(day=1)
    previous_month = (month - datetime.timedelta(days=1)).replace(day=1)
    if RatingRun.objects.filter(
        month=previous_month, through_day__lt=month_last_day(previous_month)
    ).exists():
        ratings_month_close(month=previous_month)
    if yesterday == month_last_day(month):
        return ratings_month_close(month=month)
    return ratings_rate_month(month=month, through_day=yesterday)


@transaction.atomic
def ratings_month_close(*, month: datetime.date) -> RatingRun:
    """A month's final rating, and its report announced with it: a rating is final only once everyone
    active in the month is told (once a person: the notification is keyed by the month)."""
    run = ratings_rate_month(month=month)
    monthly_reports_announce(month=run.month, last_day=run.through_day)
    return run


def monthly_reports_announce(*, month: datetime.date, last_day: datetime.date) -> int:
    """Tells everyone who reduced carbon in the month that its report is ready (set-based, once)."""
    return notifications_insert(
        kind=NotificationKind.MONTHLY_REPORT_READY,
        rows=statements.ACTIVE_IN_MONTH,
        params={
            "m_params": json.dumps({"month": month.strftime("%Y-%m"), "start": month.isoformat()}),
            "m_event": f"monthly_report:{month:%Y-%m}",
            "m_first": month,
            "m_last": last_day,
        },
    ).notifications


def rating_history_of(*, user: User, months: int = 24) -> list[MonthlyRating]:
    return list(MonthlyRating.objects.filter(user=user).order_by("-month")[:months])


def rating_of(*, user_id: int, month: datetime.date) -> MonthlyRating | None:
    return MonthlyRating.objects.filter(user_id=user_id, month=month.replace(day=1)).first()


def final_runs() -> dict[datetime.date, bool]:
    return {run.month: run.is_final for run in RatingRun.objects.all()}


def ambassadors_of(*, month: datetime.date) -> QuerySet[MonthlyRating]:
    """The month's dark greens who show on leaderboards, by carbon reduced."""
    return (
        MonthlyRating.objects.filter(
            month=month.replace(day=1),
            level=RatingLevel.DARK_GREEN,
            user__shows_on_leaderboards=True,
            user__closed_at__isnull=True,
        )
        .select_related("user__district")
        .order_by("city_rank")
    )
