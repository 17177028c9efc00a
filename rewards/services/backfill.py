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

from activities.cache_renewals import carbon_changed_for_everyone
from activities.ingest import CounterRaceError
from core.db import execute
from rewards import statements
from rewards.ledger import BatchPosting, coin_expiry_days, issuance_account
from rewards.models import LedgerAccountKind, LedgerTransactionKind
from rewards.services.settlement import DEFAULT_CARBON_MG_PER_COIN


class BackfillConflictError(CounterRaceError):
    """A day's settled carbon changed while the back-fill settled it: the caller's chunk runs again."""


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
        "now": timezone.now(),
    }
    execute(statements.DROP_TABLE.format(table=statements.BACKFILL_OWED))
    execute(statements.BACKFILL_OWED_COLLECT, params)
    people, coins = execute(statements.BACKFILL_TOTALS)[0]
    if not coins:
        return 0, 0
    execute(statements.BACKFILL_WALLETS_OPEN, params)
    execute(statements.BACKFILL_WALLETS_FIND, params)
    # Wallets first, issuance last (rewards.lock_objects).
    posting = BatchPosting(
        kind=LedgerTransactionKind.SETTLEMENT,
        reference=f"backfill:{key}"[:200],
        idempotency_key=f"backfill:{key}"[:200],
        memo="History back-filled: each day at its own rate",
        counter_account_id=issuance_account().pk,
    )
    params["transaction"] = posting.transaction_id
    posting.legs_post(legs=statements.BACKFILL_LEGS)
    execute(statements.BACKFILL_RECORD, params)
    with connection.cursor() as cursor:
        cursor.execute(statements.BACKFILL_MARK_SETTLED, params)
        marked = cursor.rowcount
    carbon_changed_for_everyone()
    if marked != execute(statements.COUNT_ROWS.format(table=statements.BACKFILL_OWED))[0][0]:
        raise BackfillConflictError("a back-filled day was settled meanwhile")
    posting.counter_post()
    execute(statements.DROP_TABLE.format(table=statements.BACKFILL_OWED))
    return people, coins
