"""Nightly settlement: whole coins at the versioned rate, remainders carried, exactly once."""

from __future__ import annotations

import datetime
import json

import pytest
from django.db import connection, transaction
from psycopg import sql

from activities.models import DailyCarbon
from operations.invariants import invariant_violations
from rewards import statements
from rewards.audit import ledger_audit
from rewards.models import (
    CoinLot,
    CoinRate,
    LedgerAccount,
    LedgerTransaction,
    Settlement,
    SettlementRun,
    SettlementRunStatus,
)
from rewards.selectors import SettlementOwed, settlement_owed
from rewards.services import issuance_account, settlement_run, wallet_account_for_user
from rewards.services.settlement import (
    ALL_PEOPLE,
    _candidates_collect,
    settlement_range_settle,
    settlement_run_start,
)
from rewards.tasks import settlement_settle_day
from tests.accounts.factories import UserFactory
from tests.rewards.factories import carbon_credit

pytestmark = pytest.mark.django_db(transaction=True)

DAY = datetime.date(2026, 11, 20)
G = 1000  # milligrams in a gram


def _balance(user) -> int:
    return (
        LedgerAccount.objects.filter(kind="wallet", owner_id=user.pk)
        .values_list("balance", flat=True)
        .first()
        or 0
    )


def _settled(user, day) -> tuple[int, int]:
    row = DailyCarbon.objects.get(user=user, day=day)
    return row.credited_carbon_mg, row.settled_carbon_mg


def test_whole_coins_are_minted_and_the_remainder_stays_pending(person):
    carbon_credit(person, DAY, 25 * G + 300)

    run = settlement_run(day=DAY)

    assert _balance(person) == 2
    assert _settled(person, DAY) == (25_300, 20_000)
    assert (run.status, run.accounts_settled, run.coins_minted, run.carbon_mg_settled) == (
        SettlementRunStatus.SUCCEEDED,
        1,
        2,
        20_000,
    )
    assert run.duration_seconds is not None
    settlement = Settlement.objects.get(user_id=person.pk, day=DAY)
    assert (settlement.coins, settlement.carbon_mg, settlement.carbon_days) == (2, 20_000, ["2026-11-20"])
    lot = CoinLot.objects.get()
    assert (lot.earned_on, lot.expires_on, lot.remaining_amount) == (
        DAY,
        DAY + datetime.timedelta(days=365),
        2,
    )
    assert ledger_audit().is_balanced


def test_the_remainder_counts_towards_the_next_settlement(person):
    carbon_credit(person, DAY, 15 * G)
    settlement_run(day=DAY)
    next_day = DAY + datetime.timedelta(days=1)
    carbon_credit(person, next_day, 5 * G)

    settlement_run(day=next_day)

    assert _balance(person) == 2
    assert _settled(person, DAY) == (15_000, 15_000)
    assert _settled(person, next_day) == (5_000, 5_000)
    assert Settlement.objects.get(user_id=person.pk, day=next_day).carbon_days == ["2026-11-20", "2026-11-21"]


def test_less_than_a_coin_mints_nothing_and_stays_pending(person):
    carbon_credit(person, DAY, 9 * G + 999)

    run = settlement_run(day=DAY)

    assert _balance(person) == 0
    assert _settled(person, DAY) == (9_999, 0)
    assert run.accounts_settled == 0
    assert not Settlement.objects.exists()


def test_carbon_of_later_days_waits_for_their_settlement(person):
    carbon_credit(person, DAY + datetime.timedelta(days=1), 50 * G)

    settlement_run(day=DAY)

    assert _balance(person) == 0


def test_the_rate_in_effect_on_the_settled_day_applies(person):
    CoinRate.objects.create(valid_from=DAY, carbon_mg_per_coin=5 * G)
    CoinRate.objects.create(valid_from=DAY + datetime.timedelta(days=1), carbon_mg_per_coin=20 * G)
    carbon_credit(person, DAY, 12 * G)

    run = settlement_run(day=DAY)

    assert run.carbon_mg_per_coin == 5_000
    assert _balance(person) == 2
    assert _settled(person, DAY) == (12_000, 10_000)


def test_rerunning_a_settled_day_changes_nothing_and_a_late_approval_waits_for_the_next_night(person):
    carbon_credit(person, DAY, 30 * G)
    settlement_run(day=DAY)
    carbon_credit(person, DAY, 40 * G)  # approved from the review queue after the night

    settlement_run(day=DAY)
    settlement_settle_day(DAY.isoformat())

    assert _balance(person) == 3
    assert _settled(person, DAY) == (70_000, 30_000)
    settlement_run(day=DAY + datetime.timedelta(days=1))
    assert _balance(person) == 7
    assert _settled(person, DAY) == (70_000, 70_000)


def test_a_retried_task_settles_once(person):
    carbon_credit(person, DAY, 30 * G)

    settlement_settle_day(DAY.isoformat())
    SettlementRun.objects.filter(day=DAY).update(
        status=SettlementRunStatus.RUNNING
    )  # as if killed at the end
    settlement_settle_day(DAY.isoformat())

    assert _balance(person) == 3
    assert Settlement.objects.count() == 1
    assert SettlementRun.objects.get(day=DAY).attempts == 2
    assert ledger_audit().is_balanced


def test_chunks_commit_as_they_go_and_add_up():
    people = UserFactory.create_batch(7)
    for number, user in enumerate(people, start=1):
        carbon_credit(user, DAY, number * 10 * G + 7)
    committed = []

    run = settlement_run(
        day=DAY, chunk_size=3, on_chunk_committed=lambda index, result: committed.append(result)
    )

    assert [result.accounts for result in committed] == [3, 3, 1]
    assert run.chunks_committed == 3
    assert [_balance(user) for user in people] == [1, 2, 3, 4, 5, 6, 7]
    assert (run.accounts_settled, run.coins_minted, run.carbon_mg_settled) == (7, 28, 280_000)
    assert issuance_account().balance == -28
    assert ledger_audit().is_balanced


def test_an_existing_wallet_is_credited_not_duplicated(person):
    wallet = wallet_account_for_user(user_id=person.pk)
    carbon_credit(person, DAY, 10 * G)

    settlement_run(day=DAY)

    wallet.refresh_from_db()
    assert wallet.balance == 1
    assert LedgerAccount.objects.filter(kind="wallet", owner_id=person.pk).count() == 1


# --- What a settled day still owes -------------------------------------------------------------


def test_settling_what_a_settled_day_owes_pays_exactly_the_difference_once(person):
    carbon_credit(person, DAY, 30 * G)
    first = settlement_run(day=DAY)
    carbon_credit(person, DAY, 40 * G + 500)  # approved from the review queue after the night

    owed = settlement_run(day=DAY, owed=True)
    again = settlement_run(day=DAY, owed=True)
    settlement_run(day=DAY)

    assert (owed.round, owed.status, owed.accounts_settled, owed.coins_minted, owed.carbon_mg_settled) == (
        1,
        SettlementRunStatus.SUCCEEDED,
        1,
        4,
        40_000,
    )
    assert again.pk == owed.pk
    assert list(SettlementRun.objects.values_list("day", "round")) == [(DAY, 1), (DAY, 0)]
    assert first.pk != owed.pk
    assert _balance(person) == 7
    assert _settled(person, DAY) == (70_500, 70_000)
    assert list(
        Settlement.objects.filter(user_id=person.pk).order_by("run__round").values_list("coins", "run")
    ) == [
        (3, first.pk),
        (4, owed.pk),
    ]
    assert sorted(
        LedgerTransaction.objects.filter(kind="settlement").values_list("idempotency_key", flat=True)
    ) == [
        f"settlement:{DAY}:people:{person.pk}-{person.pk}",
        f"settlement:{DAY}:round:1:people:{person.pk}-{person.pk}",
    ]
    assert ledger_audit().is_balanced
    assert invariant_violations() == []


def test_the_next_night_pays_nothing_twice_after_an_owed_round(person):
    carbon_credit(person, DAY, 30 * G)
    settlement_run(day=DAY)
    carbon_credit(person, DAY, 40 * G)
    settlement_run(day=DAY, owed=True)
    carbon_credit(person, DAY, 20 * G)  # approved later still

    owed_again = settlement_run(day=DAY, owed=True)
    next_night = settlement_run(day=DAY + datetime.timedelta(days=1))

    assert (owed_again.round, owed_again.coins_minted) == (2, 2)
    assert (next_night.round, next_night.accounts_settled, next_night.coins_minted) == (0, 0, 0)
    assert _balance(person) == 9
    assert _settled(person, DAY) == (90_000, 90_000)
    assert invariant_violations() == []


def test_the_checker_sees_coins_minted_for_carbon_that_stays_owed_and_is_paid_again(person):
    carbon_credit(person, DAY, 30 * G)
    settlement = settlement_run(day=DAY).settlements.get()
    assert invariant_violations() == []
    # A settlement that marked settled less than its coins stand for (every other sum still agrees).
    with connection.cursor() as cursor:
        cursor.execute("UPDATE rewards_settlement SET carbon_mg = carbon_mg - 10000")
        cursor.execute("UPDATE activities_dailycarbon SET settled_carbon_mg = settled_carbon_mg - 10000")

    settlement_run(day=DAY + datetime.timedelta(days=1))

    assert _balance(person) == 4  # the 10 g left owed were paid a second time
    assert invariant_violations() == [
        f"settlement rate: settlement {settlement.pk}, person {person.pk}, day {DAY}: "
        "3 coins at 10000 mg a coin for 20000 mg"
    ]


def test_nothing_owed_starts_no_round(person):
    carbon_credit(person, DAY, 30 * G)
    settlement_run(day=DAY)
    carbon_credit(person, DAY, 9 * G)  # less than a coin: it waits for more carbon

    run = settlement_run(day=DAY, owed=True)

    assert (run.round, run.coins_minted) == (0, 3)
    assert SettlementRun.objects.count() == 1
    assert _balance(person) == 3
    assert settlement_owed(day=DAY) == SettlementOwed(day=DAY, people=0, carbon_mg=0, coins=0)


def test_owed_on_a_day_not_settled_yet_settles_it_as_the_night_would(person):
    carbon_credit(person, DAY, 30 * G)

    run = settlement_run(day=DAY, owed=True, started_by_id=person.pk)

    assert (run.round, run.coins_minted, run.started_by_id) == (0, 3, person.pk)
    assert _balance(person) == 3


def test_a_failed_owed_round_is_resumed_not_repeated(person):
    carbon_credit(person, DAY, 30 * G)
    settlement_run(day=DAY)
    carbon_credit(person, DAY, 40 * G)
    settlement_run(day=DAY, owed=True)
    SettlementRun.objects.filter(day=DAY, round=1).update(status=SettlementRunStatus.FAILED)

    resumed = settlement_settle_day(DAY.isoformat())

    assert resumed["status"] == SettlementRunStatus.SUCCEEDED
    assert SettlementRun.objects.get(day=DAY, round=1).attempts == 2
    assert SettlementRun.objects.count() == 2
    assert _balance(person) == 7


def test_what_a_settled_day_owes_is_counted_in_whole_coins_at_the_days_rate():
    late, remainder_only, settled = UserFactory.create_batch(3)
    for user in (late, remainder_only, settled):
        carbon_credit(user, DAY, 20 * G)
    carbon_credit(late, DAY - datetime.timedelta(days=3), 5 * G)
    settlement_run(day=DAY)
    carbon_credit(late, DAY, 25 * G)
    carbon_credit(remainder_only, DAY, 4 * G)
    carbon_credit(settled, DAY + datetime.timedelta(days=1), 50 * G)  # a later day: not this one's

    assert settlement_owed(day=DAY) == SettlementOwed(day=DAY, people=1, carbon_mg=30_000, coins=3)


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _settlement_rows_read(plan: dict) -> int:
    """Rows of rewards_settlement handed to the statement, over all loops (a Materialize of them
    handing its rows out again for each outer row counts each time)."""
    read = 0
    for node in _plan_nodes(plan):
        below = list(_plan_nodes(node))
        if node.get("Relation Name") == "rewards_settlement" or (
            node["Node Type"] == "Materialize"
            and any(child.get("Relation Name") == "rewards_settlement" for child in below)
        ):
            read += node["Actual Rows"] * node["Actual Loops"]
    return read


def test_a_chunk_s_key_check_reads_a_row_per_person_whatever_the_statistics_know_of_the_day():
    # Given a settled day the statistics know, then the next day's first chunk settled after the
    # statistics were taken (as a night's chunks run: its day is not in them)
    people = UserFactory.create_batch(40)
    issuance_account()
    for user in people:
        carbon_credit(user, DAY - datetime.timedelta(days=1), 10 * G)
    settlement_run(day=DAY - datetime.timedelta(days=1))
    for user in people:
        carbon_credit(user, DAY, 20 * G)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE activities_dailycarbon, rewards_settlement")
    run = settlement_run_start(day=DAY)
    middle = people[19].pk
    settlement_range_settle(run=run, lower=-1, upper=middle)

    # When the next chunk's rows are collected
    params = {"lower": middle, "upper": ALL_PEOPLE, "day": DAY, "rate": 10 * G, "run": run.pk}
    _candidates_collect(day=DAY, lower=middle, upper=ALL_PEOPLE)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) {}").format(statements.SETTLEMENT_ROWS_COLLECT), params
        )
        explained = cursor.fetchone()[0]
        transaction.set_rollback(True)
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]

    # Then its key check looked each of its 20 people up once, not the first chunk's 20 rows for each
    assert _settlement_rows_read(plan) <= 20
    assert Settlement.objects.filter(day=DAY).count() == 20


@pytest.mark.django_db(transaction=True)
def test_a_run_that_fails_after_another_worker_finished_it_stays_succeeded():
    # Given a day's settlement by one task whose run a chunked settlement of the same round finishes
    # meanwhile (marked succeeded), before the task's next step fails
    day = datetime.date(2026, 11, 20)
    carbon_credit(UserFactory(), day, 20_000)

    def finished_elsewhere_then_failing(_index, _result):
        SettlementRun.objects.filter(day=day).update(status=SettlementRunStatus.SUCCEEDED)
        raise ConnectionError("the database went away")

    # When the task fails
    with pytest.raises(ConnectionError):
        settlement_run(day=day, on_chunk_committed=finished_elsewhere_then_failing)

    # Then the run keeps its success: a failure marks only a run nobody finished
    assert SettlementRun.objects.get(day=day).status == SettlementRunStatus.SUCCEEDED
