"""`manage.py make_city --accounts N --days D [--seed S]`: a synthetic city for the benchmarks."""

from __future__ import annotations

import datetime
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from merchants.city import city_complete, city_generate


class Command(BaseCommand):
    help = (
        "Generates a realistic, deterministic city into an empty database with COPY: people, friends, "
        "consents, partners, merchants and offers, and D days of activity ending yesterday; every day "
        "but the last is settled. Says how long it took."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--accounts", type=int, help="People in the city (required unless --complete).")
        parser.add_argument("--days", type=int, help="Days of activity (required unless --complete).")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--last-day",
            type=datetime.date.fromisoformat,
            default=None,
            help="The last local day of activity (default: yesterday). With the seed, fixes the city.",
        )
        parser.add_argument(
            "--no-settle", action="store_true", help="Leave every day owed (no wallets, no ledger)."
        )
        parser.add_argument(
            "--complete",
            action="store_true",
            help="Finish a city whose generation was stopped: merchants, statistics, settlement.",
        )

    def handle(self, *args, **options) -> None:
        started = time.perf_counter()
        if options["complete"]:
            summary = city_complete(seed=options["seed"], progress=lambda message: self.stdout.write(message))
            self.stdout.write(f"  {summary.lines()[-1]}")
            self.stdout.write(self.style.SUCCESS(f"city completed in {time.perf_counter() - started:,.1f} s"))
            return
        if options["accounts"] is None or options["days"] is None:
            raise CommandError("--accounts and --days are required (or --complete)")
        self.stdout.write(
            f"generating a city of {options['accounts']:,} accounts and {options['days']} days "
            f"(seed {options['seed']}) …"
        )
        summary = city_generate(
            accounts=options["accounts"],
            days=options["days"],
            seed=options["seed"],
            last_day=options["last_day"],
            settle=not options["no_settle"],
            progress=lambda message: self.stdout.write(message),
        )
        for line in summary.lines():
            self.stdout.write(f"  {line}")
        self.stdout.write(self.style.SUCCESS(f"city generated in {time.perf_counter() - started:,.1f} s"))
