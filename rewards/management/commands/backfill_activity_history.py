"""An operator's audited back-fill of a partner's history older than the history window.

    manage.py backfill_activity_history --partner city-transit rides-2024.csv \
        --operator alice --reason "Transit card history of 2024, ticket OPS-1234"

The history import (`manage.py import_activity_history`, the same file options) rejects lines older
than `ACTIVITIES_HISTORY_WINDOW_DAYS` as `occurred_before_history_window`. This command takes them,
under the same rules otherwise (consent from the moment of authorization, dedupe, caps,
plausibility, each day credited with the methodology version in force that day; lines before the
first version are still `no_factor_in_effect`), and:

- settles each chunk's back-filled days in the chunk's own transaction, each day at the coin rate in
  force that day, in a lot earned that day that expires as that day's coins do — so a day whose
  coins would have expired by now has them expire at the next expiry run
  (`rewards.services.backfill`); the nightly settlement never sees that carbon at today's rate;
- is recorded in the admin's history of the partner (Django's `LogEntry`: who, when, which file,
  why, and what came of it), once when it starts and once when it ends.

The operator is a staff account named by `--operator`; `--reason` is required.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.core.management.base import CommandError

from accounts.models import User
from activities.management.commands.import_activity_history import Command as ImportCommand
from activities.models import Partner
from rewards.services.backfill import backfill_days_settle


class Command(ImportCommand):
    help = (
        "Back-fill a partner's history older than the history window (audited): each day credited with "
        "its own methodology and settled at its own coin rate, with its own expiry."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--operator", required=True, help="The username of the staff member running it.")
        parser.add_argument(
            "--reason", required=True, help="Why (a ticket, an agreement): kept in the audit."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        operator = User.objects.filter(username=options["operator"], is_staff=True, is_active=True).first()
        if operator is None:
            raise CommandError(f"no active staff account {options['operator']!r}")
        reason = options["reason"].strip()
        if not reason:
            raise CommandError("--reason must say why")
        partner = self.partner_of(options)
        self._audit(operator, partner, f"History back-fill started: {options['path']} — {reason}")
        try:
            totals = self.run_import(
                options, partner=partner, is_backfill=True, on_credited=self._settle_days
            )
        except BaseException as error:
            self._audit(operator, partner, f"History back-fill stopped: {options['path']} — {error}")
            raise
        self._audit(
            operator,
            partner,
            f"History back-fill finished: {options['path']} — {totals['lines']} lines, "
            f"{totals['accepted']} accepted, {totals['duplicate']} duplicate, "
            f"{totals['held_for_review']} held, {totals['rejected']} rejected",
        )

    @staticmethod
    def _settle_days(days, key: str) -> None:
        backfill_days_settle(days=days, key=key)

    @staticmethod
    def _audit(operator: User, partner: Partner, message: str) -> None:
        LogEntry.objects.log_actions(
            user_id=operator.pk,
            queryset=[partner],
            action_flag=CHANGE,
            change_message=message[:2000],
            single_object=True,
        )
