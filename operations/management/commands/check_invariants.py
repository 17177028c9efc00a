"""`manage.py check_invariants`: every platform invariant (ledger, coupons, caps, settlement, keys)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from operations.invariants import invariant_violations, invariants_checked


class Command(BaseCommand):
    help = (
        "Checks the invariants of issue 9 across the apps: the ledger adds up, coupons within stock and "
        "limits and paid once, credited carbon within caps and stored once, each person and day settled "
        "once, each idempotency key with at most one effect. Exits non-zero when any is violated."
    )

    def handle(self, *args, **options) -> None:
        violations = invariant_violations()
        if not violations:
            self.stdout.write(f"invariants: OK, {invariants_checked()} checked.")
            return
        self.stdout.write(f"invariants: FAILED, {len(violations)} violation(s)")
        for violation in violations:
            self.stdout.write(violation)
        raise CommandError(f"{len(violations)} invariant violation(s)", returncode=1)
