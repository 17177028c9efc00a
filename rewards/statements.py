"""The rewards app's raw SQL for its set-based jobs (settlement, back-fill, expiry), composed with
`psycopg.sql` and run through `core.db.execute`.

The ledger's own rows (transactions, entries, lots, balances) are written only by the ledger's
writer (`rewards.ledger`); these statements prepare what it posts (who is owed what, which
wallets' coins expire) and change the jobs' own tables. (`rewards.services.statements` is another
thing: coins for a peer platform's statement.)
"""

from __future__ import annotations

from psycopg import sql

from rewards.lock_objects import LOCK_ORDER_SQL

# --- The wallet read ---------------------------------------------------------------------------

# What the app opens on, in one statement: the wallet by its (kind, owner) key; the person's carbon
# not yet settled (`daily_carbon_unsettled_person`); the coin rate in effect; of the unspent lots
# (`coin_lot_unspent`, in expiry order) the reminder window's coins and the next expiry days, read
# only as far as they go. Nothing here grows with the spent lots or settled days of the past.
# The statement is prepared, so after a few runs it has a generic plan. The expiring coins' range has
# both ends as parameters (`ever` is the first day there is): a generic plan estimates such a range
# narrow and reads it from the partial index of unspent lots. With only its upper end, it estimated
# a third of the wallet's lots and read every lot the wallet ever had through the plain account
# index, spent ones included (1,825 lots of a five-year wallet for the 30 expiring).
WALLET_SUMMARY = sql.SQL(
    """
WITH wallet AS (
    SELECT id, balance FROM rewards_ledgeraccount WHERE kind = %(wallet)s AND owner_id = %(user)s
),
next_lots AS (
    SELECT expires_on, SUM(remaining_amount) AS coins FROM rewards_coinlot
    WHERE account_id = (SELECT id FROM wallet) AND remaining_amount > 0
    GROUP BY expires_on ORDER BY expires_on LIMIT %(shown)s
)
SELECT
    (SELECT balance FROM wallet),
    (SELECT COALESCE(SUM(credited_carbon_mg) - SUM(settled_carbon_mg), 0)
     FROM activities_dailycarbon
     WHERE user_id = %(user)s AND credited_carbon_mg > settled_carbon_mg),
    (SELECT carbon_mg_per_coin FROM rewards_coinrate WHERE valid_from <= %(today)s
     ORDER BY valid_from DESC LIMIT 1),
    (SELECT COALESCE(SUM(remaining_amount), 0) FROM rewards_coinlot
     WHERE account_id = (SELECT id FROM wallet) AND remaining_amount > 0
       AND expires_on BETWEEN %(ever)s AND %(soon)s),
    n.expires_on,
    n.coins
FROM (SELECT 1 AS one) AS one LEFT JOIN next_lots n ON 1 = 1
ORDER BY n.expires_on
"""
)

# --- Settlement and back-fill --------------------------------------------------------------------

# The wallets of the people owed coins (`{owed}` has user_id), opened where missing, in person order.
WALLETS_OPEN = sql.SQL(
    """
INSERT INTO rewards_ledgeraccount (kind, owner_id, balance, created_at)
SELECT DISTINCT %(wallet)s, user_id, 0, %(now)s FROM {owed} ORDER BY 2
ON CONFLICT (kind, owner_id) DO NOTHING
"""
)

# Compare-and-set: the carbon of `{owed}`'s rows (id, settled_before, `{carbon}`) marked settled,
# only on the rows nobody settled since they were read.
MARK_SETTLED = sql.SQL(
    """
UPDATE activities_dailycarbon
   SET settled_carbon_mg = activities_dailycarbon.settled_carbon_mg + owed.{carbon},
       updated_at = %(now)s
  FROM {owed} AS owed
 WHERE activities_dailycarbon.id = owed.id
   AND activities_dailycarbon.settled_carbon_mg = owed.settled_before
"""
)

# --- Settlement ---------------------------------------------------------------------------------

# Per connection: the DailyCarbon rows owed something, and a chunk's rows and people.
SETTLEMENT_CANDIDATES = sql.Identifier("rewards_settlement_candidates")
SETTLEMENT_ROWS = sql.Identifier("rewards_settlement_rows")
SETTLEMENT_PEOPLE = sql.Identifier("rewards_settlement_people")

DROP_TABLE = sql.SQL("DROP TABLE IF EXISTS {table}")
ANALYZE = sql.SQL("ANALYZE {table}")
ANY_ROW = sql.SQL("SELECT EXISTS (SELECT 1 FROM {table})")
COUNT_ROWS = sql.SQL("SELECT COUNT(*) FROM {table}")

SETTLEMENT_CANDIDATES_COLLECT = sql.SQL(
    """
CREATE TEMPORARY TABLE {candidates} AS
SELECT id AS daily_carbon_id, user_id
  FROM activities_dailycarbon
 WHERE day <= %(day)s AND credited_carbon_mg > settled_carbon_mg
   AND user_id > %(lower)s AND user_id <= %(upper)s
"""
).format(candidates=SETTLEMENT_CANDIDATES)

SETTLEMENT_CANDIDATES_INDEX = sql.SQL("CREATE INDEX {index} ON {candidates} (user_id)").format(
    index=sql.Identifier("rewards_settlement_candidates_user"), candidates=SETTLEMENT_CANDIDATES
)

# Every `chunk_size`-th person (and the last): the chunks' inclusive upper bounds.
SETTLEMENT_CHUNK_UPPERS = sql.SQL(
    """
SELECT user_id FROM (
    SELECT user_id, ROW_NUMBER() OVER (ORDER BY user_id) AS position
      FROM (SELECT DISTINCT user_id FROM {candidates}) AS people
) AS numbered
 WHERE position %% %(chunk_size)s = 0
 ORDER BY user_id
"""
).format(candidates=SETTLEMENT_CANDIDATES)

SETTLEMENT_LAST_PERSON = sql.SQL("SELECT MAX(user_id) FROM {candidates}").format(
    candidates=SETTLEMENT_CANDIDATES
)

# A chunk's statements are index lookups over a few thousand rows: compiling them with JIT costs
# more than it saves, and with the default cost of a random read the planner prefers scanning
# every wallet. A chunk lost to a crash right after COMMIT is lost whole and settled again by the
# resumed run, so its commit need not wait for the disk.
SETTLEMENT_CHUNK_SETTINGS = (
    sql.SQL("SET LOCAL synchronous_commit TO OFF"),
    sql.SQL("SET LOCAL jit TO OFF"),
    sql.SQL("SET LOCAL random_page_cost TO 1.1"),
)

# Each person's whole coins, spread over their outstanding days oldest first. The key check (who
# this run has settled already) is a lookup per row through the (person, day, run) key, whatever
# the statistics say: as NOT EXISTS it was an anti-join planned from statistics that do not know the
# night's day until the table is analyzed (autovacuum does not analyze it for a night's share of a
# big table), so "no rows": the rows that earlier chunks settled were materialized and rescanned
# for every row of the chunk (a chunk of 12,500 people after two others: 302 M rows, 18 s, not 2).
SETTLEMENT_ROWS_COLLECT = sql.SQL(
    """
CREATE TEMPORARY TABLE {rows} AS
WITH outstanding AS (
    SELECT daily.id, daily.user_id, daily.day, daily.settled_carbon_mg AS settled_before,
           daily.credited_carbon_mg - daily.settled_carbon_mg AS carbon_mg
      FROM {candidates} AS candidate
      JOIN activities_dailycarbon AS daily ON daily.id = candidate.daily_carbon_id
     WHERE candidate.user_id > %(lower)s AND candidate.user_id <= %(upper)s
       AND daily.day <= %(day)s
       AND daily.credited_carbon_mg > daily.settled_carbon_mg
       AND (
           SELECT 1 FROM rewards_settlement AS settled
            WHERE settled.user_id = daily.user_id AND settled.day = %(day)s
              AND settled.run_id = %(run)s
       ) IS NULL
),
budget AS (
    SELECT user_id, (CAST(SUM(carbon_mg) AS BIGINT) / %(rate)s) * %(rate)s AS carbon_mg
      FROM outstanding GROUP BY user_id
),
spread AS (
    SELECT outstanding.id, outstanding.user_id, outstanding.day, outstanding.settled_before,
           LEAST(
               outstanding.carbon_mg,
               budget.carbon_mg - (
                   CAST(SUM(outstanding.carbon_mg) OVER (
                       PARTITION BY outstanding.user_id ORDER BY outstanding.day, outstanding.id
                   ) AS BIGINT) - outstanding.carbon_mg
               )
           ) AS settle_mg
      FROM outstanding JOIN budget ON budget.user_id = outstanding.user_id
     WHERE budget.carbon_mg > 0
)
SELECT id, user_id, day, settled_before, settle_mg FROM spread WHERE settle_mg > 0
"""
).format(rows=SETTLEMENT_ROWS, candidates=SETTLEMENT_CANDIDATES)

SETTLEMENT_WALLETS_OPEN = WALLETS_OPEN.format(owed=SETTLEMENT_ROWS)

SETTLEMENT_PEOPLE_COLLECT = sql.SQL(
    """
CREATE TEMPORARY TABLE {people} AS
SELECT person.*, (
    -- A lookup per person through the (kind, owner) index, whatever the statistics say.
    SELECT account.id FROM rewards_ledgeraccount AS account
     WHERE account.kind = %(wallet)s AND account.owner_id = person.user_id
) AS account_id
FROM (
    SELECT owed.user_id,
           CAST(SUM(owed.settle_mg) AS BIGINT) AS carbon_mg,
           CAST(SUM(owed.settle_mg) AS BIGINT) / %(rate)s AS coins,
           jsonb_agg(owed.day ORDER BY owed.day) AS carbon_days
      FROM {rows} AS owed GROUP BY owed.user_id
) AS person
"""
).format(people=SETTLEMENT_PEOPLE, rows=SETTLEMENT_ROWS)

SETTLEMENT_PEOPLE_TOTALS = sql.SQL(
    """
SELECT COUNT(*), COALESCE(SUM(carbon_mg), 0), COALESCE(SUM(coins), 0), MIN(user_id), MAX(user_id)
  FROM {people}
"""
).format(people=SETTLEMENT_PEOPLE)

# The claim, and the exactly-once key: someone else's settlement of anyone here makes this
# statement wait for them, then fail; the chunk is retried.
SETTLEMENT_CLAIM = sql.SQL(
    """
INSERT INTO rewards_settlement (user_id, day, run_id, transaction_id, carbon_mg, coins, carbon_days)
SELECT user_id, %(day)s, %(run)s, %(transaction)s, carbon_mg, coins, carbon_days
  FROM {people} ORDER BY user_id
"""
).format(people=SETTLEMENT_PEOPLE)

# The ledger's legs: a lot per person, earned on the day, expiring with it.
SETTLEMENT_LEGS = sql.SQL(
    "(SELECT account_id, coins AS amount, CAST(%(day)s AS date) AS earned_on,"
    " CAST(%(expires_on)s AS date) AS expires_on FROM {people})"
).format(people=SETTLEMENT_PEOPLE)

SETTLEMENT_MARK_SETTLED = MARK_SETTLED.format(owed=SETTLEMENT_ROWS, carbon=sql.Identifier("settle_mg"))

# --- Back-fill ----------------------------------------------------------------------------------

BACKFILL_OWED = sql.Identifier("rewards_backfill_owed")

# Per person and day: the whole coins owed at that day's rate, and the carbon they convert.
BACKFILL_OWED_COLLECT = sql.SQL(
    """
CREATE TEMPORARY TABLE {owed} ON COMMIT DROP AS
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
"""
).format(owed=BACKFILL_OWED)

BACKFILL_TOTALS = sql.SQL("SELECT count(DISTINCT user_id), coalesce(sum(coins), 0) FROM {owed}").format(
    owed=BACKFILL_OWED
)

BACKFILL_WALLETS_OPEN = WALLETS_OPEN.format(owed=BACKFILL_OWED)

BACKFILL_WALLETS_FIND = sql.SQL(
    """
UPDATE {owed} SET account_id = account.id
  FROM rewards_ledgeraccount AS account
 WHERE account.kind = %(wallet)s AND account.owner_id = {owed}.user_id
"""
).format(owed=BACKFILL_OWED)

# The ledger's legs: a lot per person and day, earned that day, expiring when that day's coins do.
BACKFILL_LEGS = sql.SQL(
    "(SELECT account_id, coins AS amount, day AS earned_on, expires_on FROM {owed} WHERE coins > 0)"
).format(owed=BACKFILL_OWED)

BACKFILL_RECORD = sql.SQL(
    """
INSERT INTO rewards_backfillsettlement (user_id, day, transaction_id, carbon_mg, coins, carbon_mg_per_coin)
SELECT user_id, day, %(transaction)s, carbon_mg, coins, rate FROM {owed}
 ORDER BY user_id, day
"""
).format(owed=BACKFILL_OWED)

BACKFILL_MARK_SETTLED = MARK_SETTLED.format(owed=BACKFILL_OWED, carbon=sql.Identifier("carbon_mg"))

# --- Expiry -------------------------------------------------------------------------------------

EXPIRING = sql.Identifier("rewards_expiring_wallets")
EXPIRY_LOCKED = sql.Identifier("rewards_expiry_locked_accounts")

EXPIRY_CHUNK_SETTINGS = (sql.SQL("SET LOCAL jit TO OFF"), sql.SQL("SET LOCAL random_page_cost TO 1.1"))

# The chunk's wallets with coins due, locked in the global order; the ids kept. Not the sink: the
# posting moves it last (`BatchPosting.counter_post`), so chunks running side by side hold it only
# for the end of their transactions, not for the whole chunk.
EXPIRY_LOCK = sql.SQL(
    """
CREATE TEMPORARY TABLE {locked} AS
SELECT id FROM (
    SELECT id, kind FROM rewards_ledgeraccount
     WHERE id IN (
        SELECT account_id FROM rewards_coinlot
         WHERE expires_on <= %(today)s AND remaining_amount > 0
           AND account_id > %(lower)s AND account_id <= %(upper)s
     )
     ORDER BY {lock_order} FOR UPDATE
) AS locked
"""
).format(locked=EXPIRY_LOCKED, lock_order=LOCK_ORDER_SQL)

# What is due of the wallets locked above, and only of them: a lot born past due since the lock (a
# back-fill's, on a wallet that had nothing due) waits for the next run, which locks its wallet.
EXPIRING_COLLECT = sql.SQL(
    """
CREATE TEMPORARY TABLE {expiring} AS
SELECT account_id, CAST(SUM(remaining_amount) AS BIGINT) AS coins, MAX(id) AS last_lot_id
  FROM rewards_coinlot
 WHERE expires_on <= %(today)s AND remaining_amount > 0
   AND account_id > %(lower)s AND account_id <= %(upper)s
   AND account_id IN (SELECT id FROM {locked})
 GROUP BY account_id
"""
).format(expiring=EXPIRING, locked=EXPIRY_LOCKED)

EXPIRING_TOTALS = sql.SQL(
    "SELECT COUNT(*), COALESCE(SUM(coins), 0), MIN(account_id), MAX(account_id), MAX(last_lot_id)"
    " FROM {expiring}"
).format(expiring=EXPIRING)

# The ledger's legs: each wallet's debit of what is due, which the lots' walk takes from exactly the
# lots due (they are the soonest-expiring, and hold exactly that much).
EXPIRY_LEGS = sql.SQL(
    "(SELECT account_id, -coins AS amount, CAST(NULL AS date) AS earned_on,"
    " CAST(NULL AS date) AS expires_on FROM {expiring})"
).format(expiring=EXPIRING)

# The upper wallet id of the next chunk of wallets with coins due.
EXPIRY_CHUNK_UPPER = sql.SQL(
    """
SELECT MAX(account_id) FROM (
    SELECT DISTINCT account_id FROM rewards_coinlot
     WHERE expires_on <= %(today)s AND remaining_amount > 0 AND account_id > %(lower)s
       AND account_id <= %(last)s
     ORDER BY account_id LIMIT %(chunk)s
) AS chunk
"""
)

# The expiry reminders' rows (`notifications_insert`): the people whose coins expire within a
# window, one row per person and bucket of expiry days (`{bucket}`, a `to_char` format): the month
# of expiry for the 30-day reminder, the ISO week for the 7-day one. Coins are earned daily, so a
# reminder per expiry day would be one a day; a bucket makes it one a month (a week). Only the
# wallets with id in (x_lower, x_upper] (said of both tables, so that a chunk reads only its range
# of each): an expiry chunk's own, or all.
EXPIRY_REMINDER_ROWS = sql.SQL(
    """
    SELECT wallet.owner_id,
           jsonb_build_object('coins', SUM(lot.remaining_amount), 'days', %(x_days)s,
                              'expires_on', to_char(MIN(lot.expires_on), 'YYYY-MM-DD')),
           'coins_expiring:' || %(x_days)s || ':' || to_char(lot.expires_on, {bucket})
      FROM rewards_coinlot AS lot
      JOIN rewards_ledgeraccount AS wallet ON wallet.id = lot.account_id AND wallet.kind = 'wallet'
     WHERE lot.expires_on > %(x_today)s AND lot.expires_on <= %(x_until)s AND lot.remaining_amount > 0
       AND lot.account_id > %(x_lower)s AND lot.account_id <= %(x_upper)s
       AND wallet.id > %(x_lower)s AND wallet.id <= %(x_upper)s
     GROUP BY wallet.owner_id, to_char(lot.expires_on, {bucket})
    """
)

# --- Reads --------------------------------------------------------------------------------------

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
