"""Row locks of the rewards app, always taken in primary-key order so two movements never deadlock."""

from __future__ import annotations

from collections.abc import Iterable

from rewards.models import LedgerAccount


def ledger_accounts_lock(*, account_ids: Iterable[int]) -> dict[int, LedgerAccount]:
    """Locks the given ledger accounts (SELECT … ORDER BY id FOR UPDATE) and returns them by id.

    Every path that changes several balances locks them here first: PostgreSQL takes the row locks
    in the order the rows come out, so everyone queues in the same order.
    """
    accounts = LedgerAccount.objects.select_for_update().filter(pk__in=set(account_ids)).order_by("pk")
    return {account.pk: account for account in accounts}
