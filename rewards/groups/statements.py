"""The raw statements of group boards and team challenges, composed with `psycopg.sql`.

Values are the statements' named parameters; the boards' entry tables are `sql.Identifier`s.
"""

from __future__ import annotations

from psycopg import sql

from rewards.groups.models import GroupBoardEntry, GroupMemberBoardEntry

# --- Group boards ---------------------------------------------------------------------------

# One build of a period's group boards, in one statement: each member's carbon in the period (for
# active groups), the members ranked within their group (opted-out, inactive and closed accounts not
# listed), then the groups with enough members ranked by carbon per member, city-wide and per district.
GROUP_BOARD_BUILD = sql.SQL(
    """
WITH member_carbon AS MATERIALIZED (
    SELECT membership.group_id, membership.user_id, grp.district_id,
           CAST(COALESCE(SUM(daily.credited_carbon_mg), 0) AS BIGINT) AS carbon_mg
      FROM rewards_groupmembership AS membership
      JOIN rewards_group AS grp ON grp.id = membership.group_id AND grp.status = 'active'
      LEFT JOIN activities_dailycarbon AS daily
        ON daily.user_id = membership.user_id AND daily.day >= %(start)s AND daily.day <= %(through)s
     GROUP BY membership.group_id, membership.user_id, grp.district_id
),
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
).format(
    members=sql.Identifier(GroupMemberBoardEntry._meta.db_table),
    groups=sql.Identifier(GroupBoardEntry._meta.db_table),
)

# --- Team challenges ------------------------------------------------------------------------

# Per member of the group: their carbon credited in the challenge's period (so far).
MEMBER_CARBON = sql.SQL(
    """
SELECT membership.user_id, CAST(COALESCE(SUM(daily.credited_carbon_mg), 0) AS BIGINT)
  FROM rewards_groupmembership AS membership
  LEFT JOIN activities_dailycarbon AS daily
    ON daily.user_id = membership.user_id AND daily.day >= %(start)s AND daily.day <= %(end)s
 WHERE membership.group_id = %(group)s
 GROUP BY membership.user_id
 ORDER BY membership.user_id
"""
)

# Text, not a composition: the ledger's `TransferCondition` takes its statement as text (with
# its `{ready}` placeholder), until the ledger's rewrite takes a composable.
# Raises what the challenge paid by the transfer's coins, in the transfer's statement, only within
# the budget: zero rows and the ledger moves nothing.
WITHIN_BUDGET = """
UPDATE rewards_teamchallenge SET paid_coins = paid_coins + %(condition_coins)s
 WHERE id = %(condition_challenge)s AND paid_coins + %(condition_coins)s <= budget_coins AND {ready}
RETURNING id
"""

# The members a round pays: in the group, credited carbon in the challenge's period so far, not paid
# for this challenge yet (by person: a merged account's reward counts, see challenge_payouts_merge).
TOOK_PART = sql.SQL(
    """
    rewards_groupmembership AS membership
    WHERE membership.group_id = %(group)s
      AND EXISTS (
          SELECT 1 FROM activities_dailycarbon AS daily
           WHERE daily.user_id = membership.user_id AND daily.day >= %(start)s AND daily.day <= %(end)s
             AND daily.credited_carbon_mg > 0
      )
      AND NOT EXISTS (
          SELECT 1 FROM rewards_challengepayout AS payout
           WHERE payout.challenge_id = %(challenge)s AND payout.user_key = membership.user_id
      )
    """
)
# The payees (`{took_part}`) who have a wallet, with its id.
PAYEE_WALLETS = sql.SQL(
    """
    SELECT membership.user_id, wallet.id AS wallet_id
      FROM rewards_ledgeraccount AS wallet, {took_part}
       AND wallet.kind = 'wallet' AND wallet.owner_id = membership.user_id
    """
)
# Opens a wallet for each payee (`{took_part}`) who has none yet (the (kind, owner) key: once).
WALLETS_OPEN = sql.SQL(
    """
    INSERT INTO rewards_ledgeraccount (kind, owner_id, balance, created_at)
    SELECT 'wallet', membership.user_id, 0, %(now)s FROM {took_part}
    ON CONFLICT (kind, owner_id) DO NOTHING
    """
)
# The payees' wallets, then the sponsor's account, locked in the ledger's global order; how many
# payees there are and what the sponsor holds.
ACCOUNTS_LOCK = sql.SQL(
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
)
# One round of rewards in one statement: the first `limit` payees by person, the challenge's
# `paid_coins` raised within its budget (nothing moves otherwise), one ledger transaction with a
# leg per payee and the sponsor's, the balances, each payee's coin lot and payout row (the unique
# key: one per member and challenge).
ROUND_POST = sql.SQL(
    """
    WITH payees AS MATERIALIZED (
        SELECT * FROM ({payees}) AS payees ORDER BY user_id LIMIT %(limit)s
    ),
    total AS MATERIALIZED (SELECT count(*) * %(coins)s AS coins FROM payees),
    budget AS (
        UPDATE rewards_teamchallenge SET paid_coins = paid_coins + total.coins
          FROM total
         WHERE id = %(challenge)s AND total.coins > 0 AND paid_coins + total.coins <= budget_coins
        RETURNING rewards_teamchallenge.id
    ),
    new_transaction AS (
        INSERT INTO rewards_ledgertransaction (kind, reference, idempotency_key, memo, created_at)
        SELECT %(kind)s, %(reference)s, %(key)s, '', %(now)s FROM budget
        RETURNING id
    ),
    moved AS (
        UPDATE rewards_ledgeraccount AS account
           SET balance = account.balance
               + CASE WHEN account.id = %(sponsor_account)s THEN -total.coins ELSE %(coins)s END
          FROM new_transaction, total
         WHERE account.id IN (SELECT wallet_id FROM payees UNION ALL SELECT %(sponsor_account)s)
        RETURNING account.id
    ),
    entries AS (
        INSERT INTO rewards_ledgerentry (transaction_id, account_id, amount)
        SELECT new_transaction.id, payees.wallet_id, %(coins)s FROM new_transaction, payees
        UNION ALL
        SELECT new_transaction.id, %(sponsor_account)s, -total.coins FROM new_transaction, total
    ),
    lots AS (
        INSERT INTO rewards_coinlot
            (account_id, transaction_id, earned_on, expires_on, amount, remaining_amount)
        SELECT payees.wallet_id, new_transaction.id, %(today)s, %(expires_on)s, %(coins)s, %(coins)s
          FROM new_transaction, payees
    ),
    payouts AS (
        INSERT INTO rewards_challengepayout
            (challenge_id, user_id, user_key, coins, transaction_id, created_at)
        SELECT %(challenge)s, payees.user_id, payees.user_id, %(coins)s, new_transaction.id, %(now)s
          FROM new_transaction, payees
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM payouts), (SELECT count(*) FROM moved)
    """
)
