"""Settlement under real Celery processes and real faults, on each broker the platform runs on: a
throwaway Redis, and the local RabbitMQ (skipped, saying why, where it does not answer).

- A worker is killed with SIGKILL in the middle of a settlement chunk (blocked inside the chunk's
  transaction on a row lock this test holds); the task, acknowledged late, is redelivered to another
  worker (Redis: once the shortened visibility timeout passes; RabbitMQ: as soon as the killed
  worker's connection drops), and the day is settled once.
- Two workers run the same settlement at the same moment: each person is settled once.
- The settlement as chunk tasks (rewards/chunked.py): a worker killed inside a chunk, two others
  sharing the chunks afterwards; each person is settled once, each chunk counted once, and the run
  succeeds when the last chunk commits.
- Two beat processes fire the same job: however many times it runs, the day is settled once.
"""

from __future__ import annotations

import datetime

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from rewards.models import ChunkedRun, LedgerAccount, RunChunk, Settlement, SettlementRun, SettlementRunStatus
from rewards.services import issuance_account
from tests.accounts.factories import UserFactory
from tests.reliability.conftest import FIGURES, soak
from tests.reliability.processes import (
    backends_waiting_on_a_lock,
    broker_for,
    celery_beat,
    celery_worker,
    processes,
    rabbitmq_missing,
    row_locked,
    wait_for,
)
from tests.rewards.factories import carbon_credit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

DAY = datetime.date(2026, 11, 20)
PEOPLE = 30
TASK = "rewards.settlement_settle_day"


@pytest.fixture
def people() -> dict[int, int]:
    """Person id → the coins their carbon of DAY is worth (10 g a coin, plus a remainder)."""
    expected = {}
    for number, user in enumerate(UserFactory.create_batch(PEOPLE), start=1):
        carbon_credit(user, DAY, number * 10_000 + 3_000)
        expected[user.pk] = number
    issuance_account()
    return expected


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request):
    if request.param == "rabbitmq" and (missing := rabbitmq_missing()):
        pytest.skip(missing)
    with broker_for(request.param) as broker:
        yield broker


def _settled() -> bool:
    return SettlementRun.objects.filter(day=DAY, status=SettlementRunStatus.SUCCEEDED).exists()


def _assert_settled_once(expected: dict[int, int]) -> None:
    balances = dict(LedgerAccount.objects.filter(kind="wallet").values_list("owner_id", "balance"))
    assert balances == expected
    assert Settlement.objects.filter(day=DAY).count() == PEOPLE


ISSUANCE_ROW = "SELECT id FROM rewards_ledgeraccount WHERE kind = 'issuance' FOR UPDATE"


def test_a_worker_killed_mid_chunk_has_its_task_redelivered_and_the_day_settled_once(people, broker):
    app, workers = broker.app, broker.process_options
    with processes() as started:
        first = celery_worker(started, **workers, name="first")
        with row_locked(ISSUANCE_ROW):
            app.send_task(TASK, args=[DAY.isoformat()])
            wait_for(lambda: backends_waiting_on_a_lock() == 1, timeout=30, what="the chunk to block")
            first.kill()
            FIGURES["faults injected"] += 1
        assert not Settlement.objects.exists(), "the killed chunk's transaction must roll back"

        second = celery_worker(started, **workers, name="second")
        wait_for(_settled, timeout=60, what="the redelivered task to settle the day")
        wait_for(lambda: "succeeded in" in second.output, timeout=30, what="the second worker to report")

    _assert_settled_once(people)


def test_two_workers_running_the_same_settlement_settle_each_person_once(people, broker):
    app, workers = broker.app, broker.process_options
    with processes() as started:
        celery_worker(started, **workers, name="one")
        celery_worker(started, **workers, name="two")
        with row_locked(ISSUANCE_ROW):
            results = [app.send_task(TASK, args=[DAY.isoformat()]) for _ in range(2)]
            # Both inside a settlement at once: one on the issuance row, the other behind it.
            wait_for(lambda: backends_waiting_on_a_lock() >= 2, timeout=30, what="both workers to block")
        outcomes = [result.get(timeout=60) for result in results]

    assert {outcome["status"] for outcome in outcomes} == {"succeeded"}
    _assert_settled_once(people)


def test_a_worker_killed_in_a_chunk_task_leaves_the_chunked_run_to_the_others_settled_once(people, broker):
    app, workers = broker.app, {**broker.process_options, "REWARDS_CHUNK_IDS": "8"}
    with processes() as started:
        first = celery_worker(started, **workers, name="first")
        with row_locked(ISSUANCE_ROW):
            app.send_task("rewards.settlement_chunked_day", args=[DAY.isoformat()])
            wait_for(lambda: backends_waiting_on_a_lock() == 1, timeout=30, what="a chunk to block")
            first.kill()
            FIGURES["faults injected"] += 1
        assert not Settlement.objects.exists(), "the killed chunk's transaction must roll back"

        celery_worker(started, **workers, name="second")
        celery_worker(started, **workers, name="third")
        wait_for(_settled, timeout=90, what="the chunks to settle the day")

    _assert_settled_once(people)
    run = ChunkedRun.objects.get(key=f"settlement:{DAY.isoformat()}:0")
    assert run.chunks_total >= 4
    assert run.chunks_done == run.chunks_total
    assert RunChunk.objects.filter(run=run, done_at__isnull=False).count() == run.chunks_total


@soak
def test_two_beat_processes_at_once_settle_the_day_once(people, broker):
    workers = broker.process_options
    every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="reliability.settle", task=TASK, interval=every_second, args=f'["{DAY.isoformat()}"]'
    )
    with processes() as started:
        worker = celery_worker(started, **workers, name="worker")
        beats = [celery_beat(started, **workers, name=name) for name in ("beat-one", "beat-two")]
        FIGURES["faults injected"] += 1
        wait_for(
            lambda: all(beat.output.count("Sending due task reliability.settle") >= 2 for beat in beats),
            timeout=60,
            what="both beats to send the job",
        )
        wait_for(lambda: worker.output.count("succeeded in") >= 4, timeout=60, what="the worker to run them")

    _assert_settled_once(people)
