"""Coin expiry: coins earned more than the expiry period ago go to the expiry sink, with entries.

Lots (`CoinLot`) carry each credit's expiry day; debits consume them soonest-expiring first, so
what is left in a lot on its day is exactly what expires. The daily job is set-based and chunked
by wallet like settlement: per chunk one ledger transaction posted by the ledger's writer (each
wallet's debit, which takes exactly its lots due, and the sink's credit), in one database
transaction. Running it
twice on a day finds the lots already empty and changes nothing. The 30- and 7-day reminders follow
for the same wallets (all of them, or a chunk task's range): lots flagged once, people told once per
month (week) of expiry by the notifications' event keys, so a repeat raises nothing.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from accounts.models import NotificationKind
from accounts.notifications.services import notifications_insert
from core.db import execute
from rewards import statements
from rewards.ledger import BatchPosting, expiry_sink_account
from rewards.models import CoinLot, LedgerAccountKind, LedgerTransactionKind

logger = logging.getLogger(__name__)

EXPIRY_REMINDER_DAYS = 30
DEFAULT_CHUNK_SIZE = 20_000
# Every wallet: (exclusive lower, inclusive upper) wallet ids.
ALL_WALLETS = (-1, 2**63 - 1)


@dataclass(frozen=True)
class ExpiryResult:
    wallets: int
    coins: int
    reminders_raised: int


def _chunk_expire(*, today: datetime.date, lower: int, upper: int, sink_id: int) -> tuple[int, int]:
    params = {"today": today, "lower": lower, "upper": upper}
    # As in settlement: index lookups over a few thousand rows, no JIT, cached pages.
    for setting in statements.EXPIRY_CHUNK_SETTINGS:
        execute(setting)
    execute(statements.DROP_TABLE.format(table=statements.EXPIRY_LOCKED))
    execute(statements.EXPIRY_LOCK, params)
    execute(statements.DROP_TABLE.format(table=statements.EXPIRING))
    execute(statements.EXPIRING_COLLECT, params)
    execute(statements.ANALYZE.format(table=statements.EXPIRING))
    wallets, coins, first, last, last_lot = execute(statements.EXPIRING_TOTALS)[0]
    if wallets:
        # The lots name the expiry: a second run on the same day finds only lots that came due since
        # (a back-fill's lots are born past due), so its key is new where a rerun of this one finds none.
        posting = BatchPosting(
            kind=LedgerTransactionKind.EXPIRY,
            reference=f"expiry:{today.isoformat()}",
            idempotency_key=f"expiry:{today.isoformat()}:wallets:{first}-{last}:lots-to:{last_lot}",
            counter_account_id=sink_id,
        )
        posting.legs_post(legs=statements.EXPIRY_LEGS, locked=True)  # by EXPIRY_LOCK
        # The sink last, locked only from here to the commit.
        posting.counter_post()
    execute(statements.DROP_TABLE.format(table=statements.EXPIRING))
    execute(statements.DROP_TABLE.format(table=statements.EXPIRY_LOCKED))
    return wallets, coins


def coins_expire(
    *,
    today: datetime.date | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    account_range: tuple[int, int] | None = None,
    reminders: bool = True,
) -> ExpiryResult:
    """Moves every coin whose expiry day has come to the expiry sink; raises the 30- and 7-day
    reminders (`reminders=False`: not).

    `account_range` (lower exclusive, upper inclusive wallet ids) limits it, reminders included, to
    one chunk task's share (rewards/chunked.py). Safe to run any number of times a day. Must not
    run inside a transaction (chunks commit).
    """
    if connection.in_atomic_block:
        raise RuntimeError("expiry commits chunk by chunk: call it outside a transaction")
    today = today or timezone.localdate()
    sink_id = expiry_sink_account().pk
    wallets = coins = 0
    lower, last = account_range or ALL_WALLETS
    while True:
        upper = execute(
            statements.EXPIRY_CHUNK_UPPER, {"today": today, "lower": lower, "last": last, "chunk": chunk_size}
        )[0][0]
        if upper is None:
            break
        with transaction.atomic():
            chunk_wallets, chunk_coins = _chunk_expire(today=today, lower=lower, upper=upper, sink_id=sink_id)
        wallets, coins, lower = wallets + chunk_wallets, coins + chunk_coins, upper
    raised = expiry_reminders_raise(today=today, account_range=account_range) if reminders else 0
    logger.info("expiry.done", extra={"day": today.isoformat(), "wallets": wallets, "coins": coins})
    return ExpiryResult(wallets=wallets, coins=coins, reminders_raised=raised)


@transaction.atomic
def expiry_reminders_raise(*, today: datetime.date, account_range: tuple[int, int] | None = None) -> int:
    """Flags the lots that expire within the reminder window, once each (one UPDATE), and tells
    their owners (`expiry_notifications_raise`), in one transaction; only the wallets of
    `account_range` (lower exclusive, upper inclusive wallet ids: an expiry chunk's), or all.
    Returns the lots flagged (none the second time)."""
    lower, upper = account_range or ALL_WALLETS
    flagged = CoinLot.objects.filter(
        remaining_amount__gt=0,
        reminder_raised_at__isnull=True,
        expires_on__lte=today + datetime.timedelta(days=EXPIRY_REMINDER_DAYS),
        account__kind=LedgerAccountKind.WALLET,
        account_id__gt=lower,
        account_id__lte=upper,
    ).update(reminder_raised_at=timezone.now())
    expiry_notifications_raise(today=today, account_range=account_range)
    return flagged


REMINDER_WINDOWS = ((30, "YYYY-MM"), (7, "IYYY-IW"))


def expiry_reminder_rows(
    *, days: int, bucket: str, today: datetime.date, account_range: tuple[int, int] | None = None
) -> tuple[sql.Composable, dict]:
    """The SELECT of one reminder window's (person, parameters, event key) rows and its parameters,
    as `notifications_insert` takes them (and the benchmark's bare reference inserts them); the
    wallets of `account_range` (lower exclusive, upper inclusive wallet ids), or all."""
    lower, upper = account_range or ALL_WALLETS
    rows = statements.EXPIRY_REMINDER_ROWS.format(bucket=sql.Literal(bucket))
    return rows, {
        "x_days": days,
        "x_today": today,
        "x_until": today + datetime.timedelta(days=days),
        "x_lower": lower,
        "x_upper": upper,
    }


def expiry_notifications_raise(*, today: datetime.date, account_range: tuple[int, int] | None = None) -> int:
    """The nightly reminders, 30 and 7 days before coins expire: set-based (one statement per
    window, which inserts and queues the pushes in the database), once per person and month (week)
    of expiry, however often it runs. Everyone's, or the owners of the wallets in `account_range`
    (an expiry chunk's: a person has one wallet, so the chunks tell disjoint people)."""
    raised = 0
    for days, bucket in REMINDER_WINDOWS:
        rows, params = expiry_reminder_rows(
            days=days, bucket=bucket, today=today, account_range=account_range
        )
        raised += notifications_insert(
            kind=NotificationKind.COINS_EXPIRING, rows=rows, params=params
        ).notifications
    return raised
