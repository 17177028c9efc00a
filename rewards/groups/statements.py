"""The raw statements of group boards and team challenges, composed with `psycopg.sql`.

Values are the statements' named parameters; the boards' entry tables are `sql.Identifier`s.
"""

from __future__ import annotations

from psycopg import sql

from rewards.groups.models import GroupBoardEntry, GroupMemberBoardEntry
from rewards.ledger.statements import TRANSFER_READY
from rewards.lock_objects import LOCK_ORDER_SQL

# --- Group boards ---------------------------------------------------------------------------

# Each member's carbon in a period's days (members of active groups).
MEMBER_PERIOD_CARBON = sql.SQL(
    """
    SELECT membership.group_id, membership.user_id, grp.district_id,
           CAST(COALESCE(SUM(daily.credited_carbon_mg), 0) AS BIGINT) AS carbon_mg
      FROM rewards_groupmembership AS membership
      JOIN rewards_group AS grp ON grp.id = membership.group_id AND grp.status = 'active'
      LEFT JOIN activities_dailycarbon AS daily
        ON daily.user_id = membership.user_id AND daily.day >= %(start)s AND daily.day <= %(through)s
     GROUP BY membership.group_id, membership.user_id, grp.district_id
    """
)

# Each member's carbon of all time: their progress (refreshed through the board's last day first),
# one row a member whatever the history.
MEMBER_PROGRESS_CARBON = sql.SQL(
    """
    SELECT membership.group_id, membership.user_id, grp.district_id,
           COALESCE(progress.carbon_mg, 0) AS carbon_mg
      FROM rewards_groupmembership AS membership
      JOIN rewards_group AS grp ON grp.id = membership.group_id AND grp.status = 'active'
      LEFT JOIN rewards_badgeprogress AS progress ON progress.user_id = membership.user_id
    """
)

# One build of a period's group boards, in one statement: each member's carbon (`{member_carbon}`),
# the members ranked within their group (opted-out, inactive and closed accounts not listed), then
# the groups with enough members ranked by carbon per member, city-wide and per district.
GROUP_BOARD_BUILD = sql.SQL(
    """
WITH member_carbon AS MATERIALIZED ({member_carbon}),
-- Data-modifying: runs once whether or not the statement reads it.
members_ranked AS (
    INSERT INTO {members} (build_id, group_id, user_id, carbon_mg, rank)
    SELECT %(build)s, member_carbon.group_id, member_carbon.user_id, member_carbon.carbon_mg,
           ROW_NUMBER() OVER (
               PARTITION BY member_carbon.group_id
               ORDER BY member_carbon.carbon_mg DESC, member_carbon.user_id
           )
      FROM member_carbon
      JOIN accounts_user AS person ON person.id = member_carbon.user_id
     WHERE person.shows_on_leaderboards AND person.is_active AND person.closed_at IS NULL
),
scored AS (
    SELECT group_id, district_id, COUNT(*) AS members, CAST(SUM(carbon_mg) AS BIGINT) AS carbon_mg,
           CAST(SUM(carbon_mg) / COUNT(*) AS BIGINT) AS per_member
      FROM member_carbon
     GROUP BY group_id, district_id
    HAVING COUNT(*) >= %(min_members)s AND SUM(carbon_mg) > 0
)
INSERT INTO {groups}
    (build_id, group_id, district_id, members, carbon_mg, carbon_per_member_mg, city_rank, district_rank)
SELECT %(build)s, group_id, district_id, members, carbon_mg, per_member,
       ROW_NUMBER() OVER (ORDER BY per_member DESC, carbon_mg DESC, group_id),
       CASE WHEN district_id IS NULL THEN NULL ELSE ROW_NUMBER() OVER (
           PARTITION BY district_id ORDER BY per_member DESC, carbon_mg DESC, group_id
       ) END
  FROM scored
"""
)
_BOARD_TABLES = {
    "members": sql.Identifier(GroupMemberBoardEntry._meta.db_table),
    "groups": sql.Identifier(GroupBoardEntry._meta.db_table),
}
GROUP_BOARD_BUILD_PERIOD = GROUP_BOARD_BUILD.format(member_carbon=MEMBER_PERIOD_CARBON, **_BOARD_TABLES)
GROUP_BOARD_BUILD_ALL_TIME = GROUP_BOARD_BUILD.format(member_carbon=MEMBER_PROGRESS_CARBON, **_BOARD_TABLES)

# --- Team challenges ------------------------------------------------------------------------


# --- Team challenges ----------------------------------------------------------------------------

# The days of a member's carbon that count for a challenge (over `membership` and `daily`): in its
# period so far, from the local day they joined (what they did before was not the group's doing).
_CHALLENGE_MEMBER_DAYS = sql.SQL(
    """daily.user_id = membership.user_id
       AND daily.day >= GREATEST(%(start)s, CAST(membership.joined_at AT TIME ZONE %(tz)s AS date))
       AND daily.day <= %(end)s"""
)

# Per member of the group: their carbon credited in the challenge's period (so far) since they joined.
CHALLENGE_MEMBER_CARBON = sql.SQL(
    """
SELECT membership.user_id, CAST(COALESCE(SUM(daily.credited_carbon_mg), 0) AS BIGINT)
  FROM rewards_groupmembership AS membership
  LEFT JOIN activities_dailycarbon AS daily ON {member_days}
 WHERE membership.group_id = %(group)s
 GROUP BY membership.user_id
 ORDER BY membership.user_id
"""
).format(member_days=_CHALLENGE_MEMBER_DAYS)

# Raises what the challenge paid by the transfer's coins, in the transfer's statement, only within
# the budget: zero rows and the ledger moves nothing (a condition of `coins_transfer_if`).
CHALLENGE_WITHIN_BUDGET = sql.SQL(
    """
UPDATE rewards_teamchallenge SET paid_coins = paid_coins + %(condition_coins)s
 WHERE id = %(condition_challenge)s AND paid_coins + %(condition_coins)s <= budget_coins AND {ready}
RETURNING id
"""
).format(ready=TRANSFER_READY)

# The members a round pays: in the group since the target was met at the latest (who joins a met
# challenge's group took no part in meeting it), carbon credited in the challenge's period since
# they joined, not paid for this challenge yet (by person: a merged account's reward counts, see
# challenge_payouts_merge).
_CHALLENGE_TOOK_PART = sql.SQL(
    """
    rewards_groupmembership AS membership
    WHERE membership.group_id = %(group)s
      AND membership.joined_at <= %(met_at)s
      AND EXISTS (
          SELECT 1 FROM activities_dailycarbon AS daily
           WHERE {member_days} AND daily.credited_carbon_mg > 0
      )
      AND NOT EXISTS (
          SELECT 1 FROM rewards_challengepayout AS payout
           WHERE payout.challenge_id = %(challenge)s AND payout.user_key = membership.user_id
      )
    """
).format(member_days=_CHALLENGE_MEMBER_DAYS)
_CHALLENGE_PAYEE_WALLETS = sql.SQL(
    """
    SELECT membership.user_id, wallet.id AS wallet_id
      FROM rewards_ledgeraccount AS wallet, {took_part}
       AND wallet.kind = 'wallet' AND wallet.owner_id = membership.user_id
    """
).format(took_part=_CHALLENGE_TOOK_PART)

# Opens the wallets of the members a round pays that have none yet.
CHALLENGE_WALLETS_OPEN = sql.SQL(
    """
    INSERT INTO rewards_ledgeraccount (kind, owner_id, balance, created_at)
    SELECT 'wallet', membership.user_id, 0, %(now)s FROM {took_part}
    ON CONFLICT (kind, owner_id) DO NOTHING
    """
).format(took_part=_CHALLENGE_TOOK_PART)

# The payees' wallets, then the sponsor's account, locked in the ledger's global order; how many
# payees there are and what the sponsor holds.
CHALLENGE_ACCOUNTS_LOCK = sql.SQL(
    """
    WITH locked AS MATERIALIZED (
        SELECT id, kind, balance FROM rewards_ledgeraccount
         WHERE id IN (
             SELECT wallet_id FROM ({payees}) AS payees
             UNION ALL
             SELECT sponsor.id FROM rewards_ledgeraccount AS sponsor
              WHERE sponsor.kind = 'challenge_sponsor' AND sponsor.owner_id = %(sponsor)s
         )
         ORDER BY {lock_order}
           FOR UPDATE
    )
    SELECT count(*) FILTER (WHERE kind = 'wallet'),
           max(id) FILTER (WHERE kind = 'challenge_sponsor'),
           COALESCE(max(balance) FILTER (WHERE kind = 'challenge_sponsor'), 0)
      FROM locked
    """
).format(payees=_CHALLENGE_PAYEE_WALLETS, lock_order=LOCK_ORDER_SQL)

# The first `limit` payees of a round by person: (user id, wallet id).
CHALLENGE_PAYEES = sql.SQL(
    "SELECT user_id, wallet_id FROM ({payees}) AS payees ORDER BY user_id LIMIT %(limit)s"
).format(payees=_CHALLENGE_PAYEE_WALLETS)

# Raises what the challenge paid by a round's coins, only within its budget (no row: nothing paid).
CHALLENGE_BUDGET_TAKE = sql.SQL(
    """
    UPDATE rewards_teamchallenge SET paid_coins = paid_coins + %(coins)s
     WHERE id = %(challenge)s AND %(coins)s > 0 AND paid_coins + %(coins)s <= budget_coins
    RETURNING id
    """
)

# A round's legs for the ledger's batch writer: each payee's wallet credited, a lot of its own.
CHALLENGE_LEGS = sql.SQL(
    "(SELECT wallet AS account_id, CAST(%(payee_coins)s AS bigint) AS amount,"
    " CAST(%(payee_earned_on)s AS date) AS earned_on, CAST(%(payee_expires_on)s AS date) AS expires_on"
    " FROM unnest(CAST(%(payee_wallets)s AS bigint[])) AS wallet)"
)

# The payout rows of a round (the unique key: one per member and challenge).
CHALLENGE_PAYOUTS_RECORD = sql.SQL(
    """
    INSERT INTO rewards_challengepayout (challenge_id, user_id, user_key, coins, transaction_id, created_at)
    SELECT %(challenge)s, payee, payee, %(coins)s, %(transaction)s, %(now)s
      FROM unnest(CAST(%(users)s AS bigint[])) AS payee
    """
)
