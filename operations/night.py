"""Tonight's jobs, now: what the dashboard's "Run tonight's jobs now" queues (superusers only).

The same tasks beat sends at night (config/settings/integrations/celery.py), in the night's order,
for the day that is today: its settlement as chunk tasks (which also settles anything still owed
from earlier days); when its last chunk commits, what settlement makes stale (ratings, badges, then
this week's, month's and all-time boards a task a board), today's board and the ledger audit, and
beside them the chunked expiry of coins (each chunk raising its own wallets' 30- and 7-day
reminders). The expiry of coupons and the imported statements' rounds of coins are sent at once.
Every one of them is idempotent, so a press after the night ran, or twice, changes nothing more (a
day already settled sends what follows at once).

Settling today early has one consequence, said on the button: today's run is then done, so carbon
credited later today is settled with tomorrow's (the next night after tonight's, which finds
today settled). That is what the demo tour wants: the coins arrive now.

Each press is audited like an operator's change in the admin: a LogEntry on each scheduled job it
ran (the job's History in the admin, and the admin's recent actions), and a log line.
"""

from __future__ import annotations

import datetime
import logging

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django_celery_beat.models import PeriodicTask

logger = logging.getLogger(__name__)

# The scheduled jobs a press runs, by their names in CELERY_BEAT_SCHEDULE (for the audit).
NIGHT_JOBS = (
    "rewards.settle_yesterday",
    "rewards.leaderboards_closed",
    "rewards.ratings",
    "rewards.badges",
    "rewards.leaderboards_today",
    "rewards.ledger_audit",
    "rewards.expire_coins",
    "rewards.statement_rounds",
    "merchants.expire_coupons",
)


def night_jobs_enqueue(*, operator: AbstractBaseUser, today: datetime.date) -> list[str]:
    """Queues tonight's jobs for local day `today`; returns the names of the scheduled jobs queued.

    Raises kombu's OperationalError when the queue is unreachable, before anything is queued or
    audited. Nothing waits for a result (`ignore_result`): nobody reads one.
    """
    from celery import chain

    from merchants.tasks import expire_coupons
    from rewards.tasks import (
        after_settlement_chunked,
        coins_expire_chunked,
        leaderboards_rebuild_today,
        ledger_audit_run,
        settlement_chunked_day,
        statement_rounds_mint,
    )

    # Settlement as chunk tasks; what must follow it is kept on the run and sent by the chunk
    # whose commit finishes the run (at once if the day is already settled).
    after = [
        chain(
            after_settlement_chunked.si().set(ignore_result=True),
            leaderboards_rebuild_today.si().set(ignore_result=True),
            ledger_audit_run.si().set(ignore_result=True),
        ),
        coins_expire_chunked.si(today.isoformat()).set(ignore_result=True),
    ]
    settlement_chunked_day.apply_async((today.isoformat(),), {"then": after}, ignore_result=True)
    expire_coupons.apply_async(ignore_result=True)
    statement_rounds_mint.apply_async(ignore_result=True)

    jobs = PeriodicTask.objects.filter(name__in=NIGHT_JOBS).order_by("name")
    if jobs:
        LogEntry.objects.log_actions(
            user_id=operator.pk,
            queryset=jobs,
            action_flag=CHANGE,
            change_message=f"Run now from the dashboard, for {today.isoformat()} (tonight's jobs).",
            single_object=False,
        )
    logger.info(
        "night_jobs.queued", extra={"operator_id": operator.pk, "day": today.isoformat(), "jobs": NIGHT_JOBS}
    )
    return list(NIGHT_JOBS)
