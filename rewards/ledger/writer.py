"""The ledger's one writer: every movement of coins is posted here, one at a time or set-based.

- `ledger_transaction_post`: one balanced transaction of any legs (the ORM path: an account merge).
- `coins_transfer` / `coins_transfer_if` / `coins_issue`: one movement between two accounts in one
  statement (`rewards.ledger.statements.TransferBlock`), the hot paths (redemptions, donations,
  challenge payouts, mints). Called outside a transaction, the statement runs alone in autocommit:
  one round trip, its own transaction.
- `BatchPosting`: one transaction over many wallets against one counter account (issuance, the
  expiry sink), a few statements whatever its size (settlement, back-fill, expiry).

Each writes the transaction row under its unique idempotency key, the entries (all legs in one
statement: PostgreSQL checks per statement that a transaction balances), the balances (conditional
UPDATEs, never read-modify-write, the accounts locked in the global order of
`rewards.lock_objects`) and the lots: a wallet credit opens one, a wallet debit takes its coins
from the unspent ones soonest-expiring first (`rewards.ledger.lots`), touching only those.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from psycopg import sql

from core.api.errors import IDEMPOTENCY_KEY_REUSED, ApplicationError
from core.db import execute, prepared_fetchone
from core.person_cache import renew, renew_everyone
from rewards.errors import INSUFFICIENT_COINS, INVALID_COIN_AMOUNT
from rewards.ledger import statements
from rewards.ledger.accounts import AccountRef, account_resolve, coin_expiry_days
from rewards.ledger.lots import LOTS_CONSUMED, LOTS_WALK
from rewards.lock_objects import ledger_accounts_lock
from rewards.models import CoinLot, LedgerAccount, LedgerAccountKind, LedgerEntry, LedgerTransaction


@dataclass(frozen=True)
class LotSpec:
    """A lot to open on a wallet credit: how many coins, earned when, expiring when."""

    amount: int
    earned_on: datetime.date
    expires_on: datetime.date


def _amount_check(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ApplicationError(INVALID_COIN_AMOUNT, fields={"amount": [str(INVALID_COIN_AMOUNT.message)]})


def _existing_transaction_check(
    *, existing: LedgerTransaction, legs: dict[int, int], idempotency_key: str
) -> LedgerTransaction:
    recorded: dict[int, int] = {}
    for account_id, amount in existing.entries.values_list("account_id", "amount"):
        recorded[account_id] = recorded.get(account_id, 0) + amount
    if recorded != legs:
        raise ApplicationError(IDEMPOTENCY_KEY_REUSED, fields={"idempotency_key": [idempotency_key]})
    return existing


def _wallets_changed(accounts) -> None:
    """Retires what is cached of these accounts' wallets (`core.person_cache`, source `ledger`)."""
    renew(
        "ledger",
        [account.owner_id for account in accounts if account.kind == LedgerAccountKind.WALLET],
    )


# --- One transaction of any legs ----------------------------------------------------------------


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
            execute(statements.LOTS_DEBIT, {"account": account_id, "amount": -amount})
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
    _wallets_changed(accounts.values())
    return ledger_transaction


# --- One movement between two accounts, in one statement ------------------------------------------


@dataclass(frozen=True)
class TransferCondition:
    """A change to another app's row that a transfer hangs on, made by the transfer's own statement.

    `statement` is composed by the other app with `psycopg.sql`: one data-modifying statement with
    `RETURNING` one column and `TRANSFER_READY` in its WHERE clause (`TransferBlock` says how it
    runs); `params` are its named parameters, each prefixed `condition_` so they cannot meet the
    ledger's.
    """

    statement: sql.Composable
    params: dict[str, object]


class TransferConditionUnmet(Exception):  # noqa: N818 (a refusal, not a fault)
    """The transfer was ready but its condition's statement changed no row: nothing moved."""


@dataclass(frozen=True)
class ConditionalTransfer:
    transaction: LedgerTransaction
    # What the condition's statement returned (its RETURNING column).
    condition_value: object


def _account_shape(account: LedgerAccount | AccountRef, name: str) -> tuple[statements.AccountShape, dict]:
    """How the statement finds the account, and its parameters."""
    if isinstance(account, LedgerAccount):
        return statements.AccountShape(account.kind, "id"), {f"{name}_id": account.pk}
    if account.owner_id is None:
        return statements.AccountShape(account.kind, "kind"), {f"{name}_kind": account.kind}
    return (
        statements.AccountShape(account.kind, "owner"),
        {f"{name}_kind": account.kind, f"{name}_owner": account.owner_id},
    )


_READY_TEXT = statements.TRANSFER_READY.as_string(None)

# Enough for a run that waited for a lock, then one that opened an account on first use.
_TRANSFER_ATTEMPTS = 4


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
    Accounts given as `AccountRef` are found by kind and owner (and opened on first use). Inside
    a transaction it is part of it; outside any, it is a transaction of its own, one round trip.
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
    if (
        not isinstance(condition.statement, sql.Composable)
        or _READY_TEXT not in condition.statement.as_string(None)
        or any(not name.startswith("condition_") for name in condition.params)
    ):
        raise ValueError(
            "a transfer condition is a psycopg.sql statement naming TRANSFER_READY,"
            " with only condition_ parameters"
        )
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
    source_shape, params = _account_shape(source, "source")
    destination_shape, destination_params = _account_shape(destination, "destination")
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
    if condition is not None:
        params |= condition.params
    statement = statements.TransferBlock(
        source=source_shape,
        destination=destination_shape,
        condition=condition.statement if condition is not None else None,
    ).statement()
    run = _transfer_run(statement, params, source, destination, idempotency_key)
    transaction_id, source_id, destination_id, source_balance, _is_fresh, condition_value = run
    if transaction_id is not None:
        moved = LedgerTransaction(
            id=transaction_id,
            kind=kind,
            reference=reference,
            idempotency_key=idempotency_key,
            memo=memo,
            created_at=now,
        )
        _wallets_changed((source, destination))
        return ConditionalTransfer(transaction=moved, condition_value=condition_value)
    # Nothing moved: the key was used before (a retry, or a twin that committed first), the source
    # lacks the coins, or the condition changed nothing.
    if condition is not None:
        if condition_value is not None:
            raise ValueError(f"the conditional transfer's key {idempotency_key!r} was used before")
        could_pay = source.kind == LedgerAccountKind.ISSUANCE or (source_balance or 0) >= amount
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


# What one run of the transfer's statement answers: the new transaction's id (None: nothing moved),
# both accounts' ids (None: not opened yet), the source's balance, whether its lots were read
# current (`fresh`), and the condition's value.
_Run = tuple[int | None, int | None, int | None, int | None, bool, object]


def _accounts_open(source: LedgerAccount | AccountRef, destination: LedgerAccount | AccountRef) -> None:
    if isinstance(source, LedgerAccount) and isinstance(destination, LedgerAccount):
        raise ValueError("a transfer needs two existing accounts")
    account_resolve(source)
    account_resolve(destination)


def _transfer_run(
    statement: str,
    params: dict,
    source: LedgerAccount | AccountRef,
    destination: LedgerAccount | AccountRef,
    idempotency_key: str,
) -> _Run:
    """Runs the transfer's statement until it made the transfer or refused it.

    Outside a transaction each run is a transaction of its own, committed as the statement ends:
    one round trip, and the accounts stay locked only while the statement runs. A run that waited
    for the source wallet's lock changed nothing (its lots were read from a snapshot older than
    the lock), and the lock went with its end: the transfer then runs in a transaction, as it does
    inside the caller's, where a run that waited holds the lock, so the run after it reads the lots
    current."""
    if connection.get_autocommit():
        run = _transfer_runs(statement, params, source, destination, idempotency_key, alone=True)
        if run is not None:
            return run
    # No savepoint: each run of the statement either made the whole transfer or changed nothing.
    with transaction.atomic(savepoint=False):
        return _transfer_runs(statement, params, source, destination, idempotency_key, alone=False)


def _transfer_runs(
    statement: str,
    params: dict,
    source: LedgerAccount | AccountRef,
    destination: LedgerAccount | AccountRef,
    idempotency_key: str,
    *,
    alone: bool,
) -> _Run | None:
    """Runs the statement until it made the transfer or refused it: an account missing is opened
    and the run made again; a run that waited for the source's lock is made again, or, `alone`
    (each run its own transaction), answered None."""
    for _attempt in range(_TRANSFER_ATTEMPTS):
        run: _Run = prepared_fetchone(statement, params)
        transaction_id, source_id, destination_id, _balance, is_fresh, _value = run
        if transaction_id is not None:
            return run
        if source_id is None or destination_id is None:
            _accounts_open(source, destination)
        elif is_fresh:
            return run
        elif alone:
            return None
    raise RuntimeError(f"the transfer {idempotency_key!r} did not settle in {_TRANSFER_ATTEMPTS} runs")


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


# --- One transaction over many wallets, set-based -------------------------------------------------


class BatchPosting:
    """One ledger transaction of many wallet legs against one counter account, in a few statements.

    Open it (the transaction row, under its unique key: a second posting with the key fails on it),
    post its legs (`legs_post`: the wallets locked in id order, every entry in one statement, the
    lots opened or consumed, the wallets' balances), then `counter_post` moves the counter account
    (issuance, the expiry sink): the hot row last, so parallel workers hold it only for the end of
    their database transaction. The caller's own changes may go between the steps. Call inside a
    transaction.
    """

    def __init__(
        self, *, kind: str, reference: str, idempotency_key: str, counter_account_id: int, memo: str = ""
    ) -> None:
        if not connection.in_atomic_block:
            raise RuntimeError("a batch posting runs inside the caller's transaction")
        self.counter_account_id = counter_account_id
        self.total = 0
        self.transaction_id: int = execute(
            statements.POSTING_TRANSACTION,
            {
                "ledger_kind": kind,
                "ledger_reference": reference,
                "ledger_key": idempotency_key,
                "ledger_memo": memo,
                "ledger_now": timezone.now(),
            },
        )[0][0]

    def legs_post(self, *, legs: sql.Composable, params: dict | None = None, locked: bool = False) -> int:
        """Posts the wallet legs of `legs`, a relation of (account_id, amount, earned_on, expires_on)
        with its own named parameters in `params`: a credit is a row per lot it opens (a credit with
        no expiry, to an account that holds no lots such as a welfare project, opens none), a debit
        a row whose coins are taken from the wallet's lots soonest-expiring first. Legs of one posting go
        one way (all credits or all debits). `locked`: the caller holds the wallets' locks already
        (taken in the global order). Returns how many wallets moved."""
        params = {
            **(params or {}),
            "ledger_transaction": self.transaction_id,
            "ledger_counter": self.counter_account_id,
        }
        if not locked:
            execute(statements.POSTING_LOCK.format(legs=legs), params)
        total, accounts = execute(statements.POSTING_ENTRIES.format(legs=legs), params)[0]
        if not accounts:
            return 0
        if total > 0:
            execute(statements.POSTING_LOTS_OPENED.format(legs=legs), params)
        else:
            execute(
                statements.POSTING_LOTS_DEBITED.format(
                    walk=LOTS_WALK.format(debits=statements.POSTING_DEBITS.format(legs=legs)),
                    consumed=LOTS_CONSUMED.format(gate=sql.SQL("")),
                ),
                params,
            )
        execute(statements.POSTING_BALANCES.format(legs=legs), params)
        self.total += total
        # Many wallets at once: everyone's cached wallet is retired (one key, not one per wallet).
        renew_everyone("ledger")
        return accounts

    def counter_post(self) -> None:
        """Moves the counter account by the opposite of every leg posted."""
        if self.total:
            execute(
                statements.POSTING_COUNTER,
                {"ledger_amount": -self.total, "ledger_counter": self.counter_account_id},
            )


# --- Many transfers, each its own transaction, set-based ------------------------------------------


@dataclass(frozen=True)
class Transfer:
    """One movement of `coins_transfers`: between two accounts named by kind and owner, under its
    own idempotency key (its natural unique key: one coupon's refund, say)."""

    source: AccountRef
    destination: AccountRef
    amount: int
    idempotency_key: str
    reference: str


@dataclass(frozen=True)
class TransfersPosted:
    """What `coins_transfers` did with each transfer, by idempotency key."""

    # Posted by this call.
    posted: list[str]
    # Posted before (the key was used: nothing moved again).
    before: list[str]
    # Not posted: their source could not pay all of its transfers of the batch (or a twin with the
    # same key committed meanwhile, which the next call reports as `before`).
    refused: list[str]


@transaction.atomic
def coins_transfers(*, transfers: list[Transfer], kind: str, memo: str = "") -> TransfersPosted:
    """Many transfers at once, each a ledger transaction of its own under its own idempotency key
    (as `coins_transfer` would post it), in three statements whatever their number.

    Each source pays all of its transfers of the batch or none (INSUFFICIENT_COINS is not raised:
    its transfers are answered `refused`, and the others go on). Sources hold no lots: any kind but
    a wallet (a merchant's clearing account paying refunds, a sponsor, issuance). Every account is
    named with its owner; accounts are opened on first use. A wallet destination gets a lot per
    transfer, expiring `coin_expiry_days()` from today.
    """
    if not transfers:
        return TransfersPosted(posted=[], before=[], refused=[])
    keys = [transfer.idempotency_key for transfer in transfers]
    if len(set(keys)) != len(keys):
        raise ValueError("the transfers of one batch need different idempotency keys")
    for transfer in transfers:
        _amount_check(transfer.amount)
        if transfer.source == transfer.destination:
            raise ValueError("a transfer needs two different accounts")
        if transfer.source.kind == LedgerAccountKind.WALLET:
            raise ValueError("a wallet holds lots: it pays through coins_transfer, one at a time")
        if transfer.source.owner_id is None or transfer.destination.owner_id is None:
            raise ValueError("the transfers of a batch name each account with its owner")
    named = {account for transfer in transfers for account in (transfer.source, transfer.destination)}
    now = timezone.now()
    today = timezone.localdate(now)
    owners = {
        "kinds": [account.kind for account in named],
        "owners": [account.owner_id for account in named],
        "now": now,
    }
    execute(statements.TRANSFERS_ACCOUNTS_OPEN, owners)
    account_ids = {
        AccountRef(kind, owner_id): account_id
        for account_id, kind, owner_id in execute(statements.TRANSFERS_ACCOUNTS, owners)
    }
    outcomes = dict(
        execute(
            statements.TRANSFERS_POST,
            {
                "keys": keys,
                "references": [transfer.reference for transfer in transfers],
                "sources": [account_ids[transfer.source] for transfer in transfers],
                "destinations": [account_ids[transfer.destination] for transfer in transfers],
                "amounts": [transfer.amount for transfer in transfers],
                "kind": kind,
                "memo": memo,
                "now": now,
                "today": today,
                "expires_on": today + datetime.timedelta(days=coin_expiry_days()),
            },
        )
    )
    posted = [key for key in keys if outcomes[key] == "posted"]
    if posted:
        # Many wallets at once: everyone's cached wallet is retired (one key, not one per wallet).
        renew_everyone("ledger")
    return TransfersPosted(
        posted=posted,
        before=[key for key in keys if outcomes[key] == "before"],
        refused=[key for key in keys if outcomes[key] == "refused"],
    )
