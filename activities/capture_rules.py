"""The capture rules: one table, each rule once, with its Python check and its SQL predicate side by side.

A record is refused, or held for review, by the first rule it breaks, in the order of `RULES`. Every
capture path goes through this table: the batch path (`ingest.record_precheck`,
`ingest.record_authorization_check` and `ingest._credit`, record by record) calls each rule's
`python` check; the bulk history import (`bulk_import.ChunkImporter`) puts each rule's `sql`
predicate, in the same order, into one `CASE` of its set-based statements. Adding a rule is adding
one entry here; `tests/activities/test_capture_rules.py` checks every entry both ways on the same
inputs.

Three stages, in this order:

- `RECORD`: what a record breaks on its own, before anyone is looked up. Python sees `RecordFacts`;
  SQL sees the typed staging row `r` (`behaviour_id`, `allowed`, `quantity`, `occurred_at`,
  `ended_at`, `factor_id`, `source_allowed`, `minimum_payment_fen`, `amount`) and the parameters
  `latest`, `max_quantity` and `oldest`.
- `PERSON`: the person's side — known customer, open account, consent, and consent not retroactive
  for a partner's record. Python sees `PersonFacts`; SQL the row `p` (`is_known`, `is_open`,
  `is_authorized`, `granted_at`, `occurred_at`, `from_partner`).
- `HOLD`: a record that passes both is stored; these hold it for review instead of crediting it.
  Python sees `HoldFacts`; SQL the row `h` (`over_threshold`, `is_step`, `is_interval`,
  `overlaps_earlier`, `user_id`, `local_day`, `occurred_at`, `ended_at`, `device_shared`) and the
  parameters `trip_behaviours` and `rejected`. The running totals a hold looks at (the day's
  quantity so far, the person's earlier trips) are each engine's own: Python adds record by
  record over the locked counters, SQL with window functions in the same order.

Caps are arithmetic, not refusals: `ingest.apply_caps` and the import's window sums.

Beside the table, not in it, are the steps that decide which report of a real-world instance holds
its credit. Their answer is no refusal and no hold: the report is stored, crediting nothing, as a
second report pointing at what counts the instance, and they need locks and look-ups a predicate
over a row's facts cannot express:

- the midnight lock (`activities.instances`): a report within its time tolerance of a local midnight
  takes an advisory lock of (person, behaviour, instance, midnight) before the counters, on both
  paths, so two reports either side of a midnight serialize;
- second reports of an instance credited here (`ingest._instance_twins`, and the import's
  `IMPORT_INSTANCES_CHECK`), with the credit moved to a preferred source (`instance_credits_move`);
- reports of an instance another platform's imported statement counts here
  (`statements.instances.imported_instance_twins`, stored by `ingest._imported_reports_store`,
  answered `duplicate_across_sources`): the look-up takes the person's lock shared against a
  statement import, and matches the statements' pairwise HMAC keys recomputed in SQL
  (`sql_statements.imported_instances`). Both paths take this step: the batch path over its
  candidates, the bulk import over its staging table (`IMPORT_IMPORTED_INSTANCES_CHECK`).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg import sql

from activities import errors
from activities.models import HoldReason

CLOCK_SKEW = datetime.timedelta(minutes=5)
# Far beyond any real record (a billion steps, km or kg), and within the columns' range.
MAX_QUANTITY = Decimal(10**9)
ENDED_BEFORE_STARTED = "ended_at is before occurred_at"

RECORD, PERSON, HOLD = "record", "person", "hold"


@dataclass(slots=True)
class RecordFacts:
    """A record as the record rules see it, with its behaviour and factor looked up (None if none)."""

    quantity: Decimal
    occurred_at: datetime.datetime
    ended_at: datetime.datetime | None
    amount: Decimal | None
    behaviour_id: int | None
    # False when the caller (a partner) may not report the behaviour; True when it may or names none.
    allowed: bool
    factor_id: int | None
    source_allowed: bool
    minimum_payment_fen: int | None
    # The newest moment a record may name (now + CLOCK_SKEW), and the oldest (None: no window).
    latest: datetime.datetime
    oldest: datetime.datetime | None


@dataclass(slots=True)
class PersonFacts:
    is_known: bool  # False: the partner's customer reference names nobody
    is_open: bool
    is_authorized: bool  # the person has an active authorization of the record's source
    granted_at: datetime.datetime | None  # when it was granted
    occurred_at: datetime.datetime
    from_partner: bool


@dataclass(slots=True)
class HoldFacts:
    over_threshold: bool  # the day's quantity with this record goes over the review threshold
    is_step: bool
    is_interval: bool  # a trip with an end, not already held by the threshold
    overlaps: bool  # such a trip overlapping an earlier one of the batch or a stored one
    device_shared: bool  # reported from a phone that synced for too many accounts


@dataclass(frozen=True, slots=True)
class Rule:
    """One capture rule: what breaks it, in Python and in SQL, and the answer when it does.

    `code` is the refusal's error code (`errors.RECORD_CODES`) for the record and person stages,
    the hold reason for the hold stage; `detail` goes with a refusal. A rule with `is_window` is the
    age window, whose code the caller names (the API's `occurred_too_long_ago`, the history
    import's `occurred_before_history_window`).
    """

    stage: str
    code: str
    python: Callable[[Any], bool]
    sql: sql.Composable
    detail: str = ""
    is_window: bool = False

    def code_for(self, window_code: str) -> str:
        return window_code if self.is_window else self.code


def _sql(text: str) -> sql.Composable:
    return sql.SQL(text)  # type: ignore[arg-type] - every predicate is a constant of this module


def _quantity_invalid(f: RecordFacts) -> bool:
    quantity = f.quantity
    return (
        not quantity.is_finite()
        or quantity <= 0
        or quantity > MAX_QUANTITY
        or quantity.as_tuple().exponent < -3  # type: ignore[operator]
    )


# The table. Its order is the order the rules are applied in; the first broken one answers.
# (In SQL, lines whose quantity is not a plain decimal of at most three places are read by Python,
# so the predicate needs no finiteness or precision test.)
RULES: tuple[Rule, ...] = (
    # --- the record on its own -------------------------------------------------------------------
    Rule(RECORD, errors.UNKNOWN_BEHAVIOUR.code,
         lambda f: f.behaviour_id is None,
         _sql("r.behaviour_id IS NULL")),
    Rule(RECORD, errors.BEHAVIOUR_NOT_ALLOWED.code,
         lambda f: not f.allowed,
         _sql("NOT r.allowed")),
    Rule(RECORD, errors.INVALID_QUANTITY.code,
         _quantity_invalid,
         _sql("r.quantity <= 0 OR r.quantity > %(max_quantity)s")),
    Rule(RECORD, errors.OCCURRED_IN_FUTURE.code,
         lambda f: f.occurred_at > f.latest or (f.ended_at is not None and f.ended_at > f.latest),
         _sql("r.occurred_at > %(latest)s OR r.ended_at > %(latest)s")),
    Rule(RECORD, errors.INVALID_RECORD.code,
         lambda f: f.ended_at is not None and f.ended_at < f.occurred_at,
         _sql("r.ended_at < r.occurred_at"),
         detail=ENDED_BEFORE_STARTED),
    Rule(RECORD, errors.OCCURRED_TOO_LONG_AGO.code,
         lambda f: f.oldest is not None and f.occurred_at < f.oldest,
         _sql("r.occurred_at < %(oldest)s"),
         is_window=True),
    Rule(RECORD, errors.NO_FACTOR_IN_EFFECT.code,
         lambda f: f.factor_id is None,
         _sql("r.factor_id IS NULL")),
    Rule(RECORD, errors.BEHAVIOUR_NOT_ALLOWED.code,  # the factor does not take this source
         lambda f: not f.source_allowed,
         _sql("NOT r.source_allowed")),
    Rule(RECORD, errors.INVALID_RECORD.code,  # a payment behaviour's record without its amount
         lambda f: f.minimum_payment_fen is not None and f.amount is None,
         _sql("r.minimum_payment_fen IS NOT NULL AND r.amount IS NULL"),
         detail="amount"),
    Rule(RECORD, errors.PAYMENT_BELOW_MINIMUM.code,
         lambda f: f.minimum_payment_fen is not None and f.amount * 100 < f.minimum_payment_fen,
         _sql("r.amount * 100 < r.minimum_payment_fen")),
    # --- the person ------------------------------------------------------------------------------
    Rule(PERSON, errors.UNKNOWN_CUSTOMER.code,
         lambda f: not f.is_known,
         _sql("NOT p.is_known")),
    Rule(PERSON, errors.ACCOUNT_CLOSED.code,
         lambda f: not f.is_open,
         _sql("NOT p.is_open")),
    Rule(PERSON, errors.SOURCE_NOT_AUTHORIZED.code,
         lambda f: not f.is_authorized,
         _sql("NOT p.is_authorized")),
    # Consent is not retroactive: a partner's record counts from the grant on. The phone's own step
    # sync is the person acting and keeps its sync window.
    Rule(PERSON, errors.OCCURRED_BEFORE_AUTHORIZATION.code,
         lambda f: f.from_partner and f.granted_at is not None and f.occurred_at < f.granted_at,
         _sql("p.from_partner AND p.occurred_at < p.granted_at")),
    # --- held for review -------------------------------------------------------------------------
    Rule(HOLD, HoldReason.SUPERHUMAN_STEPS.value,
         lambda f: f.over_threshold and f.is_step,
         _sql("h.over_threshold AND h.is_step")),
    Rule(HOLD, HoldReason.TOO_MANY_IN_A_DAY.value,
         lambda f: f.over_threshold,
         _sql("h.over_threshold")),
    Rule(HOLD, HoldReason.OVERLAPPING_TRIP.value,
         lambda f: f.is_interval and f.overlaps,
         _sql(
             """h.is_interval AND (h.overlaps_earlier OR EXISTS (
                 SELECT 1 FROM activities_activityrecord s
                 WHERE s.user_id = h.user_id AND s.local_day BETWEEN h.local_day - 1 AND h.local_day + 1
                   AND s.behaviour_id = ANY(%(trip_behaviours)s) AND s.ended_at IS NOT NULL
                   AND s.status <> %(rejected)s
                   AND s.occurred_at < h.ended_at AND s.ended_at > h.occurred_at))"""
         )),
    Rule(HOLD, HoldReason.SHARED_DEVICE.value,
         lambda f: f.device_shared,
         _sql("h.device_shared")),
)  # fmt: skip

RECORD_RULES = tuple(rule for rule in RULES if rule.stage == RECORD)
PERSON_RULES = tuple(rule for rule in RULES if rule.stage == PERSON)
HOLD_RULES = tuple(rule for rule in RULES if rule.stage == HOLD)


def first_broken(rules: tuple[Rule, ...], facts: Any) -> Rule | None:
    """The first rule of `rules` that `facts` break, or None."""
    for rule in rules:
        if rule.python(facts):
            return rule
    return None


def first_broken_sql(rules: tuple[Rule, ...]) -> sql.Composable:
    """The SQL twin of `first_broken`: the 1-based position in `rules` of the first rule broken, or
    NULL. Callers turn it into a code or detail by subscripting an array parameter of them."""
    return sql.SQL("CASE {} END").format(
        sql.SQL(" ").join(
            sql.SQL("WHEN ({}) THEN {}").format(rule.sql, sql.Literal(position))
            for position, rule in enumerate(rules, start=1)
        )
    )
