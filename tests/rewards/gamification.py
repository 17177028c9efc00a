"""Helpers of the gamification tests: people with carbon on given days, friendships."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.db import connection
from django.utils import timezone

from accounts.models import District, Friendship, User
from tests.accounts.factories import UserFactory
from tests.rewards.factories import carbon_credit


def today() -> datetime.date:
    return timezone.localdate()


def yesterday() -> datetime.date:
    return today() - datetime.timedelta(days=1)


def person_with(
    carbon_mg: int, *, day: datetime.date | None = None, district: District | None = None, **fields
) -> User:
    """A person with `carbon_mg` credited on a day (yesterday by default)."""
    if district is not None:
        fields["district"] = district
    user = UserFactory(**fields)
    if carbon_mg:
        carbon_credit(user, day or yesterday(), carbon_mg)
    return user


def befriend(first: User, second: User) -> None:
    now = timezone.now()
    Friendship.objects.create(user=first, friend=second, created_at=now)
    Friendship.objects.create(user=second, friend=first, created_at=now)


def _reads_so_far(table: str) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq_scan, seq_tup_read + COALESCE(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables"
            " WHERE relname = %s",
            [table],
        )
        return cursor.fetchone()


def reads_of(table: str, action: Callable[[], object]) -> tuple[int, int]:
    """The sequential scans of a table and the rows read from it while `action` runs (this
    transaction's statistics)."""
    scans_before, rows_before = _reads_so_far(table)
    action()
    scans_after, rows_after = _reads_so_far(table)
    return scans_after - scans_before, rows_after - rows_before
