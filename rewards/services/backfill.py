"""Settlement of back-filled history: each day's carbon at that day's coin rate, with that day's expiry.

An operator's back-fill (`manage.py backfill_activity_history`) credits records older than the
history window. Left to the nightly settlement, their carbon would become coins at tonight's rate
with a fresh expiry, as if earned today. Instead each chunk of the back-fill settles, in its own
transaction, the carbon its records added: per person and local day, whole coins at the rate in
force on that day (`coin_rate_for_day`), in a lot earned on that day that expires when that day's
coins expire (day + `coin_expiry_days()`; a lot already past it goes at the next expiry run, as it
would have). What is short of a whole coin stays owed on its day and goes to the next nightly
settlement with the rest, as a remainder always does.

Exactly once: the day's settled carbon moves by compare-and-set (`WHERE settled_carbon_mg = <read>`)
on rows the chunk's own upsert has locked, and each (person, day, transaction) has one
`BackfillSettlement`. Set-based: a few statements per chunk, whatever its size.
"""

from __future__ import annotations

import datetime

from django.db import connection
from django.utils import timezone

from activities.ingest import CounterRaceError
from rewards.models import LedgerAccountKind, LedgerTransactionKind
from rewards.services.ledger import coin_expiry_days, issuance_account
from rewards.services.settlement import DEFAULT_CARBON_MG_PER_COIN


class BackfillConflictError(CounterRaceError):
    """A day's settled carbon changed while the back-fill settled it: the caller's chunk runs again."""


def _execute(sql: str, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def backfill_days_settle(
    *, days: list[tuple[int, datetime.date]], key: str, today: datetime.date | None = None
) -> tuple[int, int]:
    """Settles what is owed on these (person, local day) pairs before `today`; returns (people, coins).

    Call inside the transaction that credited them (the back-fill's chunk). `key` names the chunk
    (the ledger transaction's idempotency key). Days from today on are left to the nightly run.
    """
    today = today or timezone.localdate()
    pairs = sorted({(user_id, day) for user_id, day in days if day < today})
    if not pairs:
        return 0, 0
    params = {
        "users": [user_id for user_id, _ in pairs],
        "days": [day for _, day in pairs],
        "expiry_days": coin_expiry_days(),
        "default_rate": DEFAULT_CARBON_MG_PER_COIN,
        "wallet": LedgerAccountKind.WALLET.value,
        "kind": LedgerTransactionKind.SETTLEMENT.value,
        "reference": f"backfill:{key}"[:200],
        "key": f"backfill:{key}"[:200],
        "now": timezone.now(),
        "issuance": issuance_account().pk,
    }
    _execute("DROP TABLE IF EXISTS rewards_backfill_owed")
    # Per person and day: the whole coins owed at that day's rate, and the carbon they convert.
    _execute(
        """
        CREATE TEMPORARY TABLE rewards_backfill_owed ON COMMIT DROP AS
        SELECT daily.id, daily.user_id, daily.day, daily.settled_carbon_mg AS settled_before,
               rate.carbon_mg_per_coin AS rate,
               (daily.credited_carbon_mg - daily.settled_carbon_mg) / rate.carbon_mg_per_coin AS coins,
               ((daily.credited_carbon_mg - daily.settled_carbon_mg) / rate.carbon_mg_per_coin)
                   * rate.carbon_mg_per_coin AS carbon_mg,
               daily.day + %(expiry_days)s AS expires_on,
               CAST(NULL AS bigint) AS account_id
        FROM unnest(%(users)s::bigint[], %(days)s::date[]) AS pair(user_id, day)
        JOIN activities_dailycarbon AS daily ON daily.user_id = pair.user_id AND daily.day = pair.day
        CROSS JOIN LATERAL (
            SELECT coalesce((
                SELECT carbon_mg_per_coin FROM rewards_coinrate
                WHERE valid_from <= pair.day ORDER BY valid_from DESC LIMIT 1
            ), %(default_rate)s) AS carbon_mg_per_coin
        ) AS rate
        WHERE daily.credited_carbon_mg - daily.settled_carbon_mg >= rate.carbon_mg_per_coin
        """,
        params,
    )
    people, coins = _execute(
        "SELECT count(DISTINCT user_id), coalesce(sum(coins), 0) FROM rewards_backfill_owed"
    )[0]
    if not coins:
        return 0, 0
    params["coins"] = coins
    _execute(
        """
        INSERT INTO rewards_ledgeraccount (kind, owner_id, balance, created_at)
        SELECT DISTINCT %(wallet)s, user_id, 0, %(now)s FROM rewards_backfill_owed ORDER BY 2
        ON CONFLICT (kind, owner_id) DO NOTHING
        """,
        params,
    )
    _execute(
        """
        UPDATE rewards_backfill_owed SET account_id = account.id
        FROM rewards_ledgeraccount AS account
        WHERE account.kind = %(wallet)s AND account.owner_id = rewards_backfill_owed.user_id
        """,
        params,
    )
    params["transaction"] = _execute(
        """
        INSERT INTO rewards_ledgertransaction (kind, reference, idempotency_key, memo, created_at)
        VALUES (%(kind)s, %(reference)s, %(key)s, 'History back-filled: each day at its own rate', %(now)s)
        RETURNING id
        """,
        params,
    )[0][0]
    # Wallets first, issuance last (rewards.lock_objects).
    _execute(
        """
        SELECT count(*) FROM (
            SELECT id FROM rewards_ledgeraccount WHERE id IN (SELECT account_id FROM rewards_backfill_owed)
            ORDER BY id FOR UPDATE
        ) AS locked
        """
    )
    _execute(
        """
        INSERT INTO rewards_ledgerentry (transaction_id, account_id, amount)
        SELECT %(transaction)s, account_id, sum(coins) FROM rewards_backfill_owed GROUP BY account_id
        UNION ALL
        SELECT %(transaction)s, %(issuance)s, -%(coins)s
        """,
        params,
    )
    _execute(
        """
        INSERT INTO rewards_coinlot
            (account_id, transaction_id, earned_on, expires_on, amount, remaining_amount)
        SELECT account_id, %(transaction)s, day, expires_on, coins, coins FROM rewards_backfill_owed
        ORDER BY account_id, day
        """,
        params,
    )
    _execute(
        """
        INSERT INTO rewards_backfillsettlement
            (user_id, day, transaction_id, carbon_mg, coins, carbon_mg_per_coin)
        SELECT user_id, day, %(transaction)s, carbon_mg, coins, rate FROM rewards_backfill_owed
        ORDER BY user_id, day
        """,
        params,
    )
    _execute(
        """
        UPDATE rewards_ledgeraccount SET balance = rewards_ledgeraccount.balance + owed.coins
        FROM (SELECT account_id, sum(coins) AS coins FROM rewards_backfill_owed GROUP BY account_id) AS owed
        WHERE rewards_ledgeraccount.id = owed.account_id
        """
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE activities_dailycarbon
            SET settled_carbon_mg = activities_dailycarbon.settled_carbon_mg + owed.carbon_mg,
                updated_at = %(now)s
            FROM rewards_backfill_owed AS owed
            WHERE activities_dailycarbon.id = owed.id
              AND activities_dailycarbon.settled_carbon_mg = owed.settled_before
            """,
            params,
        )
        marked = cursor.rowcount
    if marked != _execute("SELECT count(*) FROM rewards_backfill_owed")[0][0]:
        raise BackfillConflictError("a back-filled day was settled meanwhile")
    _execute("UPDATE rewards_ledgeraccount SET balance = balance - %(coins)s WHERE id = %(issuance)s", params)
    _execute("DROP TABLE rewards_backfill_owed")
    return people, coins
