"""Coin lots, soonest-expiring first: the one place that says which lots a debit takes.

Every credit to a wallet opens a lot (how many coins, earned when, expiring when); every debit takes
its coins from the wallet's unspent lots in expiry order (then lot id), so what is left in a lot on
its day is exactly what expires, and the sum of a wallet's unspent lots is its balance.

A debit touches only the lots it consumes: `LOTS_WALK` steps through the wallet's unspent lots
one by one in expiry order, through the partial index of unspent lots (`coin_lot_unspent`), and
stops as soon as the amount is covered, however many lots the wallet ever had. It is a recursive
CTE over a relation of debits (account_id, amount), so the same walk serves one transfer, a posting
and a whole chunk of wallets at once (expiry). `LOTS_CONSUMED` then takes what the walk found.
The statements that use it (`rewards.ledger.statements`) put `WITH RECURSIVE` at their head.
"""

from __future__ import annotations

from psycopg import sql

# Each row: a lot `lot_id` of `account_id`, `owed` coins still to take when it is reached, and
# `taken`, what it gives (all it holds, or what is still owed). The next lot is looked up only
# while something is still owed.
LOTS_WALK = sql.SQL(
    """lot_walk (account_id, lot_id, expires_on, owed, taken) AS (
    SELECT debit.account_id, lot.id, lot.expires_on, debit.amount, LEAST(lot.remaining_amount, debit.amount)
      FROM {debits} AS debit
     CROSS JOIN LATERAL (
        SELECT id, expires_on, remaining_amount FROM rewards_coinlot
         WHERE account_id = debit.account_id AND remaining_amount > 0
         ORDER BY expires_on, id LIMIT 1
     ) AS lot
    UNION ALL
    SELECT walk.account_id, lot.id, lot.expires_on, walk.owed - walk.taken,
           LEAST(lot.remaining_amount, walk.owed - walk.taken)
      FROM lot_walk AS walk
     CROSS JOIN LATERAL (
        SELECT id, expires_on, remaining_amount FROM rewards_coinlot
         WHERE account_id = walk.account_id AND remaining_amount > 0
           AND (expires_on, id) > (walk.expires_on, walk.lot_id)
         ORDER BY expires_on, id LIMIT 1
     ) AS lot
     WHERE walk.owed > walk.taken
)"""
)

# Takes what the walk found; `{gate}` adds a FROM item the change hangs on (the transfer's new
# transaction row), or nothing.
LOTS_CONSUMED = sql.SQL(
    """lots_consumed AS (
    UPDATE rewards_coinlot SET remaining_amount = rewards_coinlot.remaining_amount - lot_walk.taken
      FROM lot_walk{gate}
     WHERE rewards_coinlot.id = lot_walk.lot_id
    RETURNING rewards_coinlot.id
)"""
)
