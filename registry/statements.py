"""The registry's SQL: the set-based allocation of a lot, its contributions and the pro-rata shares.

Named constants, run through `execute` (one executor). The allocation reads activities' records and
days and accounts' pooling consents by table, as settlement reads `activities_dailycarbon`.
"""

from __future__ import annotations

from django.db import connection
from psycopg import sql

from accounts.statements import MERGED_SURVIVORS

# The grams a lot takes, and each person's share of them, in one statement. Per person, day,
# behaviour and methodology version, the credited carbon of
# records that are credited (never held or rejected ones), of the lot's behaviours under the version
# the lot names, on days of the period that are settled in full (nothing credited there waits for
# settlement), of people whose pooling consent is active now. Keys already in any lot are skipped by
# the primary key; rows go in in key order so two allocations at once wait on each other in the same
# order and never deadlock. Each person's share is then the sum of what went in, under a pseudonym
# only this lot uses: the first 32 hex digits of SHA-256(<lot's secret salt> ":" <account id>).
# The shares go in in person order too, so their indexes on the person take them leaf after leaf
# rather than each at a random leaf (measured: 0.2 s of the statement's 4.5 s on 100,000 people).
#
# Two forms. ALLOCATE inserts plainly and fails on the first key some lot already holds (or that a
# lot allocated at the same moment committed first); ALLOCATE_SKIPPING skips such keys with
# ON CONFLICT DO NOTHING. The plain form is the usual case (a period and behaviours no lot took)
# and costs half the index work: ON CONFLICT probes the key before each row, inserts it
# speculatively and confirms it (one more WAL record per row). The service runs the plain form in a
# savepoint and the skipping form when it meets a taken key.
_ALLOCATE = sql.SQL("""
WITH allocated AS (
    INSERT INTO registry_lotallocation
        (lot_id, user_id, day, behaviour_id, methodology_version_id, carbon_mg)
    SELECT %(lot_id)s, record.user_id, record.local_day, record.behaviour_id, factor.version_id,
           SUM(record.credited_carbon_mg)
    FROM activities_activityrecord AS record
    JOIN activities_factor AS factor ON factor.id = record.factor_id
    JOIN registry_lotbehaviour AS taken
      ON taken.lot_id = %(lot_id)s AND taken.behaviour_id = record.behaviour_id
     AND taken.methodology_version_id = factor.version_id
    WHERE record.local_day BETWEEN %(period_start)s AND %(period_end)s
      AND record.status = 'credited' AND record.credited_carbon_mg > 0
      -- A credited record's day always exists; it is settled in full unless it is among the
      -- (few) days still owed something, which the partial index daily_carbon_unsettled holds.
      AND NOT EXISTS (
          SELECT 1 FROM activities_dailycarbon AS day
          WHERE day.user_id = record.user_id AND day.day = record.local_day
            AND day.credited_carbon_mg > day.settled_carbon_mg
      )
      AND EXISTS (
          SELECT 1 FROM accounts_poolingconsent AS consent
          WHERE consent.user_id = record.user_id AND consent.revoked_at IS NULL
      )
    GROUP BY record.user_id, record.local_day, record.behaviour_id, factor.version_id
    ORDER BY record.user_id, record.local_day, record.behaviour_id, factor.version_id
    {on_conflict}
    RETURNING user_id, carbon_mg
)
INSERT INTO registry_lotcontribution (lot_id, user_id, contributor_id, carbon_mg)
SELECT %(lot_id)s, user_id,
       left(encode(sha256(convert_to(%(salt)s || ':' || user_id::text, 'UTF8')), 'hex'), 32),
       SUM(carbon_mg)
FROM allocated
GROUP BY user_id
ORDER BY user_id
""")
ALLOCATE = _ALLOCATE.format(on_conflict=sql.SQL(""))
ALLOCATE_SKIPPING = _ALLOCATE.format(
    on_conflict=sql.SQL("ON CONFLICT (user_id, day, behaviour_id, methodology_version_id) DO NOTHING")
)

# The volume a lot allocated (its contributions' grams) and how many people contributed.
TOTALS = sql.SQL("""
SELECT COALESCE(SUM(carbon_mg), 0), COUNT(*) FROM registry_lotcontribution WHERE lot_id = %(lot_id)s
""")

# Hands out `tonnes` serial numbers under a prefix in one statement: the last number after.
SERIALS_TAKE = sql.SQL("""
INSERT INTO registry_serialcounter (prefix, last_number) VALUES (%(prefix)s, %(tonnes)s)
ON CONFLICT (prefix) DO UPDATE SET last_number = registry_serialcounter.last_number + EXCLUDED.last_number
RETURNING last_number
""")

# The leaves of the commitment, in their order (bytewise by pseudonym).
LEAVES = sql.SQL("""
SELECT contributor_id, carbon_mg FROM registry_lotcontribution
WHERE lot_id = %(lot_id)s ORDER BY contributor_id COLLATE "C"
""")

# Takes tonnes off a registered lot for a sale or a retirement, if that many are left; answers the
# offset of the first tonne taken (the serial numbers it covers). Zero rows: not registered or too few.
TONNES_TAKE_SOLD = sql.SQL("""
UPDATE registry_reductionlot SET sold_tonnes = sold_tonnes + %(tonnes)s
WHERE id = %(lot_id)s AND status = 'registered' AND sold_tonnes + retired_tonnes + %(tonnes)s <= tonnes
RETURNING sold_tonnes + retired_tonnes - %(tonnes)s
""")

# The same, for a retirement.
TONNES_TAKE_RETIRED = sql.SQL("""
UPDATE registry_reductionlot SET retired_tonnes = retired_tonnes + %(tonnes)s
WHERE id = %(lot_id)s AND status = 'registered' AND sold_tonnes + retired_tonnes + %(tonnes)s <= tonnes
RETURNING sold_tonnes + retired_tonnes - %(tonnes)s
""")

# Whole coins pro rata to each contributor's grams: each gets the floor of pool × grams / total;
# the coins left (fewer than the number of contributors) go one each to the largest remainders,
# ties to the smaller pseudonym (bytewise). Sums to the pool exactly.
PRO_RATA = sql.SQL("""
WITH total AS (
    SELECT SUM(carbon_mg)::numeric AS carbon FROM registry_lotcontribution WHERE lot_id = %(lot_id)s
),
floored AS (
    SELECT share.user_id, share.contributor_id,
           floor(%(pool)s::numeric * share.carbon_mg / total.carbon) AS coins,
           (%(pool)s::numeric * share.carbon_mg) %% total.carbon AS remainder
    FROM registry_lotcontribution AS share CROSS JOIN total
    WHERE share.lot_id = %(lot_id)s
),
ranked AS (
    SELECT user_id, coins,
           ROW_NUMBER() OVER (ORDER BY remainder DESC, contributor_id COLLATE "C") AS position,
           %(pool)s - SUM(coins) OVER () AS left_over
    FROM floored
)
SELECT user_id, (coins + CASE WHEN position <= left_over THEN 1 ELSE 0 END)::bigint AS coins
FROM ranked
WHERE coins + CASE WHEN position <= left_over THEN 1 ELSE 0 END > 0
ORDER BY user_id
""")


# A sale's proceeds paid in one ledger transaction, set-based (registry.services.proceeds_post),
# posted by the ledger's batch writer (rewards.ledger.BatchPosting) from issuance.

# Each contributor's coins (PRO_RATA), one row per person and sale: the exactly-once key. A share of
# an account merged since (one a merge could not move: the target had its own in the lot) is paid to
# the account it was merged into, with that account's own.
PROCEEDS_SHARES = sql.SQL("""
WITH {survivors},
paid AS (
    INSERT INTO registry_lotproceedsshare (sale_id, user_id, coins, transaction_id)
    SELECT %(sale_id)s, COALESCE(survivor.person, share.user_id), SUM(share.coins), %(transaction)s
    FROM ({pro_rata}) AS share
    LEFT JOIN survivor ON survivor.id = share.user_id
    GROUP BY COALESCE(survivor.person, share.user_id)
    ORDER BY 2
    RETURNING 1
)
SELECT COUNT(*) FROM paid
""").format(survivors=MERGED_SURVIVORS, pro_rata=PRO_RATA)

# The contributors' wallets, opened where missing (a contributor who never earned a coin has none).
PROCEEDS_WALLETS_OPEN = sql.SQL("""
INSERT INTO rewards_ledgeraccount (kind, owner_id, balance, created_at)
SELECT %(wallet)s, user_id, 0, %(now)s FROM registry_lotproceedsshare
WHERE sale_id = %(sale_id)s
ORDER BY user_id
ON CONFLICT (kind, owner_id) DO NOTHING
""")

# Their row locks, by primary key: wallets come first in the ledger's lock order
# (rewards.lock_objects); the project and issuance accounts are locked after them.
PROCEEDS_WALLETS_LOCK = sql.SQL("""
SELECT COUNT(*) FROM (
    SELECT account.id FROM rewards_ledgeraccount AS account
    JOIN registry_lotproceedsshare AS share
      ON account.kind = %(wallet)s AND account.owner_id = share.user_id
    WHERE share.sale_id = %(sale_id)s
    ORDER BY account.id
    FOR UPDATE OF account
) AS locked
""")

# The legs for the batch writer: each contributor's share into their wallet with a coin lot earned
# today, and the welfare project's coins (no expiry: a project's account holds no lots).
PROCEEDS_LEGS = sql.SQL("""(
SELECT account.id AS account_id, share.coins AS amount,
       CAST(%(today)s AS date) AS earned_on, CAST(%(expires_on)s AS date) AS expires_on
FROM registry_lotproceedsshare AS share
JOIN rewards_ledgeraccount AS account ON account.kind = %(wallet)s AND account.owner_id = share.user_id
WHERE share.sale_id = %(sale_id)s
UNION ALL
SELECT CAST(%(project_account)s AS bigint), CAST(%(welfare_coins)s AS bigint), NULL, NULL
WHERE %(welfare_coins)s > 0
)""")


# --- A merge of two accounts (registry.personal_data.accounts_merge) ----------------------------------
# The grams a lot holds of the source become the target's, so no later lot pools them again under the
# target (whose records they are now). An allocation moves to the target's key unless the target holds
# that key already: then, in the same lot, its grams join the target's row; in another lot, the row
# stays the source's (the target's key is taken, so no lot takes those grams again either).

MERGED_ALLOCATIONS_MOVE = sql.SQL("""
UPDATE registry_lotallocation AS allocation SET user_id = %(target)s
WHERE allocation.user_id = %(source)s
  AND NOT EXISTS (
      SELECT 1 FROM registry_lotallocation AS held
      WHERE held.user_id = %(target)s AND held.day = allocation.day
        AND held.behaviour_id = allocation.behaviour_id
        AND held.methodology_version_id = allocation.methodology_version_id
  )
""")

MERGED_ALLOCATIONS_JOIN = sql.SQL("""
WITH joined AS (
    DELETE FROM registry_lotallocation AS allocation
    USING registry_lotallocation AS held
    WHERE allocation.user_id = %(source)s AND held.user_id = %(target)s AND held.lot_id = allocation.lot_id
      AND held.day = allocation.day AND held.behaviour_id = allocation.behaviour_id
      AND held.methodology_version_id = allocation.methodology_version_id
    RETURNING allocation.day, allocation.behaviour_id, allocation.methodology_version_id, allocation.carbon_mg
)
UPDATE registry_lotallocation AS held SET carbon_mg = held.carbon_mg + joined.carbon_mg
FROM joined
WHERE held.user_id = %(target)s AND held.day = joined.day AND held.behaviour_id = joined.behaviour_id
  AND held.methodology_version_id = joined.methodology_version_id
""")

# A lot's share (a leaf of its published commitment: pseudonym and grams, which do not change) becomes
# the target's where the target has none in that lot; its proceeds then go to the target.
MERGED_CONTRIBUTIONS_MOVE = sql.SQL("""
UPDATE registry_lotcontribution AS share SET user_id = %(target)s
WHERE share.user_id = %(source)s
  AND NOT EXISTS (
      SELECT 1 FROM registry_lotcontribution AS held
      WHERE held.lot_id = share.lot_id AND held.user_id = %(target)s
  )
""")


# Allocations and merges exclude each other: an allocation holds this lock shared (two lots may still
# allocate at once) from before its statement until it commits; a merge takes it exclusively before it
# moves anything (registry.personal_data.accounts_merge_lock, the first of the apps' merge locks). A
# merge then sees every allocation committed and moves its rows; an allocation after it sees the
# records the target's. No deadlock: when it waits, an allocation holds only its own lot's row, which
# no merge takes; a merge holds only the two accounts' rows (FOR NO KEY UPDATE, which the
# allocation's foreign keys, KEY SHARE, do not wait for).
ALLOCATION_LOCK_SHARED = sql.SQL(
    "SELECT pg_advisory_xact_lock_shared(hashtextextended('registry-allocation', 0))"
)
ALLOCATION_LOCK_EXCLUSIVE = sql.SQL(
    "SELECT pg_advisory_xact_lock(hashtextextended('registry-allocation', 0))"
)


# For the allocation's transaction: room to sort a month of a city's rows into key order in memory;
# and hash joins throughout — the planner takes the anti join with the unsettled days to leave a
# handful of rows and would look each record's factor, lot behaviour and consent up one by one
# (measured: 3× slower on the small city).
ALLOCATION_SETTINGS = (
    "SET LOCAL work_mem = '256MB'",
    "SET LOCAL enable_nestloop = off",
)


def execute(statement: str | sql.Composable, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []
