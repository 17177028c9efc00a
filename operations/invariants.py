"""The platform's invariants, checked across every app: a list of violations, empty when all hold.

What must stay true whatever load, faults or bad input the platform meets (issue 9):

- the ledger: every transaction sums to zero, every cached balance equals its entries, no wallet is
  negative, wallets + projects + merchants + expired = minted (the rewards ledger audit);
- coupons: per offer, coupons issued ≤ stock and issued = total stock − stock left; per person and
  offer, issued ≤ the limit; every coupon took its coins exactly once, every refund gave them back
  once, and a coupon is marked refunded exactly when it was;
- carbon: per person, behaviour and day (and month, and record) credited ≤ the cap of the factor that
  credited it; each external record stored once; what a person's records credited is what their day
  says, and what each behaviour's day and month counters say; a person's progress (badges, the
  all-time board) is what their days say it counted, and its refreshes ran one at a time, each
  finished when its chunked run was;
- settlement: each person and day settled once, and what was settled is what was minted for it
  (a history back-fill's days too, each in a lot earned on its own day), its coins at its rate being
  the carbon it converted; a merge's capped carbon whose coins were kept counts as settled; another
  platform's statement mints each round once,
  what the round says, never more carbon than it counts, and counts what it states less the
  instances a live report of ours holds;
  a chunked run (rewards/chunked.py) counts each of its chunks once and is finished when all are;
- groups: a group's member count is its memberships, and a group with members, not closed, has
  exactly one owner;
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

from operations import statements
from rewards.audit import ledger_audit

SHOWN_PER_CHECK = 20


def _rows(statement: sql.Composable) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("{} LIMIT %(shown)s").format(statement), {"shown": SHOWN_PER_CHECK})
        return cursor.fetchall()


@dataclass(frozen=True)
class Invariant:
    name: str
    describe: Callable[[tuple], str]
    sql: sql.Composable


INVARIANTS: tuple[Invariant, ...] = (
    # --- Coupons -----------------------------------------------------------------------------
    Invariant(
        "offer stock",
        lambda r: f"offer {r[0]}: {r[1]} coupons issued, total stock {r[2]}, stock left {r[3]}",
        statements.OFFER_STOCK,
    ),
    Invariant(
        "limit per person",
        lambda r: f"offer {r[0]}, person {r[1]}: {r[2]} coupons issued, limit {r[3]}",
        statements.LIMIT_PER_PERSON,
    ),
    Invariant(
        "redemption counter",
        lambda r: f"offer {r[0]}, person {r[1]}: counter says {r[2]}, {r[3]} coupons held, limit {r[4]}",
        statements.REDEMPTION_COUNTER,
    ),
    Invariant(
        "coupon paid once",
        lambda r: f"coupon {r[0]}: {r[1]} redemption transactions moving {r[2]} coins for a price of {r[3]}",
        statements.COUPON_PAID_ONCE,
    ),
    Invariant(
        "coupon refunded once",
        lambda r: f"coupon {r[0]}: refunded_at {r[1]} but {r[2]} refund transactions",
        statements.COUPON_REFUNDED_ONCE,
    ),
    Invariant(
        "coupon idempotency key",
        lambda r: f"person {r[0]}: idempotency key {r[1]!r} has {r[2]} coupons",
        statements.COUPON_IDEMPOTENCY_KEY,
    ),
    # --- Donations ---------------------------------------------------------------------------
    Invariant(
        "donation idempotency key",
        lambda r: f"person {r[0]}: idempotency key {r[1]!r} has {r[2]} donations",
        statements.DONATION_IDEMPOTENCY_KEY,
    ),
    Invariant(
        "donation amount",
        lambda r: f"donation {r[0]}: amount {r[1]} but its transaction gives the project {r[2]}",
        statements.DONATION_AMOUNT,
    ),
    # --- Settlement --------------------------------------------------------------------------
    Invariant(
        "settled once",
        lambda r: f"person {r[0]}, day {r[1]}, run {r[2]}: settled {r[3]} times",
        # Once per round of the day: a day settled again for what was owed has a run of its own.
        statements.SETTLED_ONCE,
    ),
    Invariant(
        "settlement minted",
        lambda r: f"settlement transaction {r[0]}: its settlements say {r[1]} coins, it minted {r[2]}",
        # A chunk's settlements share one transaction: compare per transaction.
        statements.SETTLEMENT_MINTED,
    ),
    Invariant(
        "settled carbon",
        lambda r: f"person {r[0]}: days say {r[1]} mg settled, settlements converted {r[2]} mg",
        # Per person: the carbon marked settled on their days is the carbon their settlements (nightly
        # and back-fill) converted. A merge moves the days to the account merged into (its chain's
        # end) but not the settlements, so both count for that account; and the carbon whose coins a
        # merge kept beyond the caps (lowered from the days' settled carbon) counts with the days.
        statements.SETTLED_CARBON,
    ),
    Invariant(
        "back-fill minted",
        lambda r: f"back-fill transaction {r[0]}: its settlements say {r[1]} coins, it minted {r[2]}",
        statements.BACK_FILL_MINTED,
    ),
    Invariant(
        "settlement rate",
        lambda r: (
            f"settlement {r[0]}, person {r[1]}, day {r[2]}: {r[3]} coins at {r[4]} mg a coin for {r[5]} mg"
        ),
        # What ties coins to carbon: a settlement's coins at its run's rate are the carbon it converted.
        statements.SETTLEMENT_RATE,
    ),
    Invariant(
        "back-fill rate",
        lambda r: (
            f"back-fill settlement {r[0]}, person {r[1]}, day {r[2]}: "
            f"{r[3]} coins at {r[4]} mg a coin for {r[5]} mg"
        ),
        statements.BACK_FILL_RATE,
    ),
    Invariant(
        "chunked run counted once",
        lambda r: f"chunked run {r[0]}: counts {r[1]} of {r[2]} chunks done, its chunks say {r[3]} of {r[4]}",
        statements.CHUNKED_RUN_COUNTED_ONCE,
    ),
    Invariant(
        "back-fill lot on its day",
        lambda r: (
            f"back-fill transaction {r[0]}, person {r[1]}, day {r[2]}: no lot of {r[3]} coins earned that day"
        ),
        # A back-filled day's coins are earned on that day, so they expire as that day's coins would have.
        statements.BACK_FILL_LOT_ON_ITS_DAY,
    ),
    Invariant(
        "statement minted",
        lambda r: (
            f"{r[0]}: its mint says {r[1]} coins for person {r[2]}, {r[3]} ledger transactions minted {r[4]}"
        ),
        # Coins for another platform's statement, a round at a time: a round that buys coins has one
        # ledger transaction keyed by the statement and round, minting exactly its coins (a merge may
        # have moved them on since), its carbon × share ÷ rate; a round that buys none has none; no
        # such transaction without a round.
        statements.STATEMENT_MINTED,
    ),
    Invariant(
        "statement minted within counted",
        lambda r: f"{r[0]}: its rounds minted {r[1]} mg, it counts {r[2]} mg",
        # Rounds settle only carbon the statement counts (what it counts only grows after import).
        statements.STATEMENT_MINTED_WITHIN_COUNTED,
    ),
    Invariant(
        "statement counted",
        lambda r: f"{r[0]}: counts {r[1]} mg, {r[2]} {r[3]}",
        # What an imported statement counts here is what it states less the instances a report of
        # ours holds (not rejected), per behaviour, never below zero; its total is its reductions' sum.
        statements.STATEMENT_COUNTED,
    ),
    Invariant(
        "settled within credited",
        lambda r: f"person {r[0]}, day {r[1]}: settled {r[2]} mg of {r[3]} mg credited",
        statements.SETTLED_WITHIN_CREDITED,
    ),
    # --- Carbon and caps ---------------------------------------------------------------------
    Invariant(
        "external record once",
        lambda r: f"record {r[0]!r} of {r[1]} stored {r[2]} times",
        statements.EXTERNAL_RECORD_ONCE,
    ),
    Invariant(
        "day credited from records",
        lambda r: f"person {r[0]}, day {r[1]}: the day says {r[2]} mg, its records credited {r[3]} mg",
        # Only days that have records: a day may also be credited by other means (tests, imports).
        statements.DAY_CREDITED_FROM_RECORDS,
    ),
    Invariant(
        "progress counts the days",
        lambda r: (
            f"person {r[0]}: progress {r[1]} mg after refresh {r[2]} (latest run ending {r[3]}), "
            f"their counted days {r[4]} mg (the last with carbon {r[5]})"
        ),
        statements.PROGRESS_COUNTS_THE_DAYS,
    ),
    Invariant(
        "progress refreshes one at a time",
        lambda r: (
            f"progress refresh {r[0]}: finished {r[1]}, its chunked run finished {r[2]}, "
            f"the next refresh {r[3]}"
        ),
        statements.PROGRESS_REFRESHES_ONE_AT_A_TIME,
    ),
    Invariant(
        "cap per record",
        lambda r: f"record {r[0]}: credited {r[1]} mg over its cap of {r[2]} mg",
        statements.CAP_PER_RECORD,
    ),
    Invariant(
        "daily cap",
        lambda r: (
            f"person {r[0]}, behaviour {r[1]}, day {r[2]}: credited {r[3]} mg over the daily cap {r[4]} mg"
        ),
        statements.DAILY_CAP,
    ),
    Invariant(
        "monthly cap",
        lambda r: f"person {r[0]}, behaviour {r[1]}, month {r[2]}: credited {r[3]} mg over the cap {r[4]} mg",
        statements.MONTHLY_CAP,
    ),
    # --- The reduction registry ---------------------------------------------------------------
    Invariant(
        "grams in one lot",
        lambda r: f"person {r[0]}, day {r[1]}, behaviour {r[2]}, version {r[3]}: in {r[4]} lots",
        statements.GRAMS_IN_ONE_LOT,
    ),
    Invariant(
        "allocated within settled",
        lambda r: f"person {r[0]}, day {r[1]}: {r[2]} mg in lots, {r[3]} mg settled",
        statements.ALLOCATED_WITHIN_SETTLED,
    ),
    Invariant(
        "lot volume",
        lambda r: f"lot {r[0]}: volume {r[1]} mg, allocations {r[2]} mg, contributions {r[3]} mg, {r[4]} t",
        statements.LOT_VOLUME,
    ),
    Invariant(
        "lot tonnes",
        lambda r: (
            f"lot {r[0]} ({r[1]}): {r[2]} t, sold {r[3]} t (sales {r[4]}), "
            f"retired {r[5]} t (retirements {r[6]})"
        ),
        statements.LOT_TONNES,
    ),
    Invariant(
        "proceeds paid once",
        lambda r: f"sale {r[0]}: paid at {r[1]}, says {r[2]} coins, {r[3]} transactions minted {r[4]}",
        # One ledger transaction per person (and one for the welfare project), each under a key of its
        # own (`lot-sale:<sale>:<person>`, `…:welfare`), all with the sale's reference.
        statements.PROCEEDS_PAID_ONCE,
    ),
    Invariant(
        "proceeds shares",
        lambda r: f"sale {r[0]}: {r[1]} coins to contributors, shares {r[2]}, their wallets' legs {r[3]}",
        # Each contributor's share (one per sale and person) is the leg its wallet got in the sale's
        # transaction, and the shares add up to the contributors' coins.
        statements.PROCEEDS_SHARES,
    ),
    Invariant(
        "behaviour day counter",
        lambda r: (
            f"person {r[0]}, behaviour {r[1]}, day {r[2]}: counter {r[3]} mg, records credited {r[4]} mg"
        ),
        statements.BEHAVIOUR_DAY_COUNTER,
    ),
    Invariant(
        "behaviour month counter",
        lambda r: (
            f"person {r[0]}, behaviour {r[1]}, month {r[2]:%Y-%m}: "
            f"counter {r[3]} mg, records credited {r[4]} mg"
        ),
        statements.BEHAVIOUR_MONTH_COUNTER,
    ),
    # --- Groups and team challenges ---------------------------------------------------------
    Invariant(
        "group member count",
        lambda r: f"group {r[0]}: counted {r[1]} members, {r[2]} memberships",
        statements.GROUP_MEMBER_COUNT,
    ),
    Invariant(
        "group owner",
        lambda r: f"group {r[0]}: {r[1]} owners",
        statements.GROUP_OWNER,
    ),
    Invariant(
        "challenge budget",
        lambda r: f"challenge {r[0]}: budget {r[1]}, counted paid {r[2]}, payouts {r[3]}, ledger paid {r[4]}",
        statements.CHALLENGE_BUDGET,
    ),
    Invariant(
        "challenge paid once",
        lambda r: f"{r[0]}: account {r[1]} credited by {r[2]} reward transactions",
        statements.CHALLENGE_PAID_ONCE,
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
