"""`manage.py rate_month [YYYY-MM]`: rates a month now (default: the month of yesterday, up to it)."""

from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand, CommandError

from rewards.gamification.ratings import ratings_rate_month, ratings_rate_recent


class Command(BaseCommand):
    help = (
        "Rates every active account for a month: dark, medium or light green. Replaces that month's ratings."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "month", nargs="?", help="YYYY-MM (default: the month of yesterday, as the nightly job rates it)"
        )

    def handle(self, *args, month: str | None, **options) -> None:
        if month:
            try:
                first = datetime.date.fromisoformat(f"{month}-01")
            except ValueError as error:
                raise CommandError("month must be YYYY-MM") from error
            run = ratings_rate_month(month=first)
        else:
            run = ratings_rate_recent()
        self.stdout.write(
            f"ratings {run.month:%Y-%m} through {run.through_day}: {run.rated} rated, "
            f"{run.dark_green} dark green, {run.medium_green} medium green, {run.light_green} light green"
            f"{' (final)' if run.is_final else ' (provisional)'}"
        )
