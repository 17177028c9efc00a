"""`manage.py ledger_audit`: checks the ledger adds up; prints every difference, exits 1 if any."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from rewards.audit import ledger_audit


class Command(BaseCommand):
    help = (
        "Checks that every ledger transaction sums to zero, that each cached balance equals the sum of "
        "its entries (and each wallet's coin lots), and that wallets + projects + merchants + expired "
        "= minted. Exits non-zero when anything differs."
    )

    def handle(self, *args, **options) -> None:
        report = ledger_audit()
        for line in report.lines():
            self.stdout.write(line)
        if not report.is_balanced:
            raise CommandError(f"the ledger does not add up: {len(report.problems)} problem(s)", returncode=1)
        # The platform's other invariants (coupons, caps, settlement, idempotency keys) span the apps
        # to the right of rewards, so they live in config; called by name, not imported.
        call_command("check_invariants", stdout=self.stdout)
