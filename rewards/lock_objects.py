"""Row locks of the rewards app, always taken in one global order so two movements never deadlock.

The order is: wallets, then merchant clearing accounts, then challenge sponsors, then welfare
projects, then the expiry sink, then the issuance account, each by primary key. Every path follows
it: a transfer locks the wallet before the merchant; settlement locks its chunk's wallets and
touches issuance last, so the one hot row (issuance) is held only for the end of a chunk and
parallel settlement workers barely wait.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Case, IntegerField, Value, When
from psycopg import sql

from rewards.models import LedgerAccount, LedgerAccountKind

LOCK_RANK = {
    LedgerAccountKind.WALLET: 0,
    LedgerAccountKind.MERCHANT_CLEARING: 1,
    LedgerAccountKind.CHALLENGE_SPONSOR: 2,
    LedgerAccountKind.WELFARE_PROJECT: 3,
    LedgerAccountKind.EXPIRY_SINK: 4,
    LedgerAccountKind.ISSUANCE: 5,
}

# The same order for raw SQL over rewards_ledgeraccount (an ORDER BY list).
LOCK_ORDER_SQL = sql.SQL("CASE kind {ranks} END, id").format(
    ranks=sql.SQL(" ").join(
        sql.SQL("WHEN {kind} THEN {rank}").format(kind=sql.Literal(kind.value), rank=sql.Literal(rank))
        for kind, rank in LOCK_RANK.items()
    )
)


def ledger_accounts_lock(*, account_ids: Iterable[int]) -> dict[int, LedgerAccount]:
    """Locks the given ledger accounts (SELECT … ORDER BY rank, id FOR UPDATE) and returns them by id.

    PostgreSQL takes the row locks in the order the rows come out, so everyone queues in the same order.
    """
    rank = Case(
        *[When(kind=kind, then=Value(value)) for kind, value in LOCK_RANK.items()],
        output_field=IntegerField(),
    )
    accounts = (
        LedgerAccount.objects.select_for_update()
        .filter(pk__in=set(account_ids))
        .annotate(lock_rank=rank)
        .order_by("lock_rank", "pk")
    )
    return {account.pk: account for account in accounts}
