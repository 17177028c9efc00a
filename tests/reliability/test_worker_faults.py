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
- The expiry as chunk tasks: a worker killed in a chunk's reminders, after the chunk's expiry
  committed and before it counted; the redelivered chunk and the others remind each person once
  per window, and each chunk counts once.
- The people's progress counted as chunk tasks: a worker killed inside a chunk (blocked on a day's
  row this test holds); the redelivered chunk and the others count each day once, and the refresh
  finishes when the last chunk commits.
- Two beat processes fire the same job: however many times it runs, the day is settled once.
"""

from __future__ import annotations

import datetime

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from accounts.notifications.models import Notification
from activities.models import DailyCarbon
from rewards.models import (
    BadgeProgress,
    ChunkedRun,
    CoinLot,
    LedgerAccount,
    ProgressRefresh,
    RunChunk,
    Settlement,
    SettlementRun,
    SettlementRunStatus,
)
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
from tests.rewards.factories import carbon_credit, lots_mint

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


def _worker_killed_waiting_on(
    started,
    broker,
    workers: dict,
    *,
    task: str,
    args: list,
    lock: str,
    lock_params: list | None = None,
    what: str = "a chunk to block",
) -> None:
    """Starts a worker, sends it `task` and kills it once it waits on the row `lock` holds (this
    test's connection): mid-transaction, its task unacknowledged."""
    first = celery_worker(started, **workers, name="first")
    with row_locked(lock, lock_params):
        broker.app.send_task(task, args=args)
        wait_for(lambda: backends_waiting_on_a_lock() == 1, timeout=30, what=what)
        first.kill()
        FIGURES["faults injected"] += 1


def test_a_worker_killed_in_a_chunk_task_leaves_the_chunked_run_to_the_others_settled_once(people, broker):
    workers = {**broker.process_options, "REWARDS_CHUNK_IDS": "8"}
    with processes() as started:
        _worker_killed_waiting_on(
            started, broker, workers, task="rewards.settlement_chunked_day", args=[DAY.isoformat()],
            lock=ISSUANCE_ROW,
        )  # fmt: skip
        assert not Settlement.objects.exists(), "the killed chunk's transaction must roll back"

        celery_worker(started, **workers, name="second")
        celery_worker(started, **workers, name="third")
        wait_for(_settled, timeout=90, what="the chunks to settle the day")

    _assert_settled_once(people)
    run = ChunkedRun.objects.get(key=f"settlement:{DAY.isoformat()}:0")
    assert run.chunks_total >= 4
    assert run.chunks_done == run.chunks_total
    assert RunChunk.objects.filter(run=run, done_at__isnull=False).count() == run.chunks_total


EXPIRY_DAY = datetime.date(2026, 11, 24)
# Each person's reminders: the months of coins due in 3 and in 20 days, the ISO week of the first.
REMINDER_KEYS = {"coins_expiring:30:2026-11", "coins_expiring:30:2026-12", "coins_expiring:7:2026-48"}
# A lot the reminders flag (due in 20 days) and the expiry leaves alone: its lock stops a chunk
# between its expiry's commit and its reminders'.
REMINDED_LOT = (
    "SELECT lot.id FROM rewards_coinlot AS lot JOIN rewards_ledgeraccount AS wallet"
    " ON wallet.id = lot.account_id WHERE wallet.kind = 'wallet' AND wallet.owner_id = %s"
    " AND lot.expires_on = %s FOR UPDATE OF lot"
)


@pytest.fixture
def expiring() -> list[int]:
    """PEOPLE people, each with coins due on EXPIRY_DAY, due 3 days later and due 20 days later."""
    users = UserFactory.create_batch(PEOPLE)
    for user in users:
        lots_mint(
            user,
            (2, EXPIRY_DAY),
            (3, EXPIRY_DAY + datetime.timedelta(days=3)),
            (5, EXPIRY_DAY + datetime.timedelta(days=20)),
        )
    return [user.pk for user in users]


def test_a_worker_killed_in_an_expiry_chunk_s_reminders_leaves_them_to_the_others_raised_once(
    expiring, broker
):
    workers = {**broker.process_options, "REWARDS_CHUNK_IDS": "8"}
    key = f"expiry:{EXPIRY_DAY.isoformat()}"
    with processes() as started:
        _worker_killed_waiting_on(
            started, broker, workers, task="rewards.coins_expire_chunked", args=[EXPIRY_DAY.isoformat()],
            lock=REMINDED_LOT, lock_params=[expiring[0], EXPIRY_DAY + datetime.timedelta(days=20)],
            what="a chunk's reminders to block",
        )  # fmt: skip
        # The first chunk's expiry committed; its reminders were rolled back with the kill, uncounted.
        assert LedgerAccount.objects.get(kind="expiry_sink").balance > 0
        assert not Notification.objects.exists(), "the killed chunk's reminders must roll back"
        assert not RunChunk.objects.filter(run__key=key, done_at__isnull=False).exists()

        celery_worker(started, **workers, name="second")
        celery_worker(started, **workers, name="third")
        wait_for(
            lambda: ChunkedRun.objects.filter(key=key, finished_at__isnull=False).exists(),
            timeout=90,
            what="the chunks to finish the expiry",
        )

    reminded = list(Notification.objects.filter(kind="coins_expiring").values_list("user_id", "event_key"))
    assert sorted(reminded) == sorted((person, event) for person in expiring for event in REMINDER_KEYS)
    flagged = CoinLot.objects.filter(reminder_raised_at__isnull=False)
    assert sorted(flagged.values_list("amount", flat=True)) == [3] * PEOPLE + [5] * PEOPLE
    assert LedgerAccount.objects.get(kind="expiry_sink").balance == 2 * PEOPLE
    run = ChunkedRun.objects.get(key=key)
    assert run.chunks_total >= 4
    assert run.chunks_done == run.chunks_total
    assert RunChunk.objects.filter(run=run, done_at__isnull=False).count() == run.chunks_total


PERSON_S_DAY = "SELECT id FROM activities_dailycarbon WHERE user_id = %s AND day = %s FOR UPDATE"


def test_a_worker_killed_in_a_progress_chunk_leaves_the_refresh_to_the_others_each_day_counted_once(
    people, broker
):
    workers = {**broker.process_options, "REWARDS_PROGRESS_CHUNK_DAYS": "8"}
    with processes() as started:
        _worker_killed_waiting_on(
            started, broker, workers, task="rewards.progress_refresh_chunked", args=[DAY.isoformat()],
            lock=PERSON_S_DAY, lock_params=[min(people), DAY],
        )  # fmt: skip
        assert not BadgeProgress.objects.exists(), "the killed chunk's counting must roll back"

        celery_worker(started, **workers, name="second")
        celery_worker(started, **workers, name="third")
        wait_for(
            lambda: ProgressRefresh.objects.filter(finished_at__isnull=False).exists(),
            timeout=90,
            what="the chunks to finish the refresh",
        )

    carbon = dict(DailyCarbon.objects.filter(day=DAY).values_list("user_id", "credited_carbon_mg"))
    progress = {
        row[0]: row[1:] for row in BadgeProgress.objects.values_list("user_id", "carbon_mg", "run_end")
    }
    assert progress == {person: (carbon[person], DAY) for person in people}
    assert not DailyCarbon.objects.filter(uncounted=True).exists()
    refresh = ProgressRefresh.objects.get()
    assert (refresh.days_counted, refresh.people_changed) == (PEOPLE, PEOPLE)
    run = ChunkedRun.objects.get(key=f"progress:{refresh.pk}")
    assert run.chunks_total >= 4
    assert run.chunks_done == run.chunks_total


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
