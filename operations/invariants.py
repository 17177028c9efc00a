"""The platform's invariants, checked across every app: a list of violations, empty when all hold.

What must stay true whatever load, faults or bad input the platform meets (issue 9):

- the ledger: every transaction sums to zero, every cached balance equals its entries, no wallet is
  negative, wallets + projects + merchants + expired = minted (the rewards ledger audit);
- coupons: per offer, coupons issued ≤ stock and issued = total stock − stock left; per person and
  offer, issued ≤ the limit; every coupon took its coins exactly once, every refund gave them back once;
- carbon: per person, behaviour and day (and month, and record) credited ≤ the cap of the factor that
  credited it; each external record stored once; what a person's records credited is what their day says;
- settlement: each person and day settled once, and what was settled is what was minted for it
  (a history back-fill's days too, each in a lot earned on its own day); a merge's capped carbon
  whose coins were kept counts as settled; another platform's statement mints once, what its mint says;
  a chunked run (rewards/chunked.py) counts each of its chunks once and is finished when all are;
- team challenges: no challenge pays more than its budget, what it counts as paid is what its
  payouts and the ledger say, and each member is paid once per challenge;
- idempotency: each key has at most one effect (one coupon, one donation, one ledger transaction);
- the reduction registry: a gram is in at most one lot, and what lots hold of a person's day is at
  most what was settled of it; a lot's volume is the sum of its allocations (and of its
  contributions); sold + retired ≤ registered tonnes, each counter the sum of its sales and
  retirements; each sale's proceeds paid once, exactly what the sale says, each contributor's
  share once and as its wallet's leg.

Read-only and set-based (one query per invariant), so it runs after every test of the reliability
suite, from `manage.py check_invariants` and from `manage.py ledger_audit`. Each finding names the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from psycopg import sql

from rewards.audit import ledger_audit

SHOWN_PER_CHECK = 20


def _rows(statement: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("{} LIMIT %(shown)s").format(sql.SQL(statement)), {"shown": SHOWN_PER_CHECK})
        return cursor.fetchall()


@dataclass(frozen=True)
class Invariant:
    name: str
    describe: Callable[[tuple], str]
    sql: str


INVARIANTS: tuple[Invariant, ...] = (
    # --- Coupons -----------------------------------------------------------------------------
    Invariant(
        "offer stock",
        lambda r: f"offer {r[0]}: {r[1]} coupons issued, total stock {r[2]}, stock left {r[3]}",
        """
        SELECT offer.id, COALESCE(issued.count, 0), offer.total_stock, offer.stock_left
        FROM merchants_offer AS offer
        LEFT JOIN (SELECT offer_id, COUNT(*) AS count FROM merchants_coupon GROUP BY offer_id) AS issued
          ON issued.offer_id = offer.id
        WHERE COALESCE(issued.count, 0) > offer.total_stock
           OR COALESCE(issued.count, 0) <> offer.total_stock - offer.stock_left
        ORDER BY offer.id
        """,
    ),
    Invariant(
        "limit per person",
        lambda r: f"offer {r[0]}, person {r[1]}: {r[2]} coupons issued, limit {r[3]}",
        """
        SELECT coupon.offer_id, coupon.user_id, COUNT(*), offer.limit_per_person
        FROM merchants_coupon AS coupon JOIN merchants_offer AS offer ON offer.id = coupon.offer_id
        WHERE coupon.user_id IS NOT NULL
        GROUP BY coupon.offer_id, coupon.user_id, offer.limit_per_person
        HAVING COUNT(*) > offer.limit_per_person
        ORDER BY coupon.offer_id, coupon.user_id
        """,
    ),
    Invariant(
        "redemption counter",
        lambda r: f"offer {r[0]}, person {r[1]}: counter says {r[2]}, {r[3]} coupons held, limit {r[4]}",
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
        """,
    ),
    Invariant(
        "coupon paid once",
        lambda r: f"coupon {r[0]}: {r[1]} redemption transactions moving {r[2]} coins for a price of {r[3]}",
        """
        SELECT coupon.public_id, COUNT(DISTINCT ledger.id), COALESCE(SUM(entry.amount), 0), coupon.price_coins
        FROM merchants_coupon AS coupon
        LEFT JOIN rewards_ledgertransaction AS ledger
          ON ledger.idempotency_key = 'coupon:' || coupon.public_id::text || ':redeem'
        LEFT JOIN rewards_ledgerentry AS entry ON entry.transaction_id = ledger.id AND entry.amount > 0
        GROUP BY coupon.id
        HAVING COUNT(DISTINCT ledger.id) <> 1 OR COALESCE(SUM(entry.amount), 0) <> coupon.price_coins
        ORDER BY coupon.id
        """,
    ),
    Invariant(
        "coupon refunded once",
        lambda r: f"coupon {r[0]}: refunded_at {r[1]} but {r[2]} refund transactions",
        """
        SELECT coupon.public_id, coupon.refunded_at, COUNT(ledger.id)
        FROM merchants_coupon AS coupon
        LEFT JOIN rewards_ledgertransaction AS ledger
          ON ledger.idempotency_key = 'coupon:' || coupon.public_id::text || ':refund'
        GROUP BY coupon.id
        HAVING COUNT(ledger.id) > 1 OR (COUNT(ledger.id) = 1 AND coupon.refunded_at IS NULL)
        ORDER BY coupon.id
        """,
    ),
    Invariant(
        "coupon idempotency key",
        lambda r: f"person {r[0]}: idempotency key {r[1]!r} has {r[2]} coupons",
        """
        SELECT user_id, idempotency_key, COUNT(*) FROM merchants_coupon
        WHERE idempotency_key IS NOT NULL AND user_id IS NOT NULL
        GROUP BY user_id, idempotency_key HAVING COUNT(*) > 1
        ORDER BY user_id
        """,
    ),
    # --- Donations ---------------------------------------------------------------------------
    Invariant(
        "donation idempotency key",
        lambda r: f"person {r[0]}: idempotency key {r[1]!r} has {r[2]} donations",
        """
        SELECT user_id, idempotency_key, COUNT(*) FROM rewards_donation WHERE user_id IS NOT NULL
        GROUP BY user_id, idempotency_key HAVING COUNT(*) > 1
        ORDER BY user_id
        """,
    ),
    Invariant(
        "donation amount",
        lambda r: f"donation {r[0]}: amount {r[1]} but its transaction gives the project {r[2]}",
        """
        SELECT donation.public_id, donation.amount, COALESCE(SUM(entry.amount), 0)
        FROM rewards_donation AS donation
        LEFT JOIN rewards_ledgerentry AS entry ON entry.transaction_id = donation.transaction_id
             AND entry.amount > 0
        GROUP BY donation.id HAVING COALESCE(SUM(entry.amount), 0) <> donation.amount
        ORDER BY donation.id
        """,
    ),
    # --- Settlement --------------------------------------------------------------------------
    Invariant(
        "settled once",
        lambda r: f"person {r[0]}, day {r[1]}, run {r[2]}: settled {r[3]} times",
        # Once per round of the day: a day settled again for what was owed has a run of its own.
        """
        SELECT user_id, day, run_id, COUNT(*) FROM rewards_settlement
        GROUP BY user_id, day, run_id HAVING COUNT(*) > 1 ORDER BY user_id, day, run_id
        """,
    ),
    Invariant(
        "settlement minted",
        lambda r: f"settlement transaction {r[0]}: its settlements say {r[1]} coins, it minted {r[2]}",
        # A chunk's settlements share one transaction: compare per transaction.
        """
        SELECT settled.transaction_id, settled.coins, COALESCE(minted.coins, 0)
        FROM (SELECT transaction_id, SUM(coins) AS coins FROM rewards_settlement GROUP BY transaction_id)
             AS settled
        LEFT JOIN (
            SELECT transaction_id, SUM(amount) AS coins FROM rewards_ledgerentry WHERE amount > 0
            GROUP BY transaction_id
        ) AS minted ON minted.transaction_id = settled.transaction_id
        WHERE settled.coins <> COALESCE(minted.coins, 0)
        ORDER BY settled.transaction_id
        """,
    ),
    Invariant(
        "settled carbon",
        lambda r: f"person {r[0]}: days say {r[1]} mg settled, settlements converted {r[2]} mg",
        # Per person: the carbon marked settled on their days is the carbon their settlements (nightly
        # and back-fill) converted. A merge moves the days to the account merged into (its chain's
        # end) but not the settlements, so both count for that account; and the carbon whose coins a
        # merge kept beyond the caps (lowered from the days' settled carbon) counts with the days.
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
        """,
    ),
    Invariant(
        "back-fill minted",
        lambda r: f"back-fill transaction {r[0]}: its settlements say {r[1]} coins, it minted {r[2]}",
        """
        SELECT settled.transaction_id, settled.coins, COALESCE(minted.coins, 0)
        FROM (
            SELECT transaction_id, SUM(coins) AS coins FROM rewards_backfillsettlement GROUP BY transaction_id
        ) AS settled
        LEFT JOIN (
            SELECT transaction_id, SUM(amount) AS coins FROM rewards_ledgerentry WHERE amount > 0
            GROUP BY transaction_id
        ) AS minted ON minted.transaction_id = settled.transaction_id
        WHERE settled.coins <> COALESCE(minted.coins, 0)
        ORDER BY settled.transaction_id
        """,
    ),
    Invariant(
        "chunked run counted once",
        lambda r: f"chunked run {r[0]}: counts {r[1]} of {r[2]} chunks done, its chunks say {r[3]} of {r[4]}",
        """
        SELECT run.id, run.chunks_done, run.chunks_total, COUNT(chunk.done_at), COUNT(chunk.id)
        FROM rewards_chunkedrun AS run
        LEFT JOIN rewards_runchunk AS chunk ON chunk.run_id = run.id
        GROUP BY run.id
        HAVING run.chunks_done <> COUNT(chunk.done_at) OR run.chunks_total <> COUNT(chunk.id)
            OR (run.finished_at IS NOT NULL) <> (run.chunks_done = run.chunks_total)
        ORDER BY run.id
        """,
    ),
    Invariant(
        "back-fill lot on its day",
        lambda r: (
            f"back-fill transaction {r[0]}, person {r[1]}, day {r[2]}: no lot of {r[3]} coins earned that day"
        ),
        # A back-filled day's coins are earned on that day, so they expire as that day's coins would have.
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
        """,
    ),
    Invariant(
        "statement minted once",
        lambda r: (
            f"{r[0]}: its mint says {r[1]} coins for person {r[2]}, {r[3]} ledger transactions minted {r[4]}"
        ),
        # Coins for another platform's statement: one ledger transaction keyed by the statement, minting
        # exactly the mint's coins (a merge may have moved them on since); none without a mint.
        """
        SELECT 'imported statement ' || statement.public_id::text, mint.coins, statement.user_id,
               COUNT(DISTINCT ledger.id),
               COALESCE(SUM(entry.amount), 0)
        FROM rewards_statementmint AS mint
        JOIN activities_peerstatement AS statement ON statement.id = mint.statement_id
        LEFT JOIN rewards_ledgertransaction AS ledger
          ON ledger.idempotency_key = 'peer_statement:' || statement.peer_id || ':' || statement.statement_id
        LEFT JOIN rewards_ledgerentry AS entry ON entry.transaction_id = ledger.id AND entry.amount > 0
        GROUP BY mint.id, statement.public_id, statement.user_id
        HAVING COUNT(DISTINCT ledger.id) <> 1 OR COALESCE(SUM(entry.amount), 0) <> mint.coins
        UNION ALL
        SELECT 'ledger transaction ' || ledger.id::text || ' without a mint', 0, NULL, 1, 0
        FROM rewards_ledgertransaction AS ledger
        WHERE ledger.kind = 'peer_statement'
          AND NOT EXISTS (SELECT 1 FROM rewards_statementmint AS mint WHERE mint.transaction_id = ledger.id)
        """,
    ),
    Invariant(
        "settled within credited",
        lambda r: f"person {r[0]}, day {r[1]}: settled {r[2]} mg of {r[3]} mg credited",
        """
        SELECT user_id, day, settled_carbon_mg, credited_carbon_mg FROM activities_dailycarbon
        WHERE settled_carbon_mg > credited_carbon_mg OR settled_carbon_mg < 0
        ORDER BY user_id, day
        """,
    ),
    # --- Carbon and caps ---------------------------------------------------------------------
    Invariant(
        "external record once",
        lambda r: f"record {r[0]!r} of {r[1]} stored {r[2]} times",
        """
        SELECT external_id, source, COUNT(*) FROM activities_activityrecord
        GROUP BY external_id, source HAVING COUNT(*) > 1 ORDER BY external_id
        """,
    ),
    Invariant(
        "day credited from records",
        lambda r: f"person {r[0]}, day {r[1]}: the day says {r[2]} mg, its records credited {r[3]} mg",
        # Only days that have records: a day may also be credited by other means (tests, imports).
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
        """,
    ),
    Invariant(
        "cap per record",
        lambda r: f"record {r[0]}: credited {r[1]} mg over its cap of {r[2]} mg",
        """
        SELECT record.id, record.credited_carbon_mg, factor.event_cap_mg
        FROM activities_activityrecord AS record
        JOIN activities_factor AS factor ON factor.id = record.factor_id
        WHERE factor.event_cap_mg IS NOT NULL AND record.credited_carbon_mg > factor.event_cap_mg
        ORDER BY record.id
        """,
    ),
    Invariant(
        "daily cap",
        lambda r: (
            f"person {r[0]}, behaviour {r[1]}, day {r[2]}: credited {r[3]} mg over the daily cap {r[4]} mg"
        ),
        """
        SELECT record.user_id, record.behaviour_id, record.local_day, SUM(record.credited_carbon_mg),
               MAX(factor.daily_cap_mg)
        FROM activities_activityrecord AS record
        JOIN activities_factor AS factor ON factor.id = record.factor_id
        GROUP BY record.user_id, record.behaviour_id, record.local_day
        HAVING COUNT(factor.daily_cap_mg) = COUNT(*)
           AND SUM(record.credited_carbon_mg) > MAX(factor.daily_cap_mg)
        ORDER BY record.user_id
        """,
    ),
    Invariant(
        "monthly cap",
        lambda r: f"person {r[0]}, behaviour {r[1]}, month {r[2]}: credited {r[3]} mg over the cap {r[4]} mg",
        """
        SELECT record.user_id, record.behaviour_id, date_trunc('month', record.local_day)::date,
               SUM(record.credited_carbon_mg), MAX(factor.monthly_cap_mg)
        FROM activities_activityrecord AS record
        JOIN activities_factor AS factor ON factor.id = record.factor_id
        GROUP BY record.user_id, record.behaviour_id, date_trunc('month', record.local_day)
        HAVING COUNT(factor.monthly_cap_mg) = COUNT(*)
           AND SUM(record.credited_carbon_mg) > MAX(factor.monthly_cap_mg)
        ORDER BY record.user_id
        """,
    ),
    # --- The reduction registry ---------------------------------------------------------------
    Invariant(
        "grams in one lot",
        lambda r: f"person {r[0]}, day {r[1]}, behaviour {r[2]}, version {r[3]}: in {r[4]} lots",
        """
        SELECT user_id, day, behaviour_id, methodology_version_id, COUNT(*) FROM registry_lotallocation
        GROUP BY user_id, day, behaviour_id, methodology_version_id HAVING COUNT(*) > 1
        ORDER BY user_id, day
        """,
    ),
    Invariant(
        "allocated within settled",
        lambda r: f"person {r[0]}, day {r[1]}: {r[2]} mg in lots, {r[3]} mg settled",
        """
        SELECT allocated.user_id, allocated.day, allocated.carbon, COALESCE(day.settled_carbon_mg, 0)
        FROM (
            SELECT user_id, day, SUM(carbon_mg) AS carbon FROM registry_lotallocation GROUP BY user_id, day
        ) AS allocated
        LEFT JOIN activities_dailycarbon AS day ON day.user_id = allocated.user_id AND day.day = allocated.day
        WHERE allocated.carbon > COALESCE(day.settled_carbon_mg, 0)
        ORDER BY allocated.user_id, allocated.day
        """,
    ),
    Invariant(
        "lot volume",
        lambda r: f"lot {r[0]}: volume {r[1]} mg, allocations {r[2]} mg, contributions {r[3]} mg, {r[4]} t",
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
        """,
    ),
    Invariant(
        "lot tonnes",
        lambda r: (
            f"lot {r[0]} ({r[1]}): {r[2]} t, sold {r[3]} t (sales {r[4]}), "
            f"retired {r[5]} t (retirements {r[6]})"
        ),
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
        """,
    ),
    Invariant(
        "proceeds paid once",
        lambda r: f"sale {r[0]}: paid at {r[1]}, says {r[2]} coins, {r[3]} transactions minted {r[4]}",
        # One ledger transaction per sale (key and reference `lot-sale:<sale>`): every contributor's
        # share and the welfare project's coins are its legs.
        """
        SELECT sale.public_id, sale.proceeds_paid_at, sale.contributor_coins + sale.welfare_coins,
               COUNT(DISTINCT ledger.id), COALESCE(SUM(entry.amount), 0)
        FROM registry_lotsale AS sale
        LEFT JOIN rewards_ledgertransaction AS ledger
          ON ledger.kind = 'issuance' AND ledger.reference = 'lot-sale:' || sale.public_id::text
        LEFT JOIN rewards_ledgerentry AS entry ON entry.transaction_id = ledger.id AND entry.amount > 0
        GROUP BY sale.id
        HAVING (sale.proceeds_paid_at IS NULL AND COUNT(ledger.id) > 0)
            OR COUNT(DISTINCT ledger.id) > 1
            OR COALESCE(SUM(entry.amount), 0) <> sale.contributor_coins + sale.welfare_coins
        ORDER BY sale.id
        """,
    ),
    Invariant(
        "proceeds shares",
        lambda r: f"sale {r[0]}: {r[1]} coins to contributors, shares {r[2]}, their wallets' legs {r[3]}",
        # Each contributor's share (one per sale and person) is the leg its wallet got in the sale's
        # transaction, and the shares add up to the contributors' coins.
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
        """,
    ),
    Invariant(
        "behaviour day counter",
        lambda r: (
            f"person {r[0]}, behaviour {r[1]}, day {r[2]}: counter {r[3]} mg, records credited {r[4]} mg"
        ),
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
        """,
    ),
    # --- Team challenges ---------------------------------------------------------------------
    Invariant(
        "challenge budget",
        lambda r: f"challenge {r[0]}: budget {r[1]}, counted paid {r[2]}, payouts {r[3]}, ledger paid {r[4]}",
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
        """,
    ),
    Invariant(
        "challenge paid once",
        lambda r: f"{r[0]}: account {r[1]} credited by {r[2]} reward transactions",
        """
        SELECT movement.reference, entry.account_id, COUNT(*)
        FROM rewards_ledgertransaction AS movement
        JOIN rewards_ledgerentry AS entry ON entry.transaction_id = movement.id AND entry.amount > 0
        WHERE movement.kind = 'challenge_reward'
        GROUP BY movement.reference, entry.account_id
        HAVING COUNT(*) > 1
        ORDER BY movement.reference
        """,
    ),
)


def invariant_violations() -> list[str]:
    """Every invariant that does not hold, one line per offending row (capped per invariant)."""
    violations = [f"ledger: {problem}" for problem in ledger_audit().problems]
    for invariant in INVARIANTS:
        violations.extend(f"{invariant.name}: {invariant.describe(row)}" for row in _rows(invariant.sql))
    return violations


def invariants_checked() -> int:
    """How many invariants `invariant_violations` checks (the ledger audit counts as one)."""
    return len(INVARIANTS) + 1
