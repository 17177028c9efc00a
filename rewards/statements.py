"""The raw statements of the rewards app's reads, composed with `psycopg.sql`; values are parameters.

(Gamification's and groups' statements live in their packages' own statements modules.)
"""

from __future__ import annotations

from psycopg import sql

# What the app opens on, in one statement: the wallet's balance by its (kind, owner) key, the
# person's carbon credited but not settled, the coin rate in effect, the coins expiring soon and the
# next expiry days (one row each, oldest first; one row of NULLs when there are none).
WALLET_SUMMARY = sql.SQL(
    """
    WITH wallet AS (
        SELECT id, balance FROM rewards_ledgeraccount WHERE kind = %(wallet)s AND owner_id = %(user)s
    ),
    lots AS (
        SELECT expires_on, SUM(remaining_amount) AS coins FROM rewards_coinlot
        WHERE account_id = (SELECT id FROM wallet) AND remaining_amount > 0
        GROUP BY expires_on
    ),
    next_lots AS (SELECT expires_on, coins FROM lots ORDER BY expires_on LIMIT %(shown)s)
    SELECT
        (SELECT balance FROM wallet),
        (SELECT COALESCE(SUM(credited_carbon_mg) - SUM(settled_carbon_mg), 0)
         FROM activities_dailycarbon WHERE user_id = %(user)s),
        (SELECT carbon_mg_per_coin FROM rewards_coinrate WHERE valid_from <= %(today)s
         ORDER BY valid_from DESC LIMIT 1),
        (SELECT COALESCE(SUM(coins), 0) FROM lots WHERE expires_on <= %(soon)s),
        n.expires_on,
        n.coins
    FROM (SELECT 1 AS one) AS one LEFT JOIN next_lots n ON 1 = 1
    ORDER BY n.expires_on
"""
)

# The id of a person's wallet, by its (kind, owner) key.
WALLET_ID = sql.SQL("SELECT id FROM rewards_ledgeraccount WHERE kind = %s AND owner_id = %s")

# How many people are owed coins for carbon credited on or before a day and not settled, and how
# many whole coins at the day's rate (remainders below a coin wait).
SETTLEMENT_OWED = sql.SQL(
    """
    SELECT COUNT(*), COALESCE(SUM(coins), 0) FROM (
        SELECT CAST(SUM(credited_carbon_mg - settled_carbon_mg) AS BIGINT) / %(rate)s AS coins
        FROM activities_dailycarbon
        WHERE day <= %(day)s AND credited_carbon_mg > settled_carbon_mg
        GROUP BY user_id
    ) AS owed
    WHERE coins > 0
"""
)
