"""Every capture rule, checked both ways on the same inputs: its Python check and its SQL predicate.

`activities.capture_rules.RULES` is the one table the batch path (Python) and the bulk import (SQL)
both iterate. For each stage, every combination of a few telling values of each fact goes through
`first_broken` in Python and through `first_broken_sql` in PostgreSQL, in one statement over the
same rows as the import would have them (NULL where the import's joins find nothing): the first rule
broken must be the same, and each rule a row reaches must give the same answer both ways. The
whole-path parity (records, receipts, counters, days) is `test_bulk_import.py`.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from psycopg import sql

from activities import errors
from activities.capture_rules import (
    CLOCK_SKEW,
    HOLD,
    HOLD_RULES,
    MAX_QUANTITY,
    PERSON,
    PERSON_RULES,
    RECORD,
    RECORD_RULES,
    RULES,
    HoldFacts,
    PersonFacts,
    RecordFacts,
    first_broken,
    first_broken_sql,
)
from activities.models import HoldReason

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 11, 20, 12, 0, tzinfo=datetime.UTC)
OLDEST = NOW - datetime.timedelta(days=90)
HOUR = datetime.timedelta(hours=1)


def test_the_table_keeps_the_codes_and_their_order():
    assert [(rule.stage, rule.code, rule.detail) for rule in RULES] == [
        (RECORD, "unknown_behaviour", ""),
        (RECORD, "behaviour_not_allowed", ""),
        (RECORD, "invalid_quantity", ""),
        (RECORD, "occurred_in_future", ""),
        (RECORD, "invalid_record", "ended_at is before occurred_at"),
        (RECORD, "occurred_too_long_ago", ""),
        (RECORD, "no_factor_in_effect", ""),
        (RECORD, "behaviour_not_allowed", ""),
        (RECORD, "invalid_record", "amount"),
        (RECORD, "payment_below_minimum", ""),
        (PERSON, "unknown_customer", ""),
        (PERSON, "account_closed", ""),
        (PERSON, "source_not_authorized", ""),
        (PERSON, "occurred_before_authorization", ""),
        (HOLD, "superhuman_steps", ""),
        (HOLD, "too_many_in_a_day", ""),
        (HOLD, "overlapping_trip", ""),
        (HOLD, "shared_device", ""),
    ]
    # Refusals are documented error codes; holds are hold reasons.
    assert {rule.code for rule in RULES if rule.stage != HOLD} <= set(errors.RECORD_CODES)
    assert {rule.code for rule in HOLD_RULES} <= {reason.value for reason in HoldReason}
    assert [rule.code_for("occurred_before_history_window") for rule in RECORD_RULES if rule.is_window] == [
        "occurred_before_history_window"
    ]


# --- The inputs: each stage's facts, and the same row as the import's SQL sees it ----------------


def record_samples(oldest: datetime.datetime | None) -> list[tuple[RecordFacts, dict]]:
    samples = []
    for (
        behaviour_id, allowed, quantity, occurred_at, ended_after, amount, factor_id, source_allowed, minimum,
    ) in itertools.product(
        (11, None),
        (True, False),
        # Plain decimals only: anything else is read by Python's parser (the import's `plain` filter).
        (Decimal("1"), Decimal("0"), Decimal("0.001"), MAX_QUANTITY, MAX_QUANTITY + 1),
        (NOW - HOUR, NOW + CLOCK_SKEW, NOW + 2 * CLOCK_SKEW, OLDEST - HOUR),
        (None, HOUR, -HOUR, 30 * HOUR),
        (None, Decimal("1.00"), Decimal("0.99"), Decimal("0")),
        (7, None),
        (True, False),
        (None, 100),
    ):  # fmt: skip
        if behaviour_id is None and (factor_id is not None or not allowed):
            continue  # an unknown behaviour has no factor, and no partner's list to be missing from
        if factor_id is None and (source_allowed or minimum is not None):
            continue  # without a factor there are no sources and no minimum
        ended_at = occurred_at + ended_after if ended_after is not None else None
        facts = RecordFacts(
            quantity=quantity, occurred_at=occurred_at, ended_at=ended_at, amount=amount,
            behaviour_id=behaviour_id, allowed=allowed, factor_id=factor_id, source_allowed=source_allowed,
            minimum_payment_fen=minimum, latest=NOW + CLOCK_SKEW, oldest=oldest,
        )  # fmt: skip
        # The import's row: what its joins leave NULL when the behaviour or the factor is unknown.
        row = {
            "behaviour_id": behaviour_id,
            "allowed": allowed if behaviour_id is not None else None,
            "quantity": quantity,
            "occurred_at": occurred_at,
            "ended_at": ended_at,
            "amount": amount,
            "factor_id": factor_id,
            "source_allowed": source_allowed if factor_id is not None else None,
            "minimum_payment_fen": minimum,
        }
        samples.append((facts, row))
    return samples


RECORD_COLUMNS = (
    "behaviour_id bigint, allowed boolean, quantity numeric, occurred_at timestamptz, ended_at timestamptz, "
    "amount numeric, factor_id bigint, source_allowed boolean, minimum_payment_fen bigint"
)


def person_samples() -> list[tuple[PersonFacts, dict]]:
    samples = []
    granted = NOW - 3 * HOUR
    for is_known, is_open, is_authorized, occurred_at, from_partner in itertools.product(
        (True, False), (True, False), (True, False), (granted - HOUR, granted, granted + HOUR), (True, False)
    ):
        if not is_known and (is_open or is_authorized):
            continue  # a reference naming nobody names no account and no consent
        granted_at = granted if is_authorized else None
        facts = PersonFacts(
            is_known=is_known, is_open=is_open, is_authorized=is_authorized, granted_at=granted_at,
            occurred_at=occurred_at, from_partner=from_partner,
        )  # fmt: skip
        samples.append((facts, dataclasses.asdict(facts)))
    return samples


PERSON_COLUMNS = (
    "is_known boolean, is_open boolean, is_authorized boolean, granted_at timestamptz, "
    "occurred_at timestamptz, from_partner boolean"
)


def hold_samples() -> list[tuple[HoldFacts, dict]]:
    samples = []
    for over_threshold, is_step, is_interval, overlaps, device_shared in itertools.product(
        (True, False), repeat=5
    ):
        facts = HoldFacts(over_threshold, is_step, is_interval, overlaps, device_shared)
        # No trip is stored for person 0: an overlap can only be with the batch's earlier trips.
        row = {
            "over_threshold": over_threshold, "is_step": is_step, "is_interval": is_interval,
            "overlaps_earlier": overlaps, "device_shared": device_shared, "user_id": 0,
            "local_day": NOW.date(), "occurred_at": NOW, "ended_at": NOW + HOUR,
        }  # fmt: skip
        samples.append((facts, row))
    return samples


HOLD_COLUMNS = (
    "over_threshold boolean, is_step boolean, is_interval boolean, overlaps_earlier boolean, "
    "device_shared boolean, user_id bigint, local_day date, occurred_at timestamptz, ended_at timestamptz"
)


def through_sql(rules, alias: str, columns: str, rows: list[dict], params: dict) -> list[tuple]:
    """(position of the first rule broken or None, [each rule broken?]) per row, from PostgreSQL."""
    statement = sql.SQL(
        "SELECT {first}, ARRAY[{each}] "
        "FROM jsonb_to_recordset(%(rows)s::jsonb) AS {alias}(n integer, {columns}) ORDER BY n"
    ).format(
        first=first_broken_sql(rules),
        each=sql.SQL(", ").join(sql.SQL("(({})) IS TRUE").format(rule.sql) for rule in rules),
        alias=sql.Identifier(alias),
        columns=sql.SQL(columns),
    )
    with connection.cursor() as cursor:
        numbered = [{"n": n, **row} for n, row in enumerate(rows)]
        cursor.execute(statement, {**params, "rows": json.dumps(numbered, cls=DjangoJSONEncoder)})
        return cursor.fetchall()


def assert_both_ways_agree(rules, samples, alias: str, columns: str, params: dict) -> set[str]:
    answers = through_sql(rules, alias, columns, [row for _, row in samples], params)
    first_broken_codes = set()
    for (facts, row), (sql_first, sql_each) in zip(samples, answers, strict=True):
        broken = first_broken(rules, facts)
        python_first = rules.index(broken) + 1 if broken is not None else None
        assert (python_first, row) == (sql_first, row)
        # Each rule the row reaches (no earlier rule broken) answers the same both ways.
        reached = rules[: len(rules) if python_first is None else python_first]
        python_each = [rule.python(facts) for rule in reached]
        assert (python_each, row) == (sql_each[: len(reached)], row)
        if broken is not None:
            first_broken_codes.add((broken.code, broken.detail))
    return first_broken_codes


@pytest.mark.parametrize("oldest", [OLDEST, None], ids=["with-a-window", "back-fill"])
def test_each_record_rule_agrees_in_python_and_sql(oldest):
    samples = record_samples(oldest)
    params = {"latest": NOW + CLOCK_SKEW, "max_quantity": MAX_QUANTITY, "oldest": oldest}

    codes = assert_both_ways_agree(RECORD_RULES, samples, "r", RECORD_COLUMNS, params)

    expected = {(rule.code, rule.detail) for rule in RECORD_RULES if oldest is not None or not rule.is_window}
    assert codes == expected  # every rule was the one that answered for some input


def test_each_person_rule_agrees_in_python_and_sql():
    codes = assert_both_ways_agree(PERSON_RULES, person_samples(), "p", PERSON_COLUMNS, {})

    assert codes == {(rule.code, "") for rule in PERSON_RULES}


def test_each_hold_rule_agrees_in_python_and_sql():
    params = {"trip_behaviours": [1, 2], "rejected": "rejected"}

    codes = assert_both_ways_agree(HOLD_RULES, hold_samples(), "h", HOLD_COLUMNS, params)

    assert codes == {(rule.code, "") for rule in HOLD_RULES}
