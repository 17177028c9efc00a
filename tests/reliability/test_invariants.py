"""The invariant checker: silent on a sound world, and names each kind of violation.

Each break is made with raw SQL (a bug outside the services, simulated) inside a savepoint that is
rolled back, so the suite's closing check still sees the sound world.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from operations.invariants import invariant_violations
from rewards.models import Settlement
from rewards.services import settlement_run
from tests.activities.conftest import yesterday_at
from tests.reliability.world import build_world

pytestmark = pytest.mark.django_db(transaction=True)


def _violations_after(*statements: str) -> list[str]:
    with transaction.atomic():
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        violations = invariant_violations()
        transaction.set_rollback(True)
    return violations


@pytest.fixture
def world():
    world = build_world()
    settlement_run(day=yesterday_at(0).date())
    return world


def test_a_sound_world_has_no_violations_and_the_commands_say_ok(world, capsys):
    assert Settlement.objects.count() == 2
    assert invariant_violations() == []

    call_command("ledger_audit")
    call_command("check_invariants")

    output = capsys.readouterr().out
    assert "invariants: OK" in output


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (["UPDATE rewards_ledgeraccount SET balance = balance + 1 WHERE kind = 'wallet'"], "ledger: account"),
        (["UPDATE merchants_offer SET stock_left = stock_left + 1"], "offer stock: offer"),
        (
            [
                "UPDATE merchants_offer SET limit_per_person = 1 WHERE 1 = 1",
                "INSERT INTO merchants_coupon (public_id, code, offer_id, merchant_id, user_id, title,"
                " price_coins, status, issued_at, valid_until, request_fingerprint)"
                " SELECT gen_random_uuid(), 'DUPLICATE1', offer_id, merchant_id, user_id, title,"
                " price_coins, status, issued_at, valid_until, '' FROM merchants_coupon",
                "UPDATE merchants_offer SET stock_left = stock_left - 1",
            ],
            "limit per person: offer",
        ),
        (["UPDATE merchants_offerredemptioncount SET redeemed_count = 0"], "redemption counter: offer"),
        (["UPDATE merchants_coupon SET price_coins = price_coins + 1"], "coupon paid once: coupon"),
        (
            [
                "UPDATE merchants_coupon SET refunded_at = NULL, status = 'expired'",
                "INSERT INTO rewards_ledgertransaction (kind, reference, idempotency_key, memo, created_at)"
                " SELECT 'coupon_refund', 'x', 'coupon:' || public_id::text || ':refund', '', now()"
                " FROM merchants_coupon",
            ],
            "coupon refunded once: coupon",
        ),
        (
            ["UPDATE merchants_coupon SET refunded_at = now(), status = 'expired'"],
            "coupon refunded once: coupon",
        ),
        (
            [
                "UPDATE activities_dailycarbon SET settled_carbon_mg = settled_carbon_mg - 1000"
                " WHERE settled_carbon_mg > 0"
            ],
            "settled carbon: person",
        ),
        (
            [
                "UPDATE activities_dailycarbon SET credited_carbon_mg = 0, settled_carbon_mg = 0"
                " WHERE day > '2026-11-10'"
            ],
            "day credited from records",
        ),
        (
            ["UPDATE activities_behaviourday SET credited_carbon_mg = credited_carbon_mg + 1"],
            "behaviour day counter: person",
        ),
        (
            [
                "UPDATE activities_behaviourmonth SET credited_carbon_mg = credited_carbon_mg + 1",
                # Month counters are kept where a cap counts months: one off, where there is none.
                "INSERT INTO activities_behaviourmonth (user_id, behaviour_id, month, credited_carbon_mg)"
                " SELECT user_id, behaviour_id, CAST(date_trunc('month', local_day) AS date),"
                " SUM(credited_carbon_mg) + 1 FROM activities_activityrecord GROUP BY 1, 2, 3"
                " ON CONFLICT DO NOTHING",
            ],
            "behaviour month counter: person",
        ),
        (["UPDATE activities_factor SET event_cap_mg = 1"], "cap per record: record"),
        (["UPDATE activities_factor SET daily_cap_mg = 1"], "daily cap: person"),
        (["UPDATE activities_factor SET monthly_cap_mg = 1"], "monthly cap: person"),
        (["UPDATE rewards_settlement SET coins = coins + 1"], "settlement minted"),
        (["UPDATE rewards_settlement SET carbon_mg = carbon_mg + 1"], "settlement rate"),
    ],
    ids=[
        "cached-balance",
        "stock",
        "limit",
        "counter",
        "coupon-price",
        "refund-without-mark",
        "mark-without-refund",
        "settled-carbon",
        "day-credit",
        "behaviour-day",
        "behaviour-month",
        "event-cap",
        "daily-cap",
        "monthly-cap",
        "settlement-coins",
        "settlement-rate",
    ],
)
def test_each_kind_of_violation_is_named(world, statements, expected):
    violations = _violations_after(*statements)

    assert any(violation.startswith(expected) for violation in violations), violations


def test_the_commands_fail_on_a_violation(world):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE merchants_offer SET stock_left = stock_left + 1")
        with pytest.raises(CommandError):
            call_command("check_invariants")
        with pytest.raises(CommandError):
            call_command("ledger_audit")
        transaction.set_rollback(True)
