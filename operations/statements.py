"""The statements of the cross-app invariants (`operations.invariants`), composed with `psycopg.sql`.

Each selects the rows that break one invariant, in a stable order; the check adds its own `LIMIT`.
Read-only and set-based: one statement per invariant.
"""

from __future__ import annotations

from psycopg import sql

from accounts.statements import MERGED_SURVIVORS

# “offer stock”: the rows that break it, one per offender, each reported as "offer …: … coupons issued,
# total stock …, stock left …".
OFFER_STOCK = sql.SQL(
    """
        SELECT offer.id, COALESCE(issued.count, 0), offer.total_stock, offer.stock_left
        FROM merchants_offer AS offer
        LEFT JOIN (SELECT offer_id, COUNT(*) AS count FROM merchants_coupon GROUP BY offer_id) AS issued
          ON issued.offer_id = offer.id
        WHERE COALESCE(issued.count, 0) > offer.total_stock
           OR COALESCE(issued.count, 0) <> offer.total_stock - offer.stock_left
        ORDER BY offer.id
        """
)

# “limit per person”: the rows that break it, one per offender, each reported as "offer …, person …: …
# coupons issued, limit …".
LIMIT_PER_PERSON = sql.SQL(
    """
        SELECT coupon.offer_id, coupon.user_id, COUNT(*), offer.limit_per_person
        FROM merchants_coupon AS coupon JOIN merchants_offer AS offer ON offer.id = coupon.offer_id
        WHERE coupon.user_id IS NOT NULL
        GROUP BY coupon.offer_id, coupon.user_id, offer.limit_per_person
        HAVING COUNT(*) > offer.limit_per_person
        ORDER BY coupon.offer_id, coupon.user_id
        """
)

# “redemption counter”: the rows that break it, one per offender, each reported as "offer …, person …:
# counter says …, … coupons held, limit …".
REDEMPTION_COUNTER = sql.SQL(
    """
        SELECT counter.offer_id, counter.user_id, counter.redeemed_count, COALESCE(held.count, 0),
               offer.limit_per_person
        FROM merchants_offerredemptioncount AS counter
        JOIN merchants_offer AS offer ON offer.id = counter.offer_id
        LEFT JOIN (
            SELECT offer_id, user_id, COUNT(*) AS count FROM merchants_coupon GROUP BY offer_id, user_id
        ) AS held ON held.offer_id = counter.offer_id AND held.user_id = counter.user_id
        WHERE counter.redeemed_count > offer.limit_per_person
           OR counter.redeemed_count < COALESCE(held.count, 0)
        ORDER BY counter.offer_id, counter.user_id
        """
)

# “coupon paid once”: the rows that break it, one per offender, each reported as "coupon …: … redemption
# transactions moving … coins for a price of …".
COUPON_PAID_ONCE = sql.SQL(
    """
        SELECT coupon.public_id, COUNT(DISTINCT ledger.id), COALESCE(SUM(entry.amount), 0), coupon.price_coins
        FROM merchants_coupon AS coupon
        LEFT JOIN rewards_ledgertransaction AS ledger
          ON ledger.idempotency_key = 'coupon:' || coupon.public_id::text || ':redeem'
        LEFT JOIN rewards_ledgerentry AS entry ON entry.transaction_id = ledger.id AND entry.amount > 0
        GROUP BY coupon.id
        HAVING COUNT(DISTINCT ledger.id) <> 1 OR COALESCE(SUM(entry.amount), 0) <> coupon.price_coins
        ORDER BY coupon.id
        """
)

# “coupon refunded once”: the rows that break it (two refunds, a refund not marked, or a mark with
# no refund), one per offender, each reported as "coupon …: refunded_at … but … refund transactions".
COUPON_REFUNDED_ONCE = sql.SQL(
    """
        SELECT coupon.public_id, coupon.refunded_at, COUNT(ledger.id)
        FROM merchants_coupon AS coupon
        LEFT JOIN rewards_ledgertransaction AS ledger
          ON ledger.idempotency_key = 'coupon:' || coupon.public_id::text || ':refund'
        GROUP BY coupon.id
        HAVING COUNT(ledger.id) > 1
            OR (COUNT(ledger.id) = 1) <> (coupon.refunded_at IS NOT NULL)
        ORDER BY coupon.id
        """
)

# “coupon idempotency key”: the rows that break it, one per offender, each reported as "person …:
# idempotency key {r[1]!r} has … coupons".
COUPON_IDEMPOTENCY_KEY = sql.SQL(
    """
        SELECT user_id, idempotency_key, COUNT(*) FROM merchants_coupon
        WHERE idempotency_key IS NOT NULL AND user_id IS NOT NULL
        GROUP BY user_id, idempotency_key HAVING COUNT(*) > 1
        ORDER BY user_id
        """
)

# “donation idempotency key”: the rows that break it, one per offender, each reported as "person …:
# idempotency key {r[1]!r} has … donations".
DONATION_IDEMPOTENCY_KEY = sql.SQL(
    """
        SELECT user_id, idempotency_key, COUNT(*) FROM rewards_donation WHERE user_id IS NOT NULL
        GROUP BY user_id, idempotency_key HAVING COUNT(*) > 1
        ORDER BY user_id
        """
)

# “donation amount”: the rows that break it, one per offender, each reported as "donation …: amount … but
# its transaction gives the project …".
DONATION_AMOUNT = sql.SQL(
    """
        SELECT donation.public_id, donation.amount, COALESCE(SUM(entry.amount), 0)
        FROM rewards_donation AS donation
        LEFT JOIN rewards_ledgerentry AS entry ON entry.transaction_id = donation.transaction_id
             AND entry.amount > 0
        GROUP BY donation.id HAVING COALESCE(SUM(entry.amount), 0) <> donation.amount
        ORDER BY donation.id
        """
)

# “settled once”: the rows that break it, one per offender, each reported as "person …, day …, run …:
# settled … times".
SETTLED_ONCE = sql.SQL(
    """
        SELECT user_id, day, run_id, COUNT(*) FROM rewards_settlement
        GROUP BY user_id, day, run_id HAVING COUNT(*) > 1 ORDER BY user_id, day, run_id
        """
)

# Transactions whose settlement rows (`{settlements}`: the nightly settlement's or a back-fill's)
# say another number of coins than the transaction minted: (transaction, coins said, coins minted).
MINTED_AS_SETTLED = sql.SQL(
    """
        SELECT settled.transaction_id, settled.coins, COALESCE(minted.coins, 0)
        FROM (SELECT transaction_id, SUM(coins) AS coins FROM {settlements} GROUP BY transaction_id)
             AS settled
        LEFT JOIN (
            SELECT transaction_id, SUM(amount) AS coins FROM rewards_ledgerentry WHERE amount > 0
            GROUP BY transaction_id
        ) AS minted ON minted.transaction_id = settled.transaction_id
        WHERE settled.coins <> COALESCE(minted.coins, 0)
        ORDER BY settled.transaction_id
        """
)

# “settlement minted”: the rows that break it, one per offender, each reported as "settlement transaction
# …: its settlements say … coins, it minted …".
SETTLEMENT_MINTED = MINTED_AS_SETTLED.format(settlements=sql.Identifier("rewards_settlement"))

# “settled carbon”: the rows that break it, one per offender, each reported as "person …: days say … mg
# settled, settlements converted … mg".
SETTLED_CARBON = sql.SQL(
    """
        WITH RECURSIVE person AS (
            SELECT id AS user_id, id AS person_id FROM accounts_user WHERE merged_into_id IS NULL
            UNION ALL
            SELECT account.id, person.person_id
            FROM accounts_user AS account JOIN person ON account.merged_into_id = person.user_id
        ),
        days AS (
            SELECT person.person_id, SUM(amount) AS settled
            FROM (
                SELECT user_id, settled_carbon_mg AS amount FROM activities_dailycarbon
                UNION ALL
                SELECT target_user_id, settled_kept_carbon_mg FROM activities_mergecapcorrection
            ) AS settled_days JOIN person ON person.user_id = settled_days.user_id
            GROUP BY person.person_id
        ),
        converted AS (
            SELECT person.person_id, SUM(carbon_mg) AS carbon
            FROM (
                SELECT user_id, carbon_mg FROM rewards_settlement
                UNION ALL
                SELECT user_id, carbon_mg FROM rewards_backfillsettlement
            ) AS settlements JOIN person ON person.user_id = settlements.user_id
            GROUP BY person.person_id
        )
        SELECT days.person_id, days.settled, COALESCE(converted.carbon, 0)
        FROM days LEFT JOIN converted ON converted.person_id = days.person_id
        WHERE days.settled <> COALESCE(converted.carbon, 0)
        ORDER BY days.person_id
        """
)

# “back-fill minted”: the rows that break it, one per offender, each reported as "back-fill transaction
# …: its settlements say … coins, it minted …".
BACK_FILL_MINTED = MINTED_AS_SETTLED.format(settlements=sql.Identifier("rewards_backfillsettlement"))

# “settlement rate”: the settlements whose coins at their run's rate are not the carbon they converted
# (settlement, person, day, coins, rate, carbon). Settlement converts whole coins only: the carbon it
# marks settled is coins × rate, and the rest stays owed. Carbon converted for coins that are not
# its own would be marked settled without its coins, or stay owed and be paid again, while every
# other check still adds up.
SETTLEMENT_RATE = sql.SQL(
    """
        SELECT settled.id, settled.user_id, settled.day, settled.coins, run.carbon_mg_per_coin,
               settled.carbon_mg
        FROM rewards_settlement AS settled JOIN rewards_settlementrun AS run ON run.id = settled.run_id
        WHERE settled.coins * run.carbon_mg_per_coin <> settled.carbon_mg
        ORDER BY settled.id
        """
)

# “back-fill rate”: the same of a back-fill's settlements, each at the rate of its own day, which it
# keeps (settlement, person, day, coins, rate, carbon).
BACK_FILL_RATE = sql.SQL(
    """
        SELECT id, user_id, day, coins, carbon_mg_per_coin, carbon_mg
        FROM rewards_backfillsettlement
        WHERE coins * carbon_mg_per_coin <> carbon_mg
        ORDER BY id
        """
)

# “back-fill lot on its day”: the rows that break it, one per offender, each reported as "back-fill
# transaction …, person …, day …: no lot of … coins earned that day".
BACK_FILL_LOT_ON_ITS_DAY = sql.SQL(
    """
        SELECT settled.transaction_id, settled.user_id, settled.day, settled.coins
        FROM rewards_backfillsettlement AS settled
        WHERE NOT EXISTS (
            SELECT 1 FROM rewards_coinlot AS lot
            JOIN rewards_ledgeraccount AS wallet ON wallet.id = lot.account_id
            WHERE lot.transaction_id = settled.transaction_id AND wallet.kind = 'wallet'
              AND wallet.owner_id = settled.user_id AND lot.earned_on = settled.day
              AND lot.amount = settled.coins
        )
        ORDER BY settled.transaction_id, settled.user_id, settled.day
        """
)

# “statement minted”: the rows that break it, one per offender, each reported as "…: its mint says …
# coins for person …, … ledger transactions minted …" (a round and the transactions keyed by it; a
# peer_statement transaction no round names).
STATEMENT_MINTED = sql.SQL(
    """
        SELECT 'imported statement ' || statement.public_id::text || ' round ' || mint.round::text,
               mint.coins, statement.user_id, COUNT(DISTINCT ledger.id), COALESCE(SUM(entry.amount), 0)
        FROM rewards_statementmint AS mint
        JOIN activities_peerstatement AS statement ON statement.id = mint.statement_id
        LEFT JOIN rewards_ledgertransaction AS ledger
          ON ledger.idempotency_key = 'peer_statement:' || statement.peer_id || ':' || statement.statement_id
             || CASE WHEN mint.round = 1 THEN '' ELSE ':' || mint.round::text END
        LEFT JOIN rewards_ledgerentry AS entry ON entry.transaction_id = ledger.id AND entry.amount > 0
        GROUP BY mint.id, statement.public_id, statement.user_id
        HAVING COUNT(DISTINCT ledger.id) <> CASE WHEN mint.coins > 0 THEN 1 ELSE 0 END
            OR COALESCE(SUM(entry.amount), 0) <> mint.coins
            OR mint.coins <> mint.carbon_mg * mint.coin_share_percent / 100 / mint.carbon_mg_per_coin
        UNION ALL
        SELECT 'ledger transaction ' || ledger.id::text || ' without a mint', 0, NULL, 1, 0
        FROM rewards_ledgertransaction AS ledger
        WHERE ledger.kind = 'peer_statement'
          AND NOT EXISTS (SELECT 1 FROM rewards_statementmint AS mint WHERE mint.transaction_id = ledger.id)
        """
)

# “statement minted within counted”: the statements whose rounds minted more carbon than they count
# (statement, carbon its rounds settled, carbon it counts).
STATEMENT_MINTED_WITHIN_COUNTED = sql.SQL(
    """
        SELECT 'imported statement ' || statement.public_id::text, SUM(mint.carbon_mg),
               statement.total_carbon_mg
        FROM rewards_statementmint AS mint
        JOIN activities_peerstatement AS statement ON statement.id = mint.statement_id
        GROUP BY statement.id HAVING SUM(mint.carbon_mg) > statement.total_carbon_mg
        """
)

# “statement counted”: the rows that break it, one per offender, each reported as "…: counts … mg, …
# … mg" (a statement and its reductions' sum; a reduction and what it states less the instances still
# held here; an instance still held by a report of ours rejected since).
STATEMENT_COUNTED = sql.SQL(
    """
        SELECT 'imported statement ' || statement.public_id::text, statement.total_carbon_mg,
               'its reductions', SUM(reduction.carbon_mg)
        FROM activities_peerstatement AS statement
        JOIN activities_importedreduction AS reduction ON reduction.statement_id = statement.id
        GROUP BY statement.id HAVING statement.total_carbon_mg <> SUM(reduction.carbon_mg)
        UNION ALL
        SELECT 'imported reduction ' || reduction.id::text, reduction.carbon_mg,
               'stated less the instances held here', GREATEST(0, reduction.stated_carbon_mg - held.carbon_mg)
        FROM activities_importedreduction AS reduction
        CROSS JOIN LATERAL (
            SELECT COALESCE(SUM(instance.carbon_mg) FILTER (WHERE instance.credited_record_id IS NOT NULL), 0)
                       AS carbon_mg,
                   COUNT(*) AS listed
            FROM activities_importedinstance AS instance
            WHERE instance.statement_id = reduction.statement_id AND instance.behaviour = reduction.behaviour
        ) AS held
        -- Only reductions that list instances (an erasure deletes them, keeping the amounts).
        WHERE held.listed > 0
          AND reduction.carbon_mg <> GREATEST(0, reduction.stated_carbon_mg - held.carbon_mg)
        UNION ALL
        SELECT 'imported instance ' || instance.id::text, instance.carbon_mg,
               'held by rejected record', record.id
        FROM activities_importedinstance AS instance
        JOIN activities_activityrecord AS record ON record.id = instance.credited_record_id
        WHERE record.status = 'rejected'
        """
)

# “settled within credited”: the rows that break it, one per offender, each reported as "person …, day …:
# settled … mg of … mg credited".
SETTLED_WITHIN_CREDITED = sql.SQL(
    """
        SELECT user_id, day, settled_carbon_mg, credited_carbon_mg FROM activities_dailycarbon
        WHERE settled_carbon_mg > credited_carbon_mg OR settled_carbon_mg < 0
        ORDER BY user_id, day
        """
)

# “external record once”: the rows that break it, one per offender, each reported as "record {r[0]!r} of
# … stored … times".
EXTERNAL_RECORD_ONCE = sql.SQL(
    """
        SELECT external_id, source, COUNT(*) FROM activities_activityrecord
        GROUP BY external_id, source HAVING COUNT(*) > 1 ORDER BY external_id
        """
)

# “day credited from records”: the rows that break it, one per offender, each reported as "person …, day
# …: the day says … mg, its records credited … mg".
DAY_CREDITED_FROM_RECORDS = sql.SQL(
    """
        SELECT records.user_id, records.local_day, COALESCE(day.credited_carbon_mg, 0), records.credited
        FROM (
            SELECT user_id, local_day, SUM(credited_carbon_mg) AS credited
            FROM activities_activityrecord GROUP BY user_id, local_day
        ) AS records
        LEFT JOIN activities_dailycarbon AS day
          ON day.user_id = records.user_id AND day.day = records.local_day
        WHERE COALESCE(day.credited_carbon_mg, 0) < records.credited
        ORDER BY records.user_id, records.local_day
        """
)

# “progress counts the days”: the rows that break it, one per offender, each reported as "person …:
# progress … mg after refresh … (latest run ending …), their counted days … mg (the last with carbon
# …)".
# Open accounts only: a closed account's days are counted but it keeps no progress.
PROGRESS_COUNTS_THE_DAYS = sql.SQL(
    """
        SELECT person.id, progress.carbon_mg, progress.refresh_number, progress.run_end,
               counted.carbon_mg, counted.last_day
        FROM (
            SELECT user_id, SUM(counted_carbon_mg) AS carbon_mg,
                   MAX(day) FILTER (WHERE counted_carbon_mg > 0) AS last_day
            FROM activities_dailycarbon GROUP BY user_id
        ) AS counted
        FULL JOIN rewards_badgeprogress AS progress ON progress.user_id = counted.user_id
        JOIN accounts_user AS person ON person.id = COALESCE(progress.user_id, counted.user_id)
        WHERE person.closed_at IS NULL
          AND (COALESCE(progress.carbon_mg, 0) <> COALESCE(counted.carbon_mg, 0)
               OR progress.run_end IS DISTINCT FROM counted.last_day)
        ORDER BY person.id
        """
)

# “progress refreshes one at a time”: a refresh of the people's progress not finished while a later one
# began (a refresh is planned only when none is unfinished), or whose finish disagrees with its
# chunked run's (refreshes recorded before they ran as chunked runs have none).
PROGRESS_REFRESHES_ONE_AT_A_TIME = sql.SQL(
    """
        SELECT id, finished_at, run_finished_at, next_id
        FROM (
            SELECT refresh.id, refresh.finished_at, run.id AS run_id, run.finished_at AS run_finished_at,
                   LEAD(refresh.id) OVER (ORDER BY refresh.id) AS next_id
            FROM rewards_progressrefresh AS refresh
            LEFT JOIN rewards_chunkedrun AS run ON run.key = 'progress:' || refresh.id
        ) AS refresh
        WHERE (run_id IS NOT NULL AND finished_at IS DISTINCT FROM run_finished_at)
           OR (finished_at IS NULL AND next_id IS NOT NULL)
        ORDER BY id
        """
)

# “cap per record”: the rows that break it, one per offender, each reported as "record …: credited … mg
# over its cap of … mg".
CAP_PER_RECORD = sql.SQL(
    """
        SELECT record.id, record.credited_carbon_mg, factor.event_cap_mg
        FROM activities_activityrecord AS record
        JOIN activities_factor AS factor ON factor.id = record.factor_id
        WHERE factor.event_cap_mg IS NOT NULL AND record.credited_carbon_mg > factor.event_cap_mg
        ORDER BY record.id
        """
)

# “daily cap”: the rows that break it, one per offender, each reported as "person …, behaviour …, day …:
# credited … mg over the daily cap … mg".
DAILY_CAP = sql.SQL(
    """
        SELECT record.user_id, record.behaviour_id, record.local_day, SUM(record.credited_carbon_mg),
               MAX(factor.daily_cap_mg)
        FROM activities_activityrecord AS record
        JOIN activities_factor AS factor ON factor.id = record.factor_id
        GROUP BY record.user_id, record.behaviour_id, record.local_day
        HAVING COUNT(factor.daily_cap_mg) = COUNT(*)
           AND SUM(record.credited_carbon_mg) > MAX(factor.daily_cap_mg)
        ORDER BY record.user_id
        """
)

# “monthly cap”: the rows that break it, one per offender, each reported as "person …, behaviour …, month
# …: credited … mg over the cap … mg".
MONTHLY_CAP = sql.SQL(
    """
        SELECT record.user_id, record.behaviour_id, date_trunc('month', record.local_day)::date,
               SUM(record.credited_carbon_mg), MAX(factor.monthly_cap_mg)
        FROM activities_activityrecord AS record
        JOIN activities_factor AS factor ON factor.id = record.factor_id
        GROUP BY record.user_id, record.behaviour_id, date_trunc('month', record.local_day)
        HAVING COUNT(factor.monthly_cap_mg) = COUNT(*)
           AND SUM(record.credited_carbon_mg) > MAX(factor.monthly_cap_mg)
        ORDER BY record.user_id
        """
)

# “grams in one lot”: the rows that break it, one per offender, each reported as "person …, day …,
# behaviour …, version …: in … lots".
GRAMS_IN_ONE_LOT = sql.SQL(
    """
        SELECT user_id, day, behaviour_id, methodology_version_id, COUNT(*) FROM registry_lotallocation
        GROUP BY user_id, day, behaviour_id, methodology_version_id HAVING COUNT(*) > 1
        ORDER BY user_id, day
        """
)

# “allocated within settled”: the rows that break it, one per offender, each reported as "person …, day
# …: … mg in lots, … mg settled". A merged account's grams count as the person's it was merged into (at
# the end of a chain of merges): its days are theirs now, and the allocations a merge could not move
# (registry.statements) stay its own. A merge that capped the person's day lowered its settled carbon
# to what stays credited and kept the coins settled beyond it (MergeCapCorrection): that carbon counts
# as settled, as in “settled carbon”, so the grams lots already hold of it (their commitment is
# published) stay within it.
ALLOCATED_WITHIN_SETTLED = sql.SQL(
    """
        WITH {survivors}
        SELECT allocated.user_id, allocated.day, allocated.carbon,
               COALESCE(day.settled_carbon_mg, 0) + COALESCE(kept.carbon, 0)
        FROM (
            SELECT COALESCE(survivor.person, allocation.user_id) AS user_id, allocation.day,
                   SUM(allocation.carbon_mg) AS carbon
            FROM registry_lotallocation AS allocation
            LEFT JOIN survivor ON survivor.id = allocation.user_id
            GROUP BY 1, allocation.day
        ) AS allocated
        LEFT JOIN activities_dailycarbon AS day ON day.user_id = allocated.user_id AND day.day = allocated.day
        LEFT JOIN (
            SELECT COALESCE(survivor.person, correction.target_user_id) AS user_id, correction.day,
                   SUM(correction.settled_kept_carbon_mg) AS carbon
            FROM activities_mergecapcorrection AS correction
            LEFT JOIN survivor ON survivor.id = correction.target_user_id
            GROUP BY 1, correction.day
        ) AS kept ON kept.user_id = allocated.user_id AND kept.day = allocated.day
        WHERE allocated.carbon > COALESCE(day.settled_carbon_mg, 0) + COALESCE(kept.carbon, 0)
        ORDER BY allocated.user_id, allocated.day
        """
).format(survivors=MERGED_SURVIVORS)

# “lot volume”: the rows that break it, one per offender, each reported as "lot …: volume … mg,
# allocations … mg, contributions … mg, … t".
LOT_VOLUME = sql.SQL(
    """
        SELECT lot.public_id, lot.volume_mg, COALESCE(allocated.carbon, 0), COALESCE(shares.carbon, 0),
               lot.tonnes
        FROM registry_reductionlot AS lot
        LEFT JOIN (SELECT lot_id, SUM(carbon_mg) AS carbon FROM registry_lotallocation GROUP BY lot_id)
             AS allocated ON allocated.lot_id = lot.id
        LEFT JOIN (SELECT lot_id, SUM(carbon_mg) AS carbon FROM registry_lotcontribution GROUP BY lot_id)
             AS shares ON shares.lot_id = lot.id
        WHERE lot.volume_mg <> COALESCE(allocated.carbon, 0) OR lot.volume_mg <> COALESCE(shares.carbon, 0)
           OR lot.tonnes <> lot.volume_mg / 1000000000
        ORDER BY lot.id
        """
)

# “lot tonnes”: the rows that break it, one per offender, each reported as "lot … (…): … t, sold … t
# (sales …), "             f"retired … t (retirements …)".
LOT_TONNES = sql.SQL(
    """
        SELECT lot.public_id, lot.status, lot.tonnes, lot.sold_tonnes, COALESCE(sold.tonnes, 0),
               lot.retired_tonnes, COALESCE(retired.tonnes, 0)
        FROM registry_reductionlot AS lot
        LEFT JOIN (SELECT lot_id, SUM(tonnes) AS tonnes FROM registry_lotsale GROUP BY lot_id) AS sold
          ON sold.lot_id = lot.id
        LEFT JOIN (
            SELECT lot_id, SUM(tonnes) AS tonnes FROM registry_lotretirement GROUP BY lot_id
        ) AS retired ON retired.lot_id = lot.id
        WHERE lot.sold_tonnes + lot.retired_tonnes > lot.tonnes
           OR lot.sold_tonnes <> COALESCE(sold.tonnes, 0) OR lot.retired_tonnes <> COALESCE(retired.tonnes, 0)
           OR (lot.status <> 'registered' AND lot.sold_tonnes + lot.retired_tonnes > 0)
        ORDER BY lot.id
        """
)

# “proceeds paid once”: the rows that break it, one per offender, each reported as "sale …: paid at …,
# says … coins, … transactions minted …".
PROCEEDS_PAID_ONCE = sql.SQL(
    """
        SELECT sale.public_id, sale.proceeds_paid_at, sale.contributor_coins + sale.welfare_coins,
               COUNT(DISTINCT ledger.id), COALESCE(SUM(entry.amount), 0)
        FROM registry_lotsale AS sale
        LEFT JOIN rewards_ledgertransaction AS ledger
          ON ledger.kind = 'issuance' AND ledger.reference = 'lot-sale:' || sale.public_id::text
        LEFT JOIN rewards_ledgerentry AS entry ON entry.transaction_id = ledger.id AND entry.amount > 0
        GROUP BY sale.id
        HAVING (sale.proceeds_paid_at IS NULL AND COUNT(ledger.id) > 0)
            OR COALESCE(SUM(entry.amount), 0) <> sale.contributor_coins + sale.welfare_coins
        ORDER BY sale.id
        """
)

# “behaviour day counter”: the rows that break it, one per offender, each reported as "person …,
# behaviour …, day …: counter … mg, records credited … mg".
BEHAVIOUR_DAY_COUNTER = sql.SQL(
    """
        SELECT counter.user_id, counter.behaviour_id, counter.day, counter.credited_carbon_mg,
               COALESCE(records.credited, 0)
        FROM activities_behaviourday AS counter
        LEFT JOIN (
            SELECT user_id, behaviour_id, local_day, SUM(credited_carbon_mg) AS credited
            FROM activities_activityrecord GROUP BY user_id, behaviour_id, local_day
        ) AS records ON records.user_id = counter.user_id AND records.behaviour_id = counter.behaviour_id
             AND records.local_day = counter.day
        WHERE counter.credited_carbon_mg <> COALESCE(records.credited, 0)
        ORDER BY counter.user_id
        """
)

# “behaviour month counter”: the rows that break it, one per offender, each reported as "person …,
# behaviour …, month …: counter … mg, records credited … mg".
BEHAVIOUR_MONTH_COUNTER = sql.SQL(
    """
        SELECT counter.user_id, counter.behaviour_id, counter.month, counter.credited_carbon_mg,
               COALESCE(records.credited, 0)
        FROM activities_behaviourmonth AS counter
        LEFT JOIN (
            SELECT user_id, behaviour_id, CAST(date_trunc('month', local_day) AS date) AS month,
                   SUM(credited_carbon_mg) AS credited
            FROM activities_activityrecord GROUP BY 1, 2, 3
        ) AS records ON records.user_id = counter.user_id AND records.behaviour_id = counter.behaviour_id
             AND records.month = counter.month
        WHERE counter.credited_carbon_mg <> COALESCE(records.credited, 0)
        ORDER BY counter.user_id
        """
)

# “group member count”: the rows that break it, one per offender, each reported as "group …: counted …
# members, … memberships".
GROUP_MEMBER_COUNT = sql.SQL(
    """
        SELECT team.public_id, team.member_count, COUNT(membership.id)
        FROM rewards_group AS team
        LEFT JOIN rewards_groupmembership AS membership ON membership.group_id = team.id
        GROUP BY team.id
        HAVING team.member_count <> COUNT(membership.id)
        ORDER BY team.id
        """
)

# “group owner”: the rows that break it, one per offender, each reported as "group …: … owners"; a
# group with members and not closed has exactly one owner.
GROUP_OWNER = sql.SQL(
    """
        SELECT team.public_id, COUNT(membership.id)
        FROM rewards_group AS team
        LEFT JOIN rewards_groupmembership AS membership
          ON membership.group_id = team.id AND membership.role = 'owner'
        WHERE team.status <> 'closed' AND team.member_count > 0
        GROUP BY team.id
        HAVING COUNT(membership.id) <> 1
        ORDER BY team.id
        """
)

# “challenge budget”: the rows that break it, one per offender, each reported as "challenge …: budget …,
# counted paid …, payouts …, ledger paid …".
CHALLENGE_BUDGET = sql.SQL(
    """
        SELECT challenge.id, challenge.budget_coins, challenge.paid_coins,
               COALESCE(payouts.coins, 0), COALESCE(ledger.coins, 0)
        FROM rewards_teamchallenge AS challenge
        LEFT JOIN (
            SELECT challenge_id, SUM(coins) AS coins FROM rewards_challengepayout GROUP BY challenge_id
        ) AS payouts ON payouts.challenge_id = challenge.id
        LEFT JOIN (
            SELECT movement.reference, SUM(entry.amount) AS coins
            FROM rewards_ledgertransaction AS movement
            JOIN rewards_ledgerentry AS entry ON entry.transaction_id = movement.id AND entry.amount > 0
            WHERE movement.kind = 'challenge_reward'
            GROUP BY movement.reference
        ) AS ledger ON ledger.reference = 'challenge:' || challenge.public_id::text
        WHERE challenge.paid_coins > challenge.budget_coins
           OR challenge.paid_coins <> COALESCE(payouts.coins, 0)
           OR challenge.paid_coins <> COALESCE(ledger.coins, 0)
        ORDER BY challenge.id
        """
)

# “challenge paid once”: the rows that break it, one per offender, each reported as "…: account …
# credited by … reward transactions".
CHALLENGE_PAID_ONCE = sql.SQL(
    """
        SELECT movement.reference, entry.account_id, COUNT(*)
        FROM rewards_ledgertransaction AS movement
        JOIN rewards_ledgerentry AS entry ON entry.transaction_id = movement.id AND entry.amount > 0
        WHERE movement.kind = 'challenge_reward'
        GROUP BY movement.reference, entry.account_id
        HAVING COUNT(*) > 1
        ORDER BY movement.reference
        """
)

# A chunked run (rewards/chunked.py) counts each of its chunks once and finishes when all are done.
CHUNKED_RUN_COUNTED_ONCE = sql.SQL(
    """
SELECT run.id, run.chunks_done, run.chunks_total, COUNT(chunk.done_at), COUNT(chunk.id)
FROM rewards_chunkedrun AS run
LEFT JOIN rewards_runchunk AS chunk ON chunk.run_id = run.id
GROUP BY run.id
HAVING run.chunks_done <> COUNT(chunk.done_at) OR run.chunks_total <> COUNT(chunk.id)
    OR (run.finished_at IS NOT NULL) <> (run.chunks_done = run.chunks_total)
ORDER BY run.id
"""
)

# Each contributor's share (one per sale and person) is the leg its wallet got in the sale's
# transaction, and the shares add up to the contributors' coins.
PROCEEDS_SHARES = sql.SQL(
    """
SELECT sale.public_id, sale.contributor_coins, COALESCE(shares.coins, 0), COALESCE(shares.legs, 0)
FROM registry_lotsale AS sale
LEFT JOIN (
    SELECT share.sale_id, SUM(share.coins) AS coins, SUM(entry.amount) AS legs,
           COUNT(*) FILTER (WHERE entry.amount IS DISTINCT FROM share.coins) AS mismatched
    FROM registry_lotproceedsshare AS share
    LEFT JOIN rewards_ledgeraccount AS wallet
      ON wallet.kind = 'wallet' AND wallet.owner_id = share.user_id
    LEFT JOIN rewards_ledgerentry AS entry
      ON entry.transaction_id = share.transaction_id AND entry.account_id = wallet.id
    GROUP BY share.sale_id
) AS shares ON shares.sale_id = sale.id
WHERE sale.proceeds_paid_at IS NOT NULL
  AND (sale.contributor_coins <> COALESCE(shares.coins, 0) OR COALESCE(shares.mismatched, 0) > 0)
ORDER BY sale.id
"""
)
