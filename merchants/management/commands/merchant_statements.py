"""Writes the platform's monthly statement of every merchant as CSV, for settling with them.

Usage: manage.py merchant_statements 2026-11 > statements-2026-11.csv
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from merchants.apis import STATEMENT_COLUMNS
from merchants.exports import csv_bytes
from merchants.selectors import Month, monthly_statements


class Command(BaseCommand):
    help = "Print the monthly statement of every merchant (coins cleared, from the ledger) as CSV."

    def add_arguments(self, parser) -> None:
        parser.add_argument("month", help="YYYY-MM, a local (Asia/Shanghai) month")

    def handle(self, *args, **options) -> None:
        try:
            month = Month.parse(options["month"])
        except ValueError:
            raise CommandError("Give the month as YYYY-MM.") from None
        rows = monthly_statements(month=month)
        self.stdout.write(csv_bytes(rows, STATEMENT_COLUMNS).decode("utf-8"), ending="")
