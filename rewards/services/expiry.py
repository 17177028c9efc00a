# ruff: noqa: S608 - the SQL here interpolates only constant table names.
"""Coin expiry: coins earned more than the expiry period ago go to the expiry sink, with entries.

Lots (`CoinLot`) carry each credit's expiry day; debits consume them soonest-expiring first, so
what is left in a lot on its day is exactly what expires. The daily job is set-based and chunked
by wallet like settlement: per chunk one ledger transaction (each wallet's debit and the sink's
credit), the lots emptied and the balances lowered in the same database transaction. Running it
twice on a day finds the lots already empty and changes nothing.
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
from rewards.lock_objects import LOCK_ORDER_SQL
from rewards.models import CoinLot, LedgerAccountKind, LedgerTransactionKind
from rewards.services.ledger import expiry_sink_account

logger = logging.getLogger(__name__)

EXPIRY_REMINDER_DAYS = 30
DEFAULT_CHUNK_SIZE = 20_000
EXPIRING = "rewards_expiring_wallets"


@dataclass(frozen=True)
class ExpiryResult:
    wallets: int
    coins: int
    reminders_raised: int


def _execute(sql: str, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _chunk_expire(*, today: datetime.date, lower: int, upper: int, sink_id: int) -> tuple[int, int]:
    params = {
        "today": today,
        "lower": lower,
        "upper": upper,
        "sink": sink_id,
        "now": timezone.now(),
        "kind": LedgerTransactionKind.EXPIRY.value,
        "reference": f"expiry:{today.isoformat()}",
    }
    # As in settlement: index lookups over a few thousand rows, no JIT, cached pages.
    _execute("SET LOCAL jit TO OFF")
    _execute("SET LOCAL random_page_cost TO 1.1")
    _execute(
        f"""
        SELECT COUNT(*) FROM (
            SELECT id, kind FROM rewards_ledgeraccount
            WHERE id = %(sink)s OR id IN (
                SELECT account_id FROM rewards_coinlot
                WHERE expires_on <= %(today)s AND remaining_amount > 0
                  AND account_id > %(lower)s AND account_id <= %(upper)s
            )
            ORDER BY {LOCK_ORDER_SQL} FOR UPDATE
        ) AS locked
        """,
        params,
    )
    _execute(f"DROP TABLE IF EXISTS {EXPIRING}")
    _execute(
        f"""
        CREATE TEMPORARY TABLE {EXPIRING} AS
        SELECT account_id, CAST(SUM(remaining_amount) AS BIGINT) AS coins, MAX(id) AS last_lot_id
        FROM rewards_coinlot
        WHERE expires_on <= %(today)s AND remaining_amount > 0
          AND account_id > %(lower)s AND account_id <= %(upper)s
        GROUP BY account_id
        """,
        params,
    )
    _execute(f"ANALYZE {EXPIRING}")
    wallets, coins, first, last, last_lot = _execute(
        f"SELECT COUNT(*), COALESCE(SUM(coins), 0), MIN(account_id), MAX(account_id), MAX(last_lot_id) "
        f"FROM {EXPIRING}"
    )[0]
    if wallets:
        # The lots name the expiry: a second run on the same day finds only lots that came due since
        # (a back-fill's lots are born past due), so its key is new where a rerun of this one finds none.
        key = f"expiry:{today.isoformat()}:wallets:{first}-{last}:lots-to:{last_lot}"
        params |= {"coins": coins, "key": key}
        params["transaction"] = _execute(
            """
            INSERT INTO rewards_ledgertransaction (kind, reference, idempotency_key, memo, created_at)
            VALUES (%(kind)s, %(reference)s, %(key)s, '', %(now)s) RETURNING id
            """,
            params,
        )[0][0]
        _execute(
            f"""
            INSERT INTO rewards_ledgerentry (transaction_id, account_id, amount)
            SELECT %(transaction)s, account_id, -coins FROM {EXPIRING}
            UNION ALL
            SELECT %(transaction)s, %(sink)s, %(coins)s
            """,
            params,
        )
        _execute(
            f"""
            UPDATE rewards_coinlot SET remaining_amount = 0
            WHERE expires_on <= %(today)s AND remaining_amount > 0
              AND account_id IN (SELECT account_id FROM {EXPIRING})
            """,
            params,
        )
        _execute(
            f"""
            UPDATE rewards_ledgeraccount SET balance = rewards_ledgeraccount.balance - expiring.coins
            FROM {EXPIRING} AS expiring WHERE rewards_ledgeraccount.id = expiring.account_id
            """,
            params,
        )
        _execute("UPDATE rewards_ledgeraccount SET balance = balance + %(coins)s WHERE id = %(sink)s", params)
    _execute(f"DROP TABLE {EXPIRING}")
    return wallets, coins


def coins_expire(
    *,
    today: datetime.date | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    account_range: tuple[int, int] | None = None,
    reminders: bool = True,
) -> ExpiryResult:
    """Moves every coin whose expiry day has come to the expiry sink; raises the 30-day reminders.

    `account_range` (lower exclusive, upper inclusive wallet ids) limits it to one chunk task's
    share (rewards/chunked.py), which leaves the reminders (`reminders=False`) to the run's end.
    Safe to run any number of times a day. Must not run inside a transaction (chunks commit).
    """
    if connection.in_atomic_block:
        raise RuntimeError("expiry commits chunk by chunk: call it outside a transaction")
    today = today or timezone.localdate()
    sink_id = expiry_sink_account().pk
    wallets = coins = 0
    lower, last = account_range or (-1, 2**63 - 1)
    while True:
        upper = _execute(
            """
            SELECT MAX(account_id) FROM (
                SELECT DISTINCT account_id FROM rewards_coinlot
                WHERE expires_on <= %(today)s AND remaining_amount > 0 AND account_id > %(lower)s
                  AND account_id <= %(last)s
                ORDER BY account_id LIMIT %(chunk)s
            ) AS chunk
            """,
            {"today": today, "lower": lower, "last": last, "chunk": chunk_size},
        )[0][0]
        if upper is None:
            break
        with transaction.atomic():
            chunk_wallets, chunk_coins = _chunk_expire(today=today, lower=lower, upper=upper, sink_id=sink_id)
        wallets, coins, lower = wallets + chunk_wallets, coins + chunk_coins, upper
    raised = expiry_reminders_raise(today=today) if reminders else 0
    logger.info("expiry.done", extra={"day": today.isoformat(), "wallets": wallets, "coins": coins})
    return ExpiryResult(wallets=wallets, coins=coins, reminders_raised=raised)


def expiry_reminders_raise(*, today: datetime.date) -> int:
    """Flags the lots that expire within the reminder window, once each (one UPDATE), and tells
    their owners (`expiry_notifications_raise`)."""
    flagged = CoinLot.objects.filter(
        remaining_amount__gt=0,
        reminder_raised_at__isnull=True,
        expires_on__lte=today + datetime.timedelta(days=EXPIRY_REMINDER_DAYS),
        account__kind=LedgerAccountKind.WALLET,
    ).update(reminder_raised_at=timezone.now())
    expiry_notifications_raise(today=today)
    return flagged


# The people whose coins expire within a window, one row per person and bucket of expiry days:
# the month of expiry for the 30-day reminder, the ISO week for the 7-day one. Coins are earned
# daily, so a reminder per expiry day would be one a day; a bucket makes it one a month (a week).
_EXPIRING_ROWS = sql.SQL(
    """
    SELECT wallet.owner_id,
           jsonb_build_object('coins', SUM(lot.remaining_amount), 'days', %(x_days)s,
                              'expires_on', to_char(MIN(lot.expires_on), 'YYYY-MM-DD')),
           'coins_expiring:' || %(x_days)s || ':' || to_char(lot.expires_on, {bucket})
      FROM rewards_coinlot AS lot
      JOIN rewards_ledgeraccount AS wallet ON wallet.id = lot.account_id AND wallet.kind = 'wallet'
     WHERE lot.expires_on > %(x_today)s AND lot.expires_on <= %(x_until)s AND lot.remaining_amount > 0
     GROUP BY wallet.owner_id, to_char(lot.expires_on, {bucket})
    """
)
REMINDER_WINDOWS = ((30, "YYYY-MM"), (7, "IYYY-IW"))


def expiry_reminder_rows(*, days: int, bucket: str, today: datetime.date) -> tuple[sql.Composable, dict]:
    """The SELECT of one reminder window's (person, parameters, event key) rows and its parameters,
    as `notifications_insert` takes them (and the benchmark's bare reference inserts them)."""
    rows = _EXPIRING_ROWS.format(bucket=sql.Literal(bucket))
    return rows, {"x_days": days, "x_today": today, "x_until": today + datetime.timedelta(days=days)}


def expiry_notifications_raise(*, today: datetime.date) -> int:
    """The nightly reminders, 30 and 7 days before coins expire: set-based (one statement per
    window, which inserts and queues the pushes in the database), once per person and month (week)
    of expiry, however often it runs."""
    raised = 0
    for days, bucket in REMINDER_WINDOWS:
        rows, params = expiry_reminder_rows(days=days, bucket=bucket, today=today)
        raised += notifications_insert(
            kind=NotificationKind.COINS_EXPIRING, rows=rows, params=params
        ).notifications
    return raised
