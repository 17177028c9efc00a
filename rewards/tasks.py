"""Celery tasks of the rewards app: thin (load, call a service), safe to run twice."""

from __future__ import annotations

import datetime
import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from rewards.audit import ledger_audit
from rewards.services import coins_expire, settlement_run
from rewards.services.settlement import DEFAULT_WORKERS

logger = logging.getLogger(__name__)


@shared_task(name="rewards.settlement_settle_day")
def settlement_settle_day(day: str) -> dict:
    """Settles one local day (ISO date); a retry or a second delivery settles only who is left."""
    workers = getattr(settings, "REWARDS_SETTLEMENT_WORKERS", DEFAULT_WORKERS)
    run = settlement_run(day=datetime.date.fromisoformat(day), workers=workers)
    return {"day": day, "status": run.status, "accounts": run.accounts_settled, "coins": run.coins_minted}


@shared_task(name="rewards.settlement_settle_yesterday")
def settlement_settle_yesterday() -> dict:
    """The nightly job, shortly after local midnight: settle the local day that just ended."""
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    return settlement_settle_day(yesterday.isoformat())


@shared_task(name="rewards.ledger_audit")
def ledger_audit_run() -> dict:
    """The nightly audit: logs the result, an error (which alerts) when anything does not add up."""
    report = ledger_audit()
    if report.is_balanced:
        logger.info("ledger_audit.ok", extra={"totals": report.totals, "transactions": report.transactions})
    else:
        logger.error("ledger_audit.failed", extra={"problems": report.problems[:20], "totals": report.totals})
    return {"balanced": report.is_balanced, "problems": len(report.problems), "totals": report.totals}


@shared_task(name="rewards.coins_expire")
def coins_expire_today() -> dict:
    """The daily expiry job; running it twice a day changes nothing the second time."""
    result = coins_expire()
    return {"wallets": result.wallets, "coins": result.coins, "reminders": result.reminders_raised}
