"""Badges: a small registry of rules, each a class with a stable key, awarded set-based by a job.

A `Badge` row names its rule (`Badge.rule`, a key of `RULES`) and carries the rule's parameters
(`{"behaviour": "walk"}`, `{"days": 7}`, `{"carbon_mg": 10_000_000}`), so operators add a badge
("first bike ride", "500 kg reduced") without code. Each rule is one SQL query of the people who
qualify; the job inserts their awards with `ON CONFLICT DO NOTHING` on the unique (badge, person)
key, so a badge is awarded once, however often the job runs, even two at once.

Two runs, each first refreshing the people's progress through yesterday
(`rewards.gamification.progress`: it counts the days changed since the last refresh, not the
history), so that yesterday's steps synced this morning count within the hour. The hourly run looks
only at what the last hours changed: the people with carbon credited since a day and not yet settled
(through the partial index of unsettled days), the behaviours of those days, the donations since
then, the latest final month's ratings. The full run (nightly after the settlement, `manage.py
award_badges`, the admin's action) looks at everyone's progress; it also sees what an hourly run
cannot: days credited long after they happened (an import of last quarter, a late approval from
review), and ratings made final. Each badge remembers the refresh of the progress it last looked
through (`Badge.looked_through_refresh`; none for a badge new or changed, which looks at everyone
once): the run looks at the people whose progress changed since (a probe of a first behaviour's
days each), donations and ratings made final since a day before that refresh began.

A person's progress is their summary and their days after it (`PROGRESS`): a streak is a run of
consecutive local days (Asia/Shanghai, as `DailyCarbon.day`) with any credited carbon. So the
hourly run and a person's read cost the days since the last refresh, not the person's history.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from accounts.models import NotificationKind, User
from accounts.notifications.services import notifications_insert
from core.db import prepared_cursor
from core.local_time import LOCAL_TZ
from rewards.gamification import statements
from rewards.gamification.progress import progress_refresh
from rewards.models import Badge, BadgeAward, RatingLevel


@dataclass(frozen=True)
class Window:
    """What a run looks at: `since` None for the full run (everyone), else the first local day of the
    hourly run's candidates."""

    since: datetime.date | None
    today: datetime.date
    # The full run: the refresh of the progress its badges that read progress all looked through
    # (0 when one has not looked yet): the people changed since are those it gathers.
    gathered_after: int = 0

    @property
    def full(self) -> bool:
        return self.since is None

    def params(self) -> dict:
        """The recent days of the hourly run are those since `since`; those of the full run are today's
        (its summaries reach yesterday)."""
        since = self.today if self.since is None else self.since
        return {
            "since": since,
            "since_moment": datetime.datetime.combine(since, datetime.time.min, tzinfo=LOCAL_TZ),
            "gathered_after": self.gathered_after,
        }

    def progress(self) -> sql.Composable:
        """The progress of the people the run looks at (`statements.PROGRESS`)."""
        people = statements.CHANGED_AND_RECENT_PEOPLE if self.full else statements.RECENT_PEOPLE
        return statements.progress_of(people)


class BadgeRule:
    """A rule of the registry: `key` is stored on badges, never renamed."""

    key: str = ""
    # Whether the rule reads the people's progress (the table `badge_progress` of the run), which the
    # run gathers once before the awards, after refreshing it.
    reads_progress: bool = False

    def qualified_sql(self, badge: Badge, window: Window) -> tuple[sql.Composable, dict]:
        """A SELECT of `user_id` of everyone who qualifies for `badge` (its parameters), and the
        SELECT's parameters."""
        raise NotImplementedError


class FirstBehaviour(BadgeRule):
    """The first credited activity of a behaviour: {"behaviour": "walk"}."""

    key = "first_behaviour"

    def qualified_sql(self, badge, window):
        params = {"behaviour": badge.parameters["behaviour"]}
        if window.full:
            return statements.FIRST_BEHAVIOUR_CHANGED, {**params, "looked": badge.looked_through_refresh or 0}
        return statements.FIRST_BEHAVIOUR_ON_DAYS.format(days=statements.RECENT_DAYS), params


class CarbonTotal(BadgeRule):
    """Carbon reduced in all reaching a threshold: {"carbon_mg": 10000000}."""

    key = "carbon_total"
    reads_progress = True

    def qualified_sql(self, badge, window):
        return statements.CARBON_TOTAL_QUALIFIED, {"carbon_mg": int(badge.parameters["carbon_mg"])}


class Streak(BadgeRule):
    """Credited activity on `days` consecutive local days: {"days": 7}."""

    key = "streak"
    reads_progress = True

    def qualified_sql(self, badge, window):
        return statements.STREAK_QUALIFIED, {"days": int(badge.parameters["days"])}


class FirstDonation(BadgeRule):
    """A first donation of coins to a welfare project."""

    key = "first_donation"

    def qualified_sql(self, badge, window):
        if not window.full:
            since = statements.DONATED_SINCE
        elif badge.looked_through_refresh is None:
            since = sql.SQL("")
        else:
            since = statements.DONATED_SINCE_LOOKED
        return statements.FIRST_DONATION_QUALIFIED.format(since=since), {
            "looked": badge.looked_through_refresh
        }


class Ambassador(BadgeRule):
    """Rated dark green in a month whose rating is final."""

    key = "ambassador"

    def qualified_sql(self, badge, window):
        if not window.full:
            months = statements.LATEST_FINAL_MONTH
        elif badge.looked_through_refresh is None:
            months = statements.FINAL_MONTHS
        else:
            months = statements.FINAL_MONTHS_SINCE_LOOKED
        params = {"level": RatingLevel.DARK_GREEN.value, "looked": badge.looked_through_refresh}
        return statements.AMBASSADOR_QUALIFIED.format(months=months), params


RULES: dict[str, BadgeRule] = {
    rule.key: rule for rule in (FirstBehaviour(), CarbonTotal(), Streak(), FirstDonation(), Ambassador())
}


@transaction.atomic
def _award(*, badge: Badge, window: Window) -> int:
    """Awards one badge to everyone who qualifies and has not got it; returns how many got it now."""
    qualified, params = RULES[badge.rule].qualified_sql(badge, window)
    params = {**window.params(), **params, "badge": badge.pk, "now": timezone.now()}
    with connection.cursor() as cursor:
        cursor.execute(statements.BADGE_AWARD.format(qualified=qualified), params)
        awarded = cursor.rowcount
    if awarded:
        # Who got it just now (this statement's `now`), told in one INSERT … SELECT.
        notifications_insert(
            kind=NotificationKind.BADGE_EARNED,
            rows=statements.AWARDED_NOW,
            params={
                "b_badge": badge.pk,
                "b_now": params["now"],
                "b_params": json.dumps({"key": badge.key, "name": badge.name, "name_en": badge.name_en}),
                "b_event": f"badge:{badge.key}",
            },
        )
    return awarded


def badges_award(
    *, since: datetime.date | None = None, badges: Iterable[Badge] | None = None
) -> dict[str, int]:
    """The award job: every active badge (or these), one set-based statement each, in one
    transaction. `since` makes it the hourly run, which looks at the people with carbon credited
    since that day and not yet settled; None, the full run, which looks at whatever changed since
    each badge last looked (everything, for a badge that has not). Both refresh the progress through
    yesterday first (its own transactions, committed in chunks); the full run records on its badges
    the latest refresh when that ended, whose changes and all before it the awards then see. The
    people's progress is read once, however many badges read it."""
    today = timezone.localdate()
    refreshed = progress_refresh(through=today - datetime.timedelta(days=1))
    return _badges_award(since=since, badges=badges, today=today, looked_through=refreshed.latest_number)


@transaction.atomic
def _badges_award(
    *,
    since: datetime.date | None,
    badges: Iterable[Badge] | None,
    today: datetime.date,
    looked_through: int | None,
) -> dict[str, int]:
    badges = list(Badge.objects.filter(is_active=True) if badges is None else badges)
    reading = [badge for badge in badges if RULES[badge.rule].reads_progress]
    gathered_after = min((badge.looked_through_refresh or 0 for badge in reading), default=0)
    window = Window(since=since, today=today, gathered_after=gathered_after)
    if reading:
        with connection.cursor() as cursor:
            cursor.execute(statements.PROGRESS_GATHER_DROP)
            cursor.execute(statements.PROGRESS_GATHER.format(progress=window.progress()), window.params())
    awarded = {badge.key: _award(badge=badge, window=window) for badge in badges}
    if window.full and looked_through is not None:
        Badge.objects.filter(pk__in=[badge.pk for badge in badges]).update(
            looked_through_refresh=looked_through
        )
    return awarded


# --- A person's progress and badges -----------------------------------------------------------


@dataclass(frozen=True)
class Streaks:
    current_days: int
    longest_days: int
    last_active_day: datetime.date | None


def streaks_of(*, user: User, today: datetime.date | None = None) -> Streaks:
    """The current streak (alive while the person was active today or yesterday) and the longest.

    From the person's progress stored by the last refresh and their days after it, in one
    statement: the cost does not grow with the person's history."""
    today = today or timezone.localdate()
    with prepared_cursor() as cursor:
        cursor.execute(statements.PROGRESS_OF_PERSON, {"person": user.pk})
        _, _, longest, run_start, run_end = cursor.fetchone()
    if run_end is None:
        return Streaks(current_days=0, longest_days=0, last_active_day=None)
    alive = today - run_end <= datetime.timedelta(days=1)
    current = (run_end - run_start).days + 1 if alive else 0
    return Streaks(current_days=current, longest_days=longest, last_active_day=run_end)


def badges_of(*, user: User) -> list[tuple[Badge, datetime.datetime | None]]:
    """Every badge shown to people (active, or already earned) with when the person earned it."""
    earned = dict(BadgeAward.objects.filter(user=user).values_list("badge_id", "awarded_at"))
    return [
        (badge, earned.get(badge.pk))
        for badge in Badge.objects.order_by("sort_order", "key")
        if badge.is_active or badge.pk in earned
    ]
