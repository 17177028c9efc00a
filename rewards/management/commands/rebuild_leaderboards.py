"""`manage.py rebuild_leaderboards [today week month all_time]`: rebuilds boards from scratch now."""

from __future__ import annotations

import argparse
import datetime

from django.core.management.base import BaseCommand

from rewards.gamification.leaderboards import leaderboard_rebuild
from rewards.models import LeaderboardPeriod


def _period(value: str) -> str:
    # Checked here rather than with `choices`: argparse checks an empty `nargs="*"` list against the
    # choices too (Python < 3.12) and refuses the documented default, no period at all.
    if value not in LeaderboardPeriod.values:
        raise argparse.ArgumentTypeError(
            f"invalid period {value!r} (choose from {', '.join(LeaderboardPeriod.values)})"
        )
    return value


class Command(BaseCommand):
    help = "Rebuilds leaderboards from DailyCarbon (all periods by default); safe to run any time."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "periods",
            nargs="*",
            type=_period,
            metavar="period",
            help=f"one or more of {', '.join(LeaderboardPeriod.values)} (default: all of them)",
        )
        parser.add_argument(
            "--today", type=datetime.date.fromisoformat, help="build as if today were this local day"
        )

    def handle(self, *args, periods: list[str], today: datetime.date | None, **options) -> None:
        for period in periods or LeaderboardPeriod.values:
            result = leaderboard_rebuild(period=period, today=today)
            build = result.build
            self.stdout.write(
                f"{period} {build.period_start}…{build.through_day}: {build.people} people ranked "
                f"in {result.rank_seconds:.2f} s (version {build.pk}), old entries dropped in "
                f"{result.cleanup_seconds:.2f} s"
            )
