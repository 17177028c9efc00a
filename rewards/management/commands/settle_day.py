"""`manage.py settle_day YYYY-MM-DD`: settles one local day now (what the nightly job does)."""

from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand

from rewards.services import settlement_run
from rewards.services.settlement import DEFAULT_CHUNK_SIZE, DEFAULT_WORKERS


class Command(BaseCommand):
    help = "Settles a local day's carbon into coins (safe to repeat: each person is settled once per day)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("day", type=datetime.date.fromisoformat)
        parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
        parser.add_argument(
            "--workers", type=int, default=DEFAULT_WORKERS, help="database connections at once"
        )

    def handle(self, *args, day: datetime.date, chunk_size: int, workers: int, **options) -> None:
        run = settlement_run(day=day, chunk_size=chunk_size, workers=workers)
        self.stdout.write(
            f"settlement {run.day}: {run.status}, {run.accounts_settled} accounts, "
            f"{run.carbon_mg_settled / 1000:.3f} g, {run.coins_minted} coins, "
            f"{run.duration_seconds or 0:.2f} s"
        )
