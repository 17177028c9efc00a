"""Badges: a small registry of rules, each a class with a stable key, awarded set-based by a job.

A `Badge` row names its rule (`Badge.rule`, a key of `RULES`) and carries the rule's parameters
(`{"behaviour": "walk"}`, `{"days": 7}`, `{"carbon_mg": 10_000_000}`), so operators add a badge
("first bike ride", "500 kg reduced") without code. Each rule is one SQL query of the people who
qualify; the job inserts their awards with `ON CONFLICT DO NOTHING` on the unique (badge, person)
key, so a badge is awarded once, however often the job runs, even two at once.

A streak is a run of consecutive local days (Asia/Shanghai, as `DailyCarbon.day`) with any credited
carbon; runs are found set-based with the gaps-and-islands trick (day number − row number is
constant along a run), and each person's latest and longest kept in `PersonStreak` by the badge run
(the streak rule reads them; a person's read adds the days since).
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
from rewards.gamification import statements
from rewards.models import Badge, BadgeAward, RatingLevel


def _recent_people(since: datetime.date | None) -> sql.Composable:
    """Limits a rule to people with carbon credited since a day (incremental runs)."""
    return statements.RECENT_PEOPLE if since is not None else sql.SQL("")


class BadgeRule:
    """A rule of the registry: `key` is stored on badges, never renamed."""

    key: str = ""

    def prepare(self, since: datetime.date | None) -> None:
        """What the rule's query reads, brought up to date first (most rules read the source rows)."""

    def qualified_sql(self, parameters: dict, since: datetime.date | None) -> tuple[sql.Composable, dict]:
        """A SELECT of `user_id` of everyone who qualifies, and its parameters."""
        raise NotImplementedError


class FirstBehaviour(BadgeRule):
    """The first credited activity of a behaviour: {"behaviour": "walk"}."""

    key = "first_behaviour"

    def qualified_sql(self, parameters, since):
        return (
            statements.FIRST_BEHAVIOUR_QUALIFIED.format(
                since=statements.BEHAVIOUR_DAYS_SINCE if since else sql.SQL("")
            ),
            {"behaviour": parameters["behaviour"], "since": since},
        )


class CarbonTotal(BadgeRule):
    """Carbon reduced in all reaching a threshold: {"carbon_mg": 10000000}."""

    key = "carbon_total"

    def qualified_sql(self, parameters, since):
        return (
            statements.CARBON_TOTAL_QUALIFIED.format(recent=_recent_people(since)),
            {"carbon_mg": int(parameters["carbon_mg"]), "since": since},
        )


class Streak(BadgeRule):
    """Credited activity on `days` consecutive local days: {"days": 7}."""

    key = "streak"

    def prepare(self, since):
        streaks_refresh(since=since)

    def qualified_sql(self, parameters, since):
        return statements.STREAK_QUALIFIED, {"days": int(parameters["days"])}


class FirstDonation(BadgeRule):
    """A first donation of coins to a welfare project."""

    key = "first_donation"

    def qualified_sql(self, parameters, since):
        return statements.FIRST_DONATION_QUALIFIED, {}


class Ambassador(BadgeRule):
    """Rated dark green in a month whose rating is final."""

    key = "ambassador"

    def qualified_sql(self, parameters, since):
        return statements.AMBASSADOR_QUALIFIED, {"level": RatingLevel.DARK_GREEN.value}


RULES: dict[str, BadgeRule] = {
    rule.key: rule for rule in (FirstBehaviour(), CarbonTotal(), Streak(), FirstDonation(), Ambassador())
}


@transaction.atomic
def _award(*, badge: Badge, since: datetime.date | None) -> int:
    """Awards one badge to everyone who qualifies and has not got it (its rule prepared:
    `badges_award`); returns how many got it now."""
    qualified, params = RULES[badge.rule].qualified_sql(badge.parameters, since)
    params = {**params, "badge": badge.pk, "now": timezone.now()}
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
    """The award job: every active badge (or these), one set-based statement each, each rule prepared
    once however many badges use it (the streaks stored once for both streak badges). `since` limits
    the rules that scan history to people active since that day (the hourly run); None checks
    everyone."""
    badges = list(Badge.objects.filter(is_active=True) if badges is None else badges)
    for rule in {badge.rule for badge in badges}:
        RULES[rule].prepare(since)
    return {badge.key: _award(badge=badge, since=since) for badge in badges}


# --- A person's streak and badges -------------------------------------------------------------


@dataclass(frozen=True)
class Streaks:
    current_days: int
    longest_days: int
    last_active_day: datetime.date | None


def streaks_refresh(*, since: datetime.date | None = None, user: User | None = None) -> None:
    """Stores the streaks (`PersonStreak`) of one person, of the people active since a day (the
    hourly run), or of everyone: one set-based statement over their days."""
    if user is not None:
        people, params = statements.STREAKS_OF_PERSON, {"person": user.pk}
    else:
        people, params = _recent_people(since), {"since": since}
    with connection.cursor() as cursor:
        cursor.execute(statements.STREAKS_REFRESH.format(people=people), {**params, "now": timezone.now()})


def streaks_of(*, user: User, today: datetime.date | None = None) -> Streaks:
    """The current streak (alive while the person was active today or yesterday) and the longest.

    From the streaks stored at the last badge run and the person's active days after its latest run
    (those of the last hour or two): the cost does not grow with the person's history."""
    today = today or timezone.localdate()
    with connection.cursor() as cursor:
        cursor.execute(statements.STREAKS_READ, {"person": user.pk})
        run_start, run_end, longest, later = cursor.fetchone()
    if run_end is not None:
        run, previous = (run_end - run_start).days + 1, run_end
    else:
        longest, run, previous = 0, 0, None
    for day in later:
        run = run + 1 if previous is not None and day - previous == datetime.timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    alive = previous is not None and today - previous <= datetime.timedelta(days=1)
    return Streaks(current_days=run if alive else 0, longest_days=longest, last_active_day=previous)


def badges_of(*, user: User) -> list[tuple[Badge, datetime.datetime | None]]:
    """Every badge shown to people (active, or already earned) with when the person earned it."""
    earned = dict(BadgeAward.objects.filter(user=user).values_list("badge_id", "awarded_at"))
    return [
        (badge, earned.get(badge.pk))
        for badge in Badge.objects.order_by("sort_order", "key")
        if badge.is_active or badge.pk in earned
    ]
