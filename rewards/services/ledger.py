"""The ledger's single-movement services: the only way coins move between accounts one at a time.

Each runs in the caller's transaction when there is one (`transaction.atomic` nests as a savepoint).
Balances change with conditional UPDATEs (`balance >= amount`), never read-modify-write, after the
accounts involved were locked in primary-key order (`rewards.lock_objects`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core.api.errors import IDEMPOTENCY_KEY_REUSED, ApplicationError
from core.db import prepared_cursor
from rewards.errors import INSUFFICIENT_COINS, INVALID_COIN_AMOUNT
from rewards.lock_objects import LOCK_ORDER_SQL, ledger_accounts_lock
from rewards.models import (
    CoinLot,
    LedgerAccount,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransaction,
)

DEFAULT_COIN_EXPIRY_DAYS = 365


def coin_expiry_days() -> int:
    """How long coins stay spendable after they are earned (settings.REWARDS_COIN_EXPIRY_DAYS)."""
    return int(getattr(settings, "REWARDS_COIN_EXPIRY_DAYS", DEFAULT_COIN_EXPIRY_DAYS))


def _account_get_or_create(*, kind: str, owner_id: int | None) -> LedgerAccount:
    # INSERT … ON CONFLICT DO NOTHING, then read: safe when two requests open the same account.
    account = LedgerAccount.objects.filter(kind=kind, owner_id=owner_id).first()
    if account is None:
        LedgerAccount.objects.bulk_create(
            [LedgerAccount(kind=kind, owner_id=owner_id)], ignore_conflicts=True
        )
        account = LedgerAccount.objects.get(kind=kind, owner_id=owner_id)
    return account


def wallet_account_for_user(*, user_id: int) -> LedgerAccount:
    """The person's wallet, opened on first use."""
    return _account_get_or_create(kind=LedgerAccountKind.WALLET, owner_id=user_id)


def clearing_account_for_merchant(*, merchant_id: int) -> LedgerAccount:
    """The merchant's clearing account (coins spent on its offers), opened on first use."""
    return _account_get_or_create(kind=LedgerAccountKind.MERCHANT_CLEARING, owner_id=merchant_id)


def project_account_for_project(*, project_id: int) -> LedgerAccount:
    """The welfare project's account (coins donated to it), opened on first use."""
    return _account_get_or_create(kind=LedgerAccountKind.WELFARE_PROJECT, owner_id=project_id)


def issuance_account() -> LedgerAccount:
    """Where coins come from: its balance is minus every coin ever minted."""
    return _account_get_or_create(kind=LedgerAccountKind.ISSUANCE, owner_id=None)


def expiry_sink_account() -> LedgerAccount:
    """Where expired coins go."""
    return _account_get_or_create(kind=LedgerAccountKind.EXPIRY_SINK, owner_id=None)


@dataclass(frozen=True)
class LotSpec:
    """A lot to open on a wallet credit: how many coins, earned when, expiring when."""

    amount: int
    earned_on: datetime.date
    expires_on: datetime.date


def _amount_check(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ApplicationError(INVALID_COIN_AMOUNT, fields={"amount": [str(INVALID_COIN_AMOUNT.message)]})


def _lots_consume(*, account_id: int, amount: int) -> None:
    """Takes `amount` coins out of the wallet's lots, the soonest-expiring first (one UPDATE)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH ordered AS (
                SELECT id, remaining_amount,
                       SUM(remaining_amount) OVER (ORDER BY expires_on, id) - remaining_amount AS taken_before
                FROM rewards_coinlot
                WHERE account_id = %s AND remaining_amount > 0
            )
            UPDATE rewards_coinlot
            SET remaining_amount = rewards_coinlot.remaining_amount
                - LEAST(ordered.remaining_amount, %s - ordered.taken_before)
            FROM ordered
            WHERE rewards_coinlot.id = ordered.id AND ordered.taken_before < %s
            """,
            [account_id, amount, amount],
        )


def _existing_transaction_check(
    *, existing: LedgerTransaction, legs: dict[int, int], idempotency_key: str
) -> LedgerTransaction:
    recorded: dict[int, int] = {}
    for account_id, amount in existing.entries.values_list("account_id", "amount"):
        recorded[account_id] = recorded.get(account_id, 0) + amount
    if recorded != legs:
        raise ApplicationError(IDEMPOTENCY_KEY_REUSED, fields={"idempotency_key": [idempotency_key]})
    return existing


@transaction.atomic
def ledger_transaction_post(
    *,
    legs: list[tuple[LedgerAccount, int]],
    kind: str,
    idempotency_key: str,
    reference: str,
    memo: str = "",
    credit_lots: dict[int, list[LotSpec]] | None = None,
) -> LedgerTransaction:
    """Posts one balanced transaction (signed legs summing to zero) exactly once per idempotency key.

    Debited accounts other than issuance must hold the coins (else INSUFFICIENT_COINS and nothing
    changes). Wallet debits consume lots soonest-expiring first; wallet credits open a lot, expiring
    `coin_expiry_days()` from today unless `credit_lots` says otherwise (an account merge keeps the
    original dates).
    """
    by_account: dict[int, int] = {}
    accounts: dict[int, LedgerAccount] = {}
    for account, amount in legs:
        _amount_check(abs(amount))
        by_account[account.pk] = by_account.get(account.pk, 0) + amount
        accounts[account.pk] = account
    if len(legs) < 2 or sum(by_account.values()) != 0 or any(value == 0 for value in by_account.values()):
        raise ValueError(f"a ledger transaction needs two or more legs summing to zero, got {legs!r}")

    existing = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return _existing_transaction_check(
            existing=existing, legs=by_account, idempotency_key=idempotency_key
        )
    try:
        with transaction.atomic():
            ledger_transaction = LedgerTransaction.objects.create(
                kind=kind, reference=reference, idempotency_key=idempotency_key, memo=memo
            )
    except IntegrityError:
        # Another request with the same key committed first: answer as it did.
        existing = LedgerTransaction.objects.get(idempotency_key=idempotency_key)
        return _existing_transaction_check(
            existing=existing, legs=by_account, idempotency_key=idempotency_key
        )

    ledger_accounts_lock(account_ids=by_account)
    for account_id, amount in sorted(by_account.items()):
        kind_of_account = accounts[account_id].kind
        if amount < 0 and kind_of_account != LedgerAccountKind.ISSUANCE:
            moved = LedgerAccount.objects.filter(pk=account_id, balance__gte=-amount).update(
                balance=F("balance") + amount
            )
            if not moved:
                raise ApplicationError(INSUFFICIENT_COINS, fields={"amount": [str(-amount)]})
        else:
            LedgerAccount.objects.filter(pk=account_id).update(balance=F("balance") + amount)

    # One statement for all legs: PostgreSQL checks per statement that the transaction balances.
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(transaction=ledger_transaction, account_id=account_id, amount=amount)
            for account_id, amount in sorted(by_account.items())
        ]
    )

    today = timezone.localdate()
    new_lots = []
    for account_id, amount in sorted(by_account.items()):
        if accounts[account_id].kind != LedgerAccountKind.WALLET:
            continue
        if amount < 0:
            _lots_consume(account_id=account_id, amount=-amount)
            continue
        specs = (credit_lots or {}).get(account_id) or [
            LotSpec(amount, today, today + datetime.timedelta(days=coin_expiry_days()))
        ]
        if sum(spec.amount for spec in specs) != amount:
            raise ValueError("the lots of a wallet credit must add up to the credit")
        new_lots += [
            CoinLot(
                account_id=account_id,
                transaction=ledger_transaction,
                earned_on=spec.earned_on,
                expires_on=spec.expires_on,
                amount=spec.amount,
                remaining_amount=spec.amount,
            )
            for spec in specs
        ]
    CoinLot.objects.bulk_create(new_lots)
    return ledger_transaction


@dataclass(frozen=True)
class AccountRef:
    """A ledger account named by kind and owner, for a transfer that finds (or opens) it itself.

    Saves the hot paths a look-up per account: `coins_transfer` locks the accounts by this key.
    """

    kind: str
    owner_id: int | None = None


def wallet_of(*, user_id: int) -> AccountRef:
    return AccountRef(LedgerAccountKind.WALLET, user_id)


def clearing_of(*, merchant_id: int) -> AccountRef:
    return AccountRef(LedgerAccountKind.MERCHANT_CLEARING, merchant_id)


def _account_match(account: LedgerAccount | AccountRef, name: str) -> tuple[str, dict[str, object]]:
    """The SQL condition that picks the account out of rewards_ledgeraccount, and its parameters."""
    if isinstance(account, LedgerAccount):
        return f"id = %({name}_id)s", {f"{name}_id": account.pk}
    if account.owner_id is None:
        return f"(kind = %({name}_kind)s AND owner_id IS NULL)", {f"{name}_kind": account.kind}
    return (
        f"(kind = %({name}_kind)s AND owner_id = %({name}_owner)s)",
        {f"{name}_kind": account.kind, f"{name}_owner": account.owner_id},
    )


# Enough for a run that waited for a lock, then one that opened an account on first use.
_TRANSFER_ATTEMPTS = 4


def _account_resolve(account: LedgerAccount | AccountRef) -> LedgerAccount:
    if isinstance(account, AccountRef):
        return _account_get_or_create(kind=account.kind, owner_id=account.owner_id)
    return account


def _account_open(account: LedgerAccount | AccountRef) -> None:
    _account_resolve(account)


# One statement moves coins between two accounts, so the ledger's rows are locked for one round trip:
# - `locked` takes both accounts' row locks in the global order (rewards.lock_objects);
# - `fresh` holds when nobody changed the source wallet since this statement's snapshot. Its lots are
#   read from that snapshot, so a statement that had to wait for the wallet's lock (its lots may have
#   moved meanwhile) changes nothing and is run again: the lock is then ours, the new snapshot current
#   (other sources have no lots: their locked row is all the statement reads, and it is current);
# - the transaction row is inserted only if the source holds the coins, once per idempotency key (a
#   twin waits on the key, then inserts nothing), and every other change hangs on that row.
_TRANSFER_SQL = """
WITH locked AS MATERIALIZED (
    SELECT id, kind, owner_id, balance, xmin::text AS version FROM rewards_ledgeraccount
     WHERE {source_match} OR {destination_match}
     ORDER BY {lock_order}
       FOR UPDATE
),
source AS (SELECT id, balance, version FROM locked WHERE {source_match}),
destination AS (SELECT id FROM locked WHERE {destination_match} AND NOT ({source_match})),
fresh AS ({fresh}),{condition}
new_transaction AS (
    INSERT INTO rewards_ledgertransaction (kind, reference, idempotency_key, memo, created_at)
    SELECT %(kind)s, %(reference)s, %(key)s, %(memo)s, %(now)s
      FROM source, destination, fresh{condition_from}
     WHERE {balance_check}
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
),
moved AS (
    UPDATE rewards_ledgeraccount
       SET balance = rewards_ledgeraccount.balance
           + CASE WHEN rewards_ledgeraccount.id = source.id THEN -%(amount)s ELSE %(amount)s END
      FROM new_transaction, source, destination
     WHERE rewards_ledgeraccount.id IN (source.id, destination.id)
    RETURNING rewards_ledgeraccount.id
),
entries AS (
    INSERT INTO rewards_ledgerentry (transaction_id, account_id, amount)
    SELECT new_transaction.id, source.id, -%(amount)s FROM new_transaction, source
    UNION ALL
    SELECT new_transaction.id, destination.id, %(amount)s FROM new_transaction, destination
    ORDER BY 2
){source_lots}{destination_lots}
SELECT (SELECT id FROM new_transaction), (SELECT id FROM source), (SELECT id FROM destination),
       (SELECT balance FROM source), EXISTS (SELECT 1 FROM fresh), {condition_value}
"""

# A conditional transfer's condition (`coins_transfer_if`): run once the transfer is ready, and
# the transaction row (every other change hangs on it) inserted only if it returned a row.
_CONDITION_SQL = """
ready AS (SELECT 1 FROM source, destination, fresh WHERE {balance_check}),
condition (value) AS (
    {statement}
),"""

_FRESH_WALLET_SQL = """
    SELECT 1 FROM source JOIN rewards_ledgeraccount AS seen
        ON seen.id = source.id AND seen.xmin::text = source.version
"""

# The source wallet's lots, the soonest-expiring first (the same FIFO as `_lots_consume`).
_SOURCE_LOTS_SQL = """,
lots AS (
    SELECT lot.id, lot.remaining_amount,
           SUM(lot.remaining_amount) OVER (ORDER BY lot.expires_on, lot.id) - lot.remaining_amount
               AS taken_before
      FROM rewards_coinlot AS lot, source
     WHERE lot.account_id = source.id AND lot.remaining_amount > 0
),
consumed AS (
    UPDATE rewards_coinlot
       SET remaining_amount = rewards_coinlot.remaining_amount
           - LEAST(lots.remaining_amount, %(amount)s - lots.taken_before)
      FROM lots, new_transaction
     WHERE rewards_coinlot.id = lots.id AND lots.taken_before < %(amount)s
    RETURNING rewards_coinlot.id
)"""

_DESTINATION_LOT_SQL = """,
new_lot AS (
    INSERT INTO rewards_coinlot (account_id, transaction_id, earned_on, expires_on, amount, remaining_amount)
    SELECT destination.id, new_transaction.id, %(today)s, %(expires_on)s, %(amount)s, %(amount)s
      FROM new_transaction, destination
    RETURNING id
)"""


@dataclass(frozen=True)
class TransferCondition:
    """A change to another app's row that a transfer hangs on, made by the transfer's own statement.

    `sql` is one data-modifying statement (an UPDATE of the hot row, say) with `RETURNING` one
    column, and `{ready}` in its WHERE clause; `params` are its named parameters, each prefixed
    `condition_` so they cannot meet the ledger's. The ledger runs it only once the transfer is
    ready (both accounts locked, the source holding the coins) and moves the coins only if it
    returned a row: the caller's row and the ledger's are then locked for that one round trip.
    """

    sql: str
    params: dict[str, object]


class TransferConditionUnmet(Exception):  # noqa: N818 (a refusal, not a fault)
    """The transfer was ready but its condition's statement changed no row: nothing moved."""


@dataclass(frozen=True)
class ConditionalTransfer:
    transaction: LedgerTransaction
    # What the condition's statement returned (its RETURNING column).
    condition_value: object


def coins_transfer(
    *,
    source: LedgerAccount | AccountRef,
    destination: LedgerAccount | AccountRef,
    amount: int,
    kind: str,
    idempotency_key: str,
    reference: str,
    memo: str = "",
) -> LedgerTransaction:
    """Moves `amount` coins from one account to another, once per idempotency key, in one statement.

    The source must hold the coins (INSUFFICIENT_COINS otherwise, nothing changes); the same key
    again returns the first transaction, or IDEMPOTENCY_KEY_REUSED if it moved something else.
    Accounts given as `AccountRef` are found by kind and owner (and opened on first use).
    """
    return _coins_transfer(
        source=source,
        destination=destination,
        amount=amount,
        kind=kind,
        idempotency_key=idempotency_key,
        reference=reference,
        memo=memo,
    ).transaction


def coins_transfer_if(
    condition: TransferCondition,
    *,
    source: LedgerAccount | AccountRef,
    destination: LedgerAccount | AccountRef,
    amount: int,
    kind: str,
    idempotency_key: str,
    reference: str,
    memo: str = "",
) -> ConditionalTransfer:
    """`coins_transfer`, and in the same statement `condition`'s change, both or neither.

    For a hot path whose own row must change with the coins (a redemption takes the offer's stock):
    one round trip instead of two, with the hot rows locked only for it. It runs inside the caller's
    transaction. Raises TransferConditionUnmet when the condition changed nothing,
    INSUFFICIENT_COINS as `coins_transfer` does; a key used before is an error here (the condition
    may have run without the coins moving), and the caller's transaction must roll back on any of them.
    """
    if not connection.in_atomic_block:
        raise ValueError("a conditional transfer runs inside the caller's transaction")
    if "{ready}" not in condition.sql or any(not name.startswith("condition_") for name in condition.params):
        raise ValueError("a transfer condition names {ready} and only condition_ parameters")
    return _coins_transfer(
        source=source,
        destination=destination,
        amount=amount,
        kind=kind,
        idempotency_key=idempotency_key,
        reference=reference,
        memo=memo,
        condition=condition,
    )


def _coins_transfer(
    *,
    source: LedgerAccount | AccountRef,
    destination: LedgerAccount | AccountRef,
    amount: int,
    kind: str,
    idempotency_key: str,
    reference: str,
    memo: str,
    condition: TransferCondition | None = None,
) -> ConditionalTransfer:
    _amount_check(amount)
    if source == destination or (
        isinstance(source, LedgerAccount)
        and isinstance(destination, LedgerAccount)
        and source.pk == destination.pk
    ):
        raise ValueError("a transfer needs two different accounts")
    source_match, params = _account_match(source, "source")
    destination_match, destination_params = _account_match(destination, "destination")
    now = timezone.now()
    today = timezone.localdate(now)
    params |= destination_params | {
        "kind": kind,
        "reference": reference,
        "key": idempotency_key,
        "memo": memo,
        "now": now,
        "amount": amount,
        "today": today,
        "expires_on": today + datetime.timedelta(days=coin_expiry_days()),
    }
    source_kind, destination_kind = source.kind, destination.kind
    balance_check = "true" if source_kind == LedgerAccountKind.ISSUANCE else "source.balance >= %(amount)s"
    if condition is not None:
        params |= condition.params
        condition_sql = _CONDITION_SQL.format(
            statement=condition.sql.format(ready="EXISTS (SELECT 1 FROM ready)"), balance_check=balance_check
        )
    sql = _TRANSFER_SQL.format(
        source_match=source_match,
        destination_match=destination_match,
        lock_order=LOCK_ORDER_SQL,
        balance_check=balance_check,
        condition=condition_sql if condition is not None else "",
        condition_from=", condition" if condition is not None else "",
        condition_value="(SELECT value FROM condition)" if condition is not None else "NULL",
        fresh=_FRESH_WALLET_SQL if source_kind == LedgerAccountKind.WALLET else "SELECT 1",
        source_lots=_SOURCE_LOTS_SQL if source_kind == LedgerAccountKind.WALLET else "",
        destination_lots=_DESTINATION_LOT_SQL if destination_kind == LedgerAccountKind.WALLET else "",
    )
    # No savepoint: each run of the statement either made the whole transfer or changed nothing.
    with transaction.atomic(savepoint=False), prepared_cursor() as cursor:
        for _attempt in range(_TRANSFER_ATTEMPTS):
            cursor.execute(sql, params)
            (transaction_id, source_id, destination_id, source_balance, is_fresh, condition_value) = (
                cursor.fetchone()
            )
            if transaction_id is not None:
                moved = LedgerTransaction(
                    id=transaction_id,
                    kind=kind,
                    reference=reference,
                    idempotency_key=idempotency_key,
                    memo=memo,
                    created_at=now,
                )
                return ConditionalTransfer(transaction=moved, condition_value=condition_value)
            if source_id is None or destination_id is None:
                if isinstance(source, LedgerAccount) and isinstance(destination, LedgerAccount):
                    raise ValueError("a transfer needs two existing accounts")
                _account_open(source)
                _account_open(destination)
            elif is_fresh:
                break
        else:
            raise RuntimeError(
                f"the transfer {idempotency_key!r} did not settle in {_TRANSFER_ATTEMPTS} runs"
            )
    # Nothing moved: the key was used before (a retry, or a twin that committed first), the source
    # lacks the coins, or the condition changed nothing.
    if condition is not None:
        if condition_value is not None:
            raise ValueError(f"the conditional transfer's key {idempotency_key!r} was used before")
        could_pay = source_kind == LedgerAccountKind.ISSUANCE or (source_balance or 0) >= amount
        if source_balance is not None and could_pay:
            raise TransferConditionUnmet
    existing = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return ConditionalTransfer(
            transaction=_existing_transaction_check(
                existing=existing,
                legs={source_id: -amount, destination_id: amount},
                idempotency_key=idempotency_key,
            ),
            condition_value=None,
        )
    raise ApplicationError(INSUFFICIENT_COINS, fields={"amount": [str(amount)]})


def coins_issue(
    *,
    destination: LedgerAccount,
    amount: int,
    kind: str,
    idempotency_key: str,
    reference: str,
    memo: str = "",
) -> LedgerTransaction:
    """Mints `amount` new coins from the issuance account into `destination`, once per key."""
    return coins_transfer(
        source=AccountRef(LedgerAccountKind.ISSUANCE),
        destination=destination,
        amount=amount,
        kind=kind,
        idempotency_key=idempotency_key,
        reference=reference,
        memo=memo,
    )
