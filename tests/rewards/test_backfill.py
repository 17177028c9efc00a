"""History older than the import's window: rejected, unless an operator back-fills it, audited,
each day credited with its own methodology and settled at its own coin rate with its own expiry."""

from __future__ import annotations

import csv
import datetime
import json

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import DataSource
from activities import services as activity_services
from activities.models import ActivityRecord, DailyCarbon
from core.local_time import LOCAL_TZ
from operations.invariants import invariant_violations
from rewards.models import BackfillSettlement, CoinLot, CoinRate, LedgerAccount, Settlement
from rewards.services import settlement_run
from tests.accounts.factories import UserFactory, authorization_granted

pytestmark = pytest.mark.django_db


def days_ago(days: int, hour: int = 8) -> datetime.datetime:
    day = timezone.localdate() - datetime.timedelta(days=days)
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=LOCAL_TZ)


@pytest.fixture
def history(tmp_path):
    """A rider who authorized the card two years ago, a coin rate that doubled 150 days ago, and a
    file of rides from 400, 200 and 120 days ago (80 g each)."""
    transit = activity_services.partner_create(
        code="city-transit", name="City Transit Card", source=DataSource.TRANSIT_CARD, behaviour_codes=["bus"]
    )
    rider = UserFactory()
    authorization_granted(rider, DataSource.TRANSIT_CARD, granted_at=days_ago(730))
    activity_services.partner_customer_link(partner=transit.partner, customer_reference="T-7", user=rider)
    CoinRate.objects.create(
        valid_from=timezone.localdate() - datetime.timedelta(days=150), carbon_mg_per_coin=20_000
    )
    rides = [("r400", days_ago(400)), ("r200", days_ago(200)), ("r120", days_ago(120))]
    csv_path = tmp_path / "rides.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "customer_reference", "behaviour", "quantity", "occurred_at"])
        writer.writerows([(name, "T-7", "bus", "1", at.isoformat()) for name, at in rides])
    jsonl_path = tmp_path / "rides.jsonl"
    jsonl_path.write_text(
        "".join(
            json.dumps(
                {
                    "id": n,
                    "customer_reference": "T-7",
                    "behaviour": "bus",
                    "quantity": "1",
                    "occurred_at": at.isoformat(),
                }
            )
            + "\n"
            for n, at in rides
        )  # fmt: skip
    )
    operator = UserFactory(username="alice", is_staff=True)
    return {
        "rider": rider,
        "csv": csv_path,
        "jsonl": jsonl_path,
        "operator": operator,
        "partner": transit.partner,
    }


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_the_history_import_rejects_what_is_older_than_its_window(history, kind):
    call_command("import_activity_history", str(history[kind]), partner="city-transit", no_progress=True)

    assert not ActivityRecord.objects.exists()
    assert not DailyCarbon.objects.exists()
    errors = (history[kind].parent / f"rides.{kind}.errors.csv").read_text()
    assert errors.count("occurred_before_history_window") == 3


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_an_audited_back_fill_settles_each_day_at_its_own_rate_and_expiry(history, kind):
    rider, today = history["rider"], timezone.localdate()

    call_command(
        "backfill_activity_history",
        str(history[kind]),
        partner="city-transit",
        operator="alice",
        reason="Card history of the pilot, ticket OPS-12",
        no_progress=True,
    )

    assert ActivityRecord.objects.filter(user=rider).count() == 3
    expected = [
        # (day, carbon settled, coins, rate): each day at the rate in force on it
        (today - datetime.timedelta(days=400), 80_000, 8, 10_000),
        (today - datetime.timedelta(days=200), 80_000, 8, 10_000),
        (today - datetime.timedelta(days=120), 80_000, 4, 20_000),
    ]
    assert (
        list(
            BackfillSettlement.objects.filter(user_id=rider.pk)
            .order_by("day")
            .values_list("day", "carbon_mg", "coins", "carbon_mg_per_coin")
        )
        == expected
    )
    lots = CoinLot.objects.filter(account__owner_id=rider.pk).order_by("earned_on")
    assert [(lot.earned_on, lot.expires_on, lot.amount) for lot in lots] == [
        (day, day + datetime.timedelta(days=365), coins) for day, _, coins, _ in expected
    ]
    assert LedgerAccount.objects.get(kind="wallet", owner_id=rider.pk).balance == 20
    assert all(
        credited == settled
        for credited, settled in DailyCarbon.objects.filter(user=rider).values_list(
            "credited_carbon_mg", "settled_carbon_mg"
        )
    )
    # The night's settlement finds nothing of it left to mint at today's rate.
    settlement_run(day=today - datetime.timedelta(days=1), within_transaction=True)
    assert not Settlement.objects.filter(user_id=rider.pk).exists()
    # The audit trail: who, which file, why, and what came of it, in the partner's admin history.
    messages = list(
        LogEntry.objects.filter(user=history["operator"], object_id=str(history["partner"].pk))
        .order_by("id")
        .values_list("change_message", flat=True)
    )
    assert len(messages) == 2
    assert messages[0].startswith("History back-fill started: ")
    assert messages[0].endswith("— Card history of the pilot, ticket OPS-12")
    assert messages[1].endswith("3 lines, 3 accepted, 0 duplicate, 0 held, 0 rejected")
    assert invariant_violations() == []


def test_the_checker_sees_a_back_filled_day_whose_coins_are_not_its_carbon_at_its_rate(history):
    rider = history["rider"]
    call_command(
        "backfill_activity_history",
        str(history["csv"]),
        partner="city-transit",
        operator="alice",
        reason="Card history of the pilot, ticket OPS-12",
        no_progress=True,
    )
    oldest = BackfillSettlement.objects.filter(user_id=rider.pk).order_by("day").first()
    assert invariant_violations() == []

    # The day's coins stand for 80 g, but it says (and its day marks settled) 70 g.
    BackfillSettlement.objects.filter(pk=oldest.pk).update(carbon_mg=70_000)
    DailyCarbon.objects.filter(user=rider, day=oldest.day).update(settled_carbon_mg=70_000)

    assert invariant_violations() == [
        f"back-fill rate: back-fill settlement {oldest.pk}, person {rider.pk}, day {oldest.day}: "
        "8 coins at 10000 mg a coin for 70000 mg"
    ]


def test_a_back_fill_needs_a_staff_operator_and_a_reason(history):
    history["operator"].is_staff = False
    history["operator"].save(update_fields=["is_staff"])

    with pytest.raises(CommandError, match="no active staff account 'alice'"):
        call_command(
            "backfill_activity_history", str(history["csv"]), partner="city-transit", operator="alice",
            reason="x", no_progress=True,
        )  # fmt: skip

    assert not ActivityRecord.objects.exists()
    assert not LogEntry.objects.exists()
