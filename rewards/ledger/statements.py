"""The ledger's SQL, composed with `psycopg.sql`: the one-statement transfer, the set-based posting's
statements, the lots' soonest-expiring-first walk (`rewards.ledger.lots`), and the audit's checks
(`rewards.audit`).

Other apps never see this text: they compose with the transfer's building block (`TransferBlock`,
and `TRANSFER_READY` for a condition that hangs on it) and hand the result to the ledger's writer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from psycopg import sql

from rewards.ledger.lots import LOTS_CONSUMED, LOTS_WALK
from rewards.lock_objects import LOCK_ORDER_SQL
from rewards.models import LedgerAccountKind

# --- The one-statement transfer ------------------------------------------------------------


@dataclass(frozen=True)
class AccountShape:
    """How a transfer's statement finds an account: by id, by kind and owner, or by kind alone
    (the owner-less issuance and sink). Its parameters are `<name>_id`, `<name>_kind`, `<name>_owner`."""

    kind: str
    by: str  # "id", "owner" or "kind"

    def match(self, name: str) -> sql.Composable:
        if self.by == "id":
            return sql.SQL("id = {id}").format(id=sql.Placeholder(f"{name}_id"))
        if self.by == "kind":
            return sql.SQL("(kind = {kind} AND owner_id IS NULL)").format(
                kind=sql.Placeholder(f"{name}_kind")
            )
        return sql.SQL("(kind = {kind} AND owner_id = {owner})").format(
            kind=sql.Placeholder(f"{name}_kind"), owner=sql.Placeholder(f"{name}_owner")
        )


# One statement moves coins between two accounts, so the ledger's rows are locked for one round trip:
# - `locked` takes both accounts' row locks in the global order (rewards.lock_objects);
# - `pair` is the two accounts in one row, and whether nobody changed the source wallet since this
#   statement's snapshot (`is_fresh`). Its lots are read from that snapshot, so a statement that had
#   to wait for the wallet's lock (its lots may have moved meanwhile) changes nothing and is run
#   again: the lock is then ours, the new snapshot current (other sources have no lots: their locked
#   row is all the statement reads, and it is current);
# - `ready`: both accounts are there, the source is fresh and holds the coins;
# - the transaction row is inserted only when ready (and the condition, if any, changed its row),
#   once per idempotency key (a twin waits on the key, then inserts nothing), and every other change
#   hangs on that row.
# Its plan is prepared once, but every run starts its executor afresh over every node of it, so the
# statement keeps few: one row of the pair instead of a scan of the accounts per use.
_TRANSFER = sql.SQL(
    """
WITH RECURSIVE locked AS MATERIALIZED (
    SELECT id, kind, owner_id, balance, xmin::text AS version FROM rewards_ledgeraccount
     WHERE {source_match} OR {destination_match}
     ORDER BY {lock_order}
       FOR UPDATE
),
source AS (SELECT id, balance, version FROM locked WHERE {source_match}),
destination AS (SELECT id FROM locked WHERE {destination_match} AND NOT ({source_match})),
pair AS (
    SELECT source.id AS source_id, source.balance AS source_balance, destination.id AS destination_id,
           {fresh} AS is_fresh
      FROM source LEFT JOIN destination ON true
),
ready AS (
    SELECT source_id, destination_id FROM pair
     WHERE destination_id IS NOT NULL AND is_fresh AND {balance_check}
),{condition}
new_transaction AS (
    INSERT INTO rewards_ledgertransaction (kind, reference, idempotency_key, memo, created_at)
    SELECT %(kind)s, %(reference)s, %(key)s, %(memo)s, %(now)s FROM ready{condition_from}
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
),
moved AS (
    UPDATE rewards_ledgeraccount
       SET balance = rewards_ledgeraccount.balance
           + CASE WHEN rewards_ledgeraccount.id = ready.source_id THEN -%(amount)s ELSE %(amount)s END
      FROM new_transaction, ready
     WHERE rewards_ledgeraccount.id IN (ready.source_id, ready.destination_id)
    RETURNING rewards_ledgeraccount.id
),
entries AS (
    INSERT INTO rewards_ledgerentry (transaction_id, account_id, amount)
    SELECT new_transaction.id, leg.account_id, leg.amount
      FROM new_transaction, ready,
           LATERAL (VALUES (ready.source_id, -%(amount)s), (ready.destination_id, %(amount)s))
               AS leg (account_id, amount)
     ORDER BY 2
){source_lots}{destination_lot}
SELECT new_transaction.id, pair.source_id, pair.destination_id, pair.source_balance,
       COALESCE(pair.is_fresh, false), {condition_value}
  FROM (SELECT) AS one LEFT JOIN pair ON true LEFT JOIN new_transaction ON true
"""
)

_FRESH_WALLET = sql.SQL(
    "EXISTS (SELECT 1 FROM rewards_ledgeraccount AS seen"
    " WHERE seen.id = source.id AND seen.xmin::text = source.version)"
)

# The source wallet's debit, for the lots' walk.
_SOURCE_DEBIT = sql.SQL("(SELECT source_id AS account_id, CAST(%(amount)s AS bigint) AS amount FROM ready)")

_DESTINATION_LOT = sql.SQL(
    """,
new_lot AS (
    INSERT INTO rewards_coinlot (account_id, transaction_id, earned_on, expires_on, amount, remaining_amount)
    SELECT ready.destination_id, new_transaction.id, %(today)s, %(expires_on)s, %(amount)s, %(amount)s
      FROM new_transaction, ready
    RETURNING id
)"""
)

# What a transfer's condition writes in its WHERE clause: true once the transfer is ready.
TRANSFER_READY = sql.SQL("EXISTS (SELECT 1 FROM ready)")


@dataclass(frozen=True)
class TransferBlock:
    """The ledger's transfer as a building block: between two accounts of these shapes and, if
    given, hanging on `condition`.

    `condition` is one data-modifying statement of another app (an UPDATE of its hot row, say) with
    `RETURNING` one column and `TRANSFER_READY` in its WHERE clause, its named parameters prefixed
    `condition_`. It runs only once the transfer is ready, and the coins move only if it returned a
    row: both apps' hot rows are then locked for that one round trip.
    """

    source: AccountShape
    destination: AccountShape
    condition: sql.Composable | None = None

    def statement(self) -> str:
        condition = self.condition.as_string(None) if self.condition is not None else None
        return _transfer_text(self.source, self.destination, condition)


@functools.lru_cache(maxsize=64)
def _transfer_text(source: AccountShape, destination: AccountShape, condition: str | None) -> str:
    """The statement's text, composed once per shape (the hot paths run a handful of shapes)."""
    source_is_wallet = source.kind == LedgerAccountKind.WALLET
    conditional = condition is not None
    return _TRANSFER.format(
        source_match=source.match("source"),
        destination_match=destination.match("destination"),
        lock_order=LOCK_ORDER_SQL,
        fresh=_FRESH_WALLET if source_is_wallet else sql.SQL("true"),
        balance_check=sql.SQL(
            "true" if source.kind == LedgerAccountKind.ISSUANCE else "source_balance >= %(amount)s"
        ),
        condition=(
            sql.SQL("\ncondition (value) AS ({statement}),").format(statement=sql.SQL(condition))
            if conditional
            else sql.SQL("")
        ),
        condition_from=sql.SQL(", condition" if conditional else ""),
        condition_value=sql.SQL("(SELECT value FROM condition)" if conditional else "NULL"),
        source_lots=(
            sql.SQL(",\n{walk},\n{consumed}").format(
                walk=LOTS_WALK.format(debits=_SOURCE_DEBIT),
                consumed=LOTS_CONSUMED.format(gate=sql.SQL(", new_transaction")),
            )
            if source_is_wallet
            else sql.SQL("")
        ),
        destination_lot=(_DESTINATION_LOT if destination.kind == LedgerAccountKind.WALLET else sql.SQL("")),
    ).as_string(None)


# --- The ORM posting's lots --------------------------------------------------------------------

# One wallet's debit taken from its lots, soonest-expiring first (the posting holds its lock).
LOTS_DEBIT = sql.SQL("WITH RECURSIVE {walk},\n{consumed}\nSELECT COUNT(*) FROM lots_consumed").format(
    walk=LOTS_WALK.format(
        debits=sql.SQL(
            "(SELECT CAST(%(account)s AS bigint) AS account_id, CAST(%(amount)s AS bigint) AS amount)"
        )
    ),
    consumed=LOTS_CONSUMED.format(gate=sql.SQL("")),
)

# --- The set-based posting ---------------------------------------------------------------------
# Its legs are a relation of (account_id, amount, earned_on, expires_on): a wallet's credit as one
# row per lot it opens, a wallet's debit as a row with no dates. `{legs}` is that relation.

POSTING_TRANSACTION = sql.SQL(
    """
INSERT INTO rewards_ledgertransaction (kind, reference, idempotency_key, memo, created_at)
VALUES (%(ledger_kind)s, %(ledger_reference)s, %(ledger_key)s, %(ledger_memo)s, %(ledger_now)s)
RETURNING id
"""
)

# Wallets first, the counter account (issuance, the sink) last: rewards.lock_objects.
POSTING_LOCK = sql.SQL(
    """
SELECT COUNT(*) FROM (
    SELECT id FROM rewards_ledgeraccount WHERE id IN (SELECT account_id FROM {legs} AS leg)
     ORDER BY id FOR UPDATE
) AS locked
"""
)

# All legs and the counter's in one statement: PostgreSQL checks per statement that a transaction
# balances. Returns what the legs add up to (the counter moves its opposite) and how many accounts.
POSTING_ENTRIES = sql.SQL(
    """
WITH per_account AS (
    SELECT account_id, CAST(SUM(amount) AS bigint) AS amount FROM {legs} AS leg GROUP BY account_id
),
entries AS (
    INSERT INTO rewards_ledgerentry (transaction_id, account_id, amount)
    SELECT %(ledger_transaction)s, account_id, amount FROM per_account
    UNION ALL
    SELECT %(ledger_transaction)s, %(ledger_counter)s, -(SELECT SUM(amount) FROM per_account)
     WHERE EXISTS (SELECT 1 FROM per_account)
    RETURNING amount
)
SELECT CAST(SUM(amount) AS bigint), COUNT(*) FROM per_account
"""
)

POSTING_LOTS_OPENED = sql.SQL(
    """
INSERT INTO rewards_coinlot (account_id, transaction_id, earned_on, expires_on, amount, remaining_amount)
SELECT account_id, %(ledger_transaction)s, earned_on, expires_on, amount, amount
  FROM {legs} AS leg WHERE amount > 0 AND expires_on IS NOT NULL
 ORDER BY account_id, expires_on
"""
)

POSTING_LOTS_DEBITED = sql.SQL("WITH RECURSIVE {walk},\n{consumed}\nSELECT COUNT(*) FROM lots_consumed")

POSTING_DEBITS = sql.SQL(
    "(SELECT account_id, CAST(-SUM(amount) AS bigint) AS amount FROM {legs} AS leg"
    " WHERE amount < 0 GROUP BY account_id)"
)

POSTING_BALANCES = sql.SQL(
    """
UPDATE rewards_ledgeraccount SET balance = rewards_ledgeraccount.balance + leg.amount
  FROM (SELECT account_id, SUM(amount) AS amount FROM {legs} AS leg GROUP BY account_id) AS leg
 WHERE rewards_ledgeraccount.id = leg.account_id
"""
)

# The hot row last, so parallel workers hold it only for the end of their transaction.
POSTING_COUNTER = sql.SQL(
    "UPDATE rewards_ledgeraccount SET balance = balance + %(ledger_amount)s WHERE id = %(ledger_counter)s"
)

# --- Many transfers, set-based (`rewards.ledger.writer.coins_transfers`) -------------------------

# The accounts of a batch of transfers that are not open yet, opened (kinds and owners as arrays).
TRANSFERS_ACCOUNTS_OPEN = sql.SQL(
    """
INSERT INTO rewards_ledgeraccount (kind, owner_id, balance, created_at)
SELECT DISTINCT account.kind, account.owner_id, 0, %(now)s
  FROM unnest(%(kinds)s::text[], %(owners)s::bigint[]) AS account (kind, owner_id)
 WHERE NOT EXISTS (
    SELECT 1 FROM rewards_ledgeraccount AS open
     WHERE open.kind = account.kind AND open.owner_id = account.owner_id
 )
ON CONFLICT DO NOTHING
"""
)

# The ids of those accounts.
TRANSFERS_ACCOUNTS = sql.SQL(
    """
SELECT open.id, open.kind, open.owner_id
  FROM rewards_ledgeraccount AS open
  JOIN (SELECT DISTINCT kind, owner_id FROM unnest(%(kinds)s::text[], %(owners)s::bigint[])
           AS account (kind, owner_id)) AS account
    ON open.kind = account.kind AND open.owner_id = account.owner_id
"""
)

# Each transfer of the batch its own transaction under its own key, in one statement:
# - `locked`: every account of the batch, locked in the global order (rewards.lock_objects);
#   PostgreSQL returns each locked row as it is now, so the balances are current;
# - `fresh`: the transfers whose key was not used before; `covered`: the sources whose balance
#   covers all their fresh transfers (each source pays all of its transfers, or none);
# - a transaction row per ready transfer (a key a twin committed meanwhile inserts nothing, and
#   nothing else of that transfer happens), its two entries, a lot on a wallet destination, and
#   every account's balance moved once by the sum of its legs; the transactions in the order given.
# Answers each transfer's key with 'posted', 'before' (its key was used) or 'refused'.
TRANSFERS_POST = sql.SQL(
    """
WITH transfer AS (
    SELECT * FROM unnest(%(keys)s::text[], %(references)s::text[], %(sources)s::bigint[],
                         %(destinations)s::bigint[], %(amounts)s::bigint[]) WITH ORDINALITY
        AS transfer (key, reference, source_id, destination_id, amount, position)
),
locked AS MATERIALIZED (
    SELECT id, kind, balance FROM rewards_ledgeraccount
     WHERE id IN (SELECT source_id FROM transfer UNION SELECT destination_id FROM transfer)
     ORDER BY {lock_order}
       FOR UPDATE
),
fresh AS (
    SELECT transfer.* FROM transfer
     WHERE NOT EXISTS (
        SELECT 1 FROM rewards_ledgertransaction AS used WHERE used.idempotency_key = transfer.key
     )
),
covered AS (
    SELECT fresh.source_id FROM fresh JOIN locked ON locked.id = fresh.source_id
     GROUP BY fresh.source_id, locked.kind, locked.balance
    HAVING locked.kind = {issuance} OR locked.balance >= SUM(fresh.amount)
),
ready AS (SELECT fresh.* FROM fresh WHERE fresh.source_id IN (SELECT source_id FROM covered)),
new_transaction AS (
    INSERT INTO rewards_ledgertransaction (kind, reference, idempotency_key, memo, created_at)
    SELECT %(kind)s, reference, key, %(memo)s, %(now)s FROM ready ORDER BY position
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, idempotency_key
),
posted AS (
    SELECT ready.*, new_transaction.id AS transaction_id
      FROM ready JOIN new_transaction ON new_transaction.idempotency_key = ready.key
),
leg AS (
    SELECT posted.transaction_id, leg.account_id, leg.amount
      FROM posted, LATERAL (VALUES (posted.source_id, -posted.amount), (posted.destination_id, posted.amount))
          AS leg (account_id, amount)
),
entries AS (
    INSERT INTO rewards_ledgerentry (transaction_id, account_id, amount)
    SELECT transaction_id, account_id, amount FROM leg ORDER BY transaction_id, account_id
),
moved AS (
    UPDATE rewards_ledgeraccount SET balance = rewards_ledgeraccount.balance + per_account.amount
      FROM (SELECT account_id, SUM(amount) AS amount FROM leg GROUP BY account_id) AS per_account
     WHERE rewards_ledgeraccount.id = per_account.account_id
),
new_lot AS (
    INSERT INTO rewards_coinlot (account_id, transaction_id, earned_on, expires_on, amount, remaining_amount)
    SELECT posted.destination_id, posted.transaction_id, %(today)s, %(expires_on)s,
           posted.amount, posted.amount
      FROM posted JOIN locked ON locked.id = posted.destination_id AND locked.kind = {wallet}
     ORDER BY posted.destination_id, posted.transaction_id
)
SELECT transfer.key,
       CASE WHEN posted.key IS NOT NULL THEN 'posted' WHEN fresh.key IS NULL THEN 'before' ELSE 'refused' END
  FROM transfer
  LEFT JOIN fresh ON fresh.key = transfer.key
  LEFT JOIN posted ON posted.key = transfer.key
"""
).format(
    lock_order=LOCK_ORDER_SQL,
    issuance=sql.Literal(LedgerAccountKind.ISSUANCE.value),
    wallet=sql.Literal(LedgerAccountKind.WALLET.value),
)

# --- The audit (`rewards.audit`): what the ledger's cached columns claim, recomputed ---------------

# How many transactions the ledger holds.
AUDIT_TRANSACTIONS = sql.SQL("SELECT COUNT(*) FROM rewards_ledgertransaction")

# How many entries the ledger holds.
AUDIT_ENTRIES = sql.SQL("SELECT COUNT(*) FROM rewards_ledgerentry")

# Transactions whose entries do not sum to zero or that have fewer than two (at most `%s`).
AUDIT_UNBALANCED_TRANSACTIONS = sql.SQL(
    """
SELECT transaction_id, SUM(amount), COUNT(*) FROM rewards_ledgerentry
GROUP BY transaction_id HAVING SUM(amount) <> 0 OR COUNT(*) < 2
ORDER BY transaction_id LIMIT %s
"""
)

# Transactions without any entry (at most `%s`).
AUDIT_EMPTY_TRANSACTIONS = sql.SQL(
    """
SELECT id FROM rewards_ledgertransaction AS ledger_transaction
WHERE NOT EXISTS (SELECT 1 FROM rewards_ledgerentry WHERE transaction_id = ledger_transaction.id)
ORDER BY id LIMIT %s
"""
)

# Accounts whose cached balance differs from the sum of their entries (at most `%s`).
AUDIT_BALANCES_OFF = sql.SQL(
    """
SELECT account.id, account.kind, account.owner_id, account.balance, COALESCE(sums.total, 0)
FROM rewards_ledgeraccount AS account
LEFT JOIN (
    SELECT account_id, SUM(amount) AS total FROM rewards_ledgerentry GROUP BY account_id
) AS sums ON sums.account_id = account.id
WHERE account.balance <> COALESCE(sums.total, 0)
ORDER BY account.id LIMIT %s
"""
)

# Accounts below zero other than the issuance account (its kind, then at most `%s`).
AUDIT_NEGATIVE_BALANCES = sql.SQL(
    "SELECT id, owner_id, balance FROM rewards_ledgeraccount WHERE balance < 0 AND kind <> %s LIMIT %s"
)

# Wallets whose balance differs from the coins left in their lots (the wallet kind, then at most `%s`).
AUDIT_WALLETS_OFF_LOTS = sql.SQL(
    """
SELECT account.id, account.owner_id, account.balance, COALESCE(lots.remaining, 0)
FROM rewards_ledgeraccount AS account
LEFT JOIN (
    SELECT account_id, SUM(remaining_amount) AS remaining FROM rewards_coinlot GROUP BY account_id
) AS lots ON lots.account_id = account.id
WHERE account.kind = %s AND account.balance <> COALESCE(lots.remaining, 0)
ORDER BY account.id LIMIT %s
"""
)

# The coins held per kind of account.
AUDIT_TOTALS_BY_KIND = sql.SQL(
    "SELECT kind, COALESCE(SUM(balance), 0) FROM rewards_ledgeraccount GROUP BY kind"
)
