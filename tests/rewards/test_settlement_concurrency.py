"""Settlement under real concurrency and real crashes, against PostgreSQL.

Two workers settling the same day at once, and a worker process that dies in the middle of a chunk
(its connection drops with the chunk's transaction open), then a rerun: every person is settled
exactly once and the ledger balances.
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import threading

import pytest
from django.db import connection, connections

from activities.models import DailyCarbon
from rewards.audit import ledger_audit
from rewards.ledger import writer as writer_module
from rewards.models import LedgerAccount, Settlement, SettlementRun, SettlementRunStatus
from rewards.services import settlement as settlement_module
from rewards.services import settlement_run
from tests.accounts.factories import UserFactory
from tests.rewards.factories import carbon_credit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

DAY = datetime.date(2026, 11, 20)
PEOPLE = 40


def _people_with_carbon() -> dict[int, int]:
    """Person id → coins they must end up with (number × 10 g + 3 g of remainder)."""
    expected = {}
    for number, user in enumerate(UserFactory.create_batch(PEOPLE), start=1):
        carbon_credit(user, DAY, number * 10_000 + 3_000)
        expected[user.pk] = number
    return expected


def _balances() -> dict[int, int]:
    return dict(LedgerAccount.objects.filter(kind="wallet").values_list("owner_id", "balance"))


def _assert_settled_exactly_once(expected: dict[int, int]) -> None:
    assert _balances() == expected
    assert Settlement.objects.filter(day=DAY).count() == PEOPLE
    assert set(DailyCarbon.objects.values_list("credited_carbon_mg", flat=True)) == {
        coins * 10_000 + 3_000 for coins in expected.values()
    }
    assert all(row.credited_carbon_mg - row.settled_carbon_mg == 3_000 for row in DailyCarbon.objects.all())
    report = ledger_audit()
    assert report.is_balanced, report.problems
    assert report.totals["minted"] == sum(expected.values())


def test_two_workers_settling_the_same_day_at_once_settle_each_person_once():
    expected = _people_with_carbon()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            settlement_run(day=DAY, chunk_size=7)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    _assert_settled_exactly_once(expected)
    run = SettlementRun.objects.get(day=DAY)
    assert (run.status, run.accounts_settled, run.coins_minted) == (
        SettlementRunStatus.SUCCEEDED,
        PEOPLE,
        sum(expected.values()),
    )


def _settle_and_die_in_the_third_chunk() -> None:
    """Runs in a forked child: settles, and drops dead before the third chunk commits."""
    real_execute = settlement_module.execute
    chunks_started = 0

    def text_of(statement) -> str:
        return statement if isinstance(statement, str) else statement.as_string(None)

    def execute_then_die(statement, params=None):
        nonlocal chunks_started
        if 'CREATE TEMPORARY TABLE "rewards_settlement_rows"' in text_of(statement):
            chunks_started += 1
        if chunks_started == 3 and text_of(statement).lstrip().startswith("INSERT INTO rewards_coinlot"):
            os._exit(137)  # like SIGKILL: no cleanup, the open transaction dies with the connection
        return real_execute(statement, params)

    # The chunk's own statements, and the ledger writer's posting of its lots.
    settlement_module.execute = execute_then_die
    writer_module.execute = execute_then_die
    settlement_run(day=DAY, chunk_size=10)
    os._exit(0)


def test_a_worker_killed_in_the_middle_of_a_chunk_is_resumed_without_double_settling():
    expected = _people_with_carbon()
    connections.close_all()  # the child must not share our connection

    child = multiprocessing.get_context("fork").Process(target=_settle_and_die_in_the_third_chunk)
    child.start()
    child.join(timeout=120)

    assert child.exitcode == 137
    # A killed worker's connection is gone; make sure its backend is too before resuming (the
    # server notices a dropped socket on its own, but not always before the next statement here).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND state = 'idle in transaction'"
        )
    run = SettlementRun.objects.get(day=DAY)
    assert (run.status, run.chunks_committed, run.accounts_settled) == (SettlementRunStatus.RUNNING, 2, 20)
    assert Settlement.objects.count() == 20
    assert ledger_audit().is_balanced

    settlement_run(day=DAY, chunk_size=10)

    _assert_settled_exactly_once(expected)
    run.refresh_from_db()
    assert (run.status, run.attempts, run.accounts_settled) == (SettlementRunStatus.SUCCEEDED, 2, PEOPLE)


def test_parallel_workers_of_one_run_settle_disjoint_chunks_once_each():
    expected = _people_with_carbon()

    run = settlement_run(day=DAY, chunk_size=6, workers=3)

    _assert_settled_exactly_once(expected)
    assert (run.status, run.accounts_settled, run.chunks_committed) == (
        SettlementRunStatus.SUCCEEDED,
        PEOPLE,
        7,
    )


@pytest.mark.parametrize("round_number", range(3))
def test_settlements_of_two_different_days_at_once_never_settle_the_same_carbon_twice(round_number):
    expected = _people_with_carbon()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(day: datetime.date) -> None:
        try:
            start.wait()
            settlement_run(day=day, chunk_size=5)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(day,)) for day in (DAY, DAY + datetime.timedelta(days=1))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert _balances() == expected
    assert all(row.credited_carbon_mg - row.settled_carbon_mg == 3_000 for row in DailyCarbon.objects.all())
    assert ledger_audit().is_balanced


def test_two_operators_settling_what_a_day_owes_at_once_pay_it_once():
    expected = _people_with_carbon()
    settlement_run(day=DAY, chunk_size=7)
    late = {}
    for number, user_id in enumerate(sorted(expected), start=1):
        if number % 2:
            carbon_credit(UserFactory._meta.model.objects.get(pk=user_id), DAY, 20_000)
            late[user_id] = 2
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def operator() -> None:
        try:
            start.wait()
            settlement_run(day=DAY, chunk_size=7, owed=True)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=operator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert _balances() == {user_id: coins + late.get(user_id, 0) for user_id, coins in expected.items()}
    assert list(SettlementRun.objects.values_list("round", "accounts_settled", "coins_minted")) == [
        (1, len(late), 2 * len(late)),
        (0, PEOPLE, sum(expected.values())),
    ]
    assert Settlement.objects.filter(day=DAY).count() == PEOPLE + len(late)
    report = ledger_audit()
    assert report.is_balanced, report.problems
