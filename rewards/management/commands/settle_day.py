"""`manage.py settle_day YYYY-MM-DD [--owed]`: settles one local day now (what the nightly job does)."""

from __future__ import annotations

import argparse
import datetime

from django.core.management.base import BaseCommand

from rewards.selectors import settlement_owed
from rewards.services import settlement_run
from rewards.services.settlement import DEFAULT_CHUNK_SIZE, DEFAULT_WORKERS


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


class Command(BaseCommand):
    help = (
        "Settles a local day's carbon into coins (safe to repeat: each person is settled once per day). "
        "Carbon credited on or before a day after it was settled (a late review approval) waits for the "
        "next nightly settlement, and the command says how much; --owed settles it now."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("day", type=datetime.date.fromisoformat, help="YYYY-MM-DD, a local day")
        parser.add_argument(
            "--owed",
            action="store_true",
            help="once the day is settled, settle what was credited on or before it since (a new round "
            "of the day; safe to repeat, pays only what is still owed)",
        )
        parser.add_argument(
            "--chunk-size",
            type=_positive,
            default=DEFAULT_CHUNK_SIZE,
            help=f"people per transaction (default: {DEFAULT_CHUNK_SIZE})",
        )
        parser.add_argument(
            "--workers",
            type=_positive,
            default=DEFAULT_WORKERS,
            help=f"database connections at once (default: {DEFAULT_WORKERS})",
        )

    def handle(self, *args, day: datetime.date, owed: bool, chunk_size: int, workers: int, **options) -> None:
        run = settlement_run(day=day, chunk_size=chunk_size, workers=workers, owed=owed)
        round_label = f" round {run.round}" if run.round else ""
        self.stdout.write(
            f"settlement {run.day}{round_label}: {run.status}, {run.accounts_settled} accounts, "
            f"{run.carbon_mg_settled / 1000:.3f} g, {run.coins_minted} coins, "
            f"{run.duration_seconds or 0:.2f} s"
        )
        left = settlement_owed(day=day)
        if not left.people:
            self.stdout.write(f"nothing owed on or before {day}.")
            return
        self.stdout.write(
            f"still owed on or before {day}: {left.people} people, {left.carbon_mg / 1000:.3f} g "
            f"({left.coins} coins), credited after the day was settled. The next nightly settlement "
            f"pays them; to pay them now: manage.py settle_day {day} --owed"
        )
