"""The night as beat and the dashboard send it: chunk tasks any number of workers share.

Settlement, the closed boards and expiry are sent as chunk tasks (rewards/chunked.py); the chain
of the night (operations/night.py) runs what follows settlement from its last chunk. Eager here
(CELERY_TASK_ALWAYS_EAGER): every task runs as it is sent, so the chain's order is the call order.
"""

from __future__ import annotations

import datetime

import pytest
from celery.exceptions import Retry
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from accounts.models import User
from accounts.notifications.models import Notification
from activities.models import DailyCarbon
from config.celery import app
from operations.night import NIGHT_JOBS, night_jobs_enqueue
from rewards import chunked, tasks
from rewards.chunked import settlement_chunk_settle, settlement_chunked_start
from rewards.gamification.ratings import ratings_rate_month
from rewards.ledger.accounts import coin_expiry_days
from rewards.models import (
    ChunkedRun,
    CoinLot,
    LeaderboardBuild,
    LeaderboardEntry,
    LedgerAccount,
    MonthlyRating,
    RatingRun,
    SettlementRun,
    SettlementRunStatus,
)
from rewards.services import issuance_account, settlement_run
from rewards.tasks import (
    after_settlement,
    catch_up,
    coins_expire_today,
    leaderboards_rebuild_today,
    ledger_audit_run,
    settlement_chunk,
    settlement_settle_day,
)
from tests.accounts.factories import UserFactory
from tests.rewards.factories import carbon_credit

PERIODS = ("today", "week", "month", "all_time")
CHUNKED_NIGHT = {
    "rewards.settle_yesterday": "rewards.settlement_chunked_yesterday",
    "rewards.leaderboards_closed": "rewards.leaderboards_rebuild_closed_chunked",
    "rewards.expire_coins": "rewards.coins_expire_chunked",
}


def test_the_beat_schedule_s_night_entries_name_the_chunked_tasks():
    schedule = settings.CELERY_BEAT_SCHEDULE

    assert {name: schedule[name]["task"] for name in CHUNKED_NIGHT} == CHUNKED_NIGHT
    assert set(CHUNKED_NIGHT.values()) <= set(app.tasks)
    assert set(CHUNKED_NIGHT) <= set(NIGHT_JOBS)
    # Expiry after settlement; the closed boards after both.
    at = {
        name: (min(schedule[name]["schedule"].hour), min(schedule[name]["schedule"].minute))
        for name in CHUNKED_NIGHT
    }
    assert at["rewards.settle_yesterday"] < at["rewards.expire_coins"] < at["rewards.leaderboards_closed"]


def _night_data(today: datetime.date) -> None:
    """Ten people: coins due to expire today, coins due in 20 days (reminded), carbon owed from
    yesterday and credited today; the same by username every time."""
    due = today - datetime.timedelta(days=coin_expiry_days())
    reminded = due + datetime.timedelta(days=20)
    people = [UserFactory(username=f"night-{number}") for number in range(10)]
    issuance_account()
    for number, person in enumerate(people):
        carbon_credit(person, due, (number + 1) * 10_000)
        carbon_credit(person, reminded, (number % 3) * 10_000 + 4_000)
    settlement_run(day=due)
    settlement_run(day=reminded)
    for number, person in enumerate(people):
        if number % 2:
            carbon_credit(person, today - datetime.timedelta(days=1), 13_000)
        carbon_credit(person, today, number * 7_000 + 2_000)


def _night_results(today: datetime.date) -> dict:
    names = dict(User.objects.values_list("pk", "username"))
    wallets = {
        names[owner]: balance
        for owner, balance in LedgerAccount.objects.filter(kind="wallet").values_list("owner_id", "balance")
    }
    settled = sorted(DailyCarbon.objects.values_list("user__username", "day", "settled_carbon_mg"))
    boards = {
        build.period: sorted(
            (names[user_id], rank, carbon)
            for user_id, rank, carbon in LeaderboardEntry.objects.filter(build_id=build.pk).values_list(
                "user_id", "city_rank", "carbon_mg"
            )
        )
        for build in LeaderboardBuild.objects.filter(period__in=PERIODS).order_by("pk")
    }
    run = SettlementRun.objects.get(day=today)
    return {
        "wallets": wallets,
        "settled": settled,
        "boards": boards,
        "sink": LedgerAccount.objects.get(kind="expiry_sink").balance,
        "reminded": sorted(
            (names[owner], amount, remaining)
            for owner, amount, remaining in CoinLot.objects.filter(
                reminder_raised_at__isnull=False
            ).values_list("account__owner_id", "amount", "remaining_amount")
        ),
        "run": (run.status, run.accounts_settled, run.coins_minted, run.carbon_mg_settled),
    }


def _single_task_night(today: datetime.date) -> None:
    settlement_settle_day(today.isoformat())
    after_settlement()
    leaderboards_rebuild_today()
    ledger_audit_run()
    coins_expire_today()


def _fresh(today: datetime.date) -> None:
    # As a transactional test's teardown does (sequences go on: each board build is a partition).
    call_command("flush", interactive=False, verbosity=0, reset_sequences=False, inhibit_post_migrate=True)
    from tests.operations.test_admin_dashboard import _seeded_rows

    _seeded_rows()
    _night_data(today)


@pytest.mark.django_db(transaction=True)
@override_settings(REWARDS_CHUNK_IDS=3)
def test_the_night_s_chain_as_chunk_tasks_settles_rebuilds_and_expires_as_the_single_tasks_do():
    today = timezone.localdate()
    _fresh(today)
    _single_task_night(today)
    single = _night_results(today)

    _fresh(today)
    operator = UserFactory(is_staff=True, is_superuser=True, username="night-operator")
    night_jobs_enqueue(operator=operator, today=today)
    chunked = _night_results(today)

    assert chunked["sink"] > 0
    assert chunked["reminded"]
    assert set(chunked["wallets"]) == {f"night-{number}" for number in range(10)}
    assert chunked == single
    jobs = set(ChunkedRun.objects.values_list("job", flat=True))
    assert jobs == {"settlement", "progress", "boards", "expiry"}
    assert not ChunkedRun.objects.filter(finished_at__isnull=True).exists()
    settlement = ChunkedRun.objects.get(job="settlement")
    assert len(settlement.followers) == 2
    assert settlement.followers_sent_at is not None


@pytest.mark.django_db(transaction=True)
@override_settings(REWARDS_CHUNK_IDS=3)
def test_the_catch_up_settles_the_owed_day_as_a_chunked_run_and_rebuilds_after_it():
    today = timezone.localdate()
    yesterday = today - datetime.timedelta(days=1)
    people = UserFactory.create_batch(7)
    issuance_account()
    for number, person in enumerate(people):
        carbon_credit(person, yesterday, (number + 1) * 10_000)

    result = catch_up()
    again = catch_up()

    assert result["owed"] == yesterday.isoformat()
    assert again == {"owed": None, "followers_sent": 0, "progress_chunks": 0}
    run = ChunkedRun.objects.get(job="settlement")
    assert (run.chunks_done, run.chunks_total) == (3, 3)
    assert run.finished_at is not None
    assert SettlementRun.objects.get(day=yesterday).accounts_settled == 7
    assert DailyCarbon.objects.filter(settled_carbon_mg=0).count() == 0
    assert LeaderboardBuild.objects.filter(period="all_time").exists()
    assert User.objects.count() == 7


@pytest.mark.django_db(transaction=True)
def test_a_catch_up_after_the_lost_nights_of_a_1st_makes_the_month_that_ended_final(monkeypatch):
    # Given January rated through the 30th (the 31st's run), carbon credited on the 31st, and the
    # nights of February 1st lost (beat's jobs never ran)
    january, january_30, january_31 = (datetime.date(2026, 1, day) for day in (1, 30, 31))
    person = UserFactory()
    carbon_credit(person, january_30, 50_000)
    settlement_run(day=january_30)
    ratings_rate_month(month=january, through_day=january_30)
    carbon_credit(person, january_31, 80_000)

    # When a worker reconnects on February 2nd and sends the catch-up (the worker's clock: the day
    # is read where the task chain starts, not passed along it)
    real_localdate = timezone.localdate
    monkeypatch.setattr(
        "django.utils.timezone.localdate",
        lambda value=None, timezone=None: (
            datetime.date(2026, 2, 2) if value is None else real_localdate(value, timezone)
        ),
    )
    result = catch_up()

    # Then the 1st is settled, and January's rating is final and its report announced
    assert result["owed"] == "2026-02-01"
    assert RatingRun.objects.get(month=january).through_day == january_31
    assert MonthlyRating.objects.get(user=person, month=january).carbon_mg == 130_000
    assert list(Notification.objects.values_list("user", "event_key")) == [
        (person.pk, "monthly_report:2026-01")
    ]


@pytest.mark.django_db(transaction=True)
def test_a_chunk_delivered_again_after_its_count_finished_the_settlement_sends_what_follows_it():
    # Given a day's chunked settlement of one chunk, whose worker died after the chunk's count
    # committed (and finished the run) and before it sent what follows the settlement
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    carbon_credit(UserFactory(), yesterday, 50_000)
    _run, pending = settlement_chunked_start(day=yesterday, followers=tasks._followers(None))
    assert settlement_chunk_settle(chunk_id=pending[0]).counted
    assert SettlementRun.objects.get(day=yesterday).status == SettlementRunStatus.SUCCEEDED
    assert not LeaderboardBuild.objects.exists()

    # When the chunk's task is delivered again (acknowledged late, so a killed worker's task is)
    result = settlement_chunk(pending[0])

    # Then it counts nothing more and sends what follows the settlement: the closed boards
    assert result == {"chunk": pending[0], "counted": False, "finished": True}
    assert ChunkedRun.objects.get(job="settlement").chunks_done == 1
    assert set(LeaderboardBuild.objects.values_list("period", flat=True)) == {"week", "month", "all_time"}
    assert ChunkedRun.objects.get(job="boards").finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_chunk_whose_followers_could_not_be_sent_is_retried_and_sends_them(monkeypatch):
    # Given a day's chunked settlement of one chunk, with the audit to follow it, and a broker that
    # refuses the first sending
    yesterday, pending, then = _one_chunk_settlement_followed_by_the_audit()
    broker = _Broker(monkeypatch, refusals=1)

    # When the chunk task runs as a worker runs it (a failure reported, not raised here): its count
    # finishes the run, then sending what follows fails
    result = settlement_chunk.apply((pending[0],), throw=False)

    # Then the task is retried (not acknowledged as failed), and its retry sends what follows once
    assert result.successful()
    assert result.get() == {"chunk": pending[0], "counted": False, "finished": True}
    assert broker.sent == [then]
    assert SettlementRun.objects.get(day=yesterday).status == SettlementRunStatus.SUCCEEDED
    run = ChunkedRun.objects.get(job="settlement")
    assert run.chunks_done == 1
    assert run.followers_sent_at is not None


def _one_chunk_settlement_followed_by_the_audit() -> tuple[datetime.date, list[int], list[dict]]:
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    carbon_credit(UserFactory(), yesterday, 50_000)
    then = tasks._followers([ledger_audit_run.si().set(ignore_result=True)])
    _run, pending = settlement_chunked_start(day=yesterday, followers=then)
    return yesterday, pending, then


class _Broker:
    """Takes the followers sent to it, or refuses them: `refusals` more times, or while `down`."""

    def __init__(self, monkeypatch, *, refusals: int = 0) -> None:
        self.refusals = refusals
        self.down = False
        self.sent: list[list[dict]] = []
        # Where the followers leave: a finished run's (rewards.chunked), a settled day's at once (the task).
        monkeypatch.setattr(chunked, "followers_send", self.send)
        monkeypatch.setattr(tasks, "followers_send", self.send)

    def send(self, followers: list[dict]) -> None:
        if self.down or self.refusals:
            self.refusals = max(0, self.refusals - 1)
            raise ConnectionError("broker unreachable")
        self.sent.append(followers)


@pytest.mark.django_db(transaction=True)
def test_followers_the_broker_refused_through_every_retry_are_sent_by_the_next_catch_up(monkeypatch):
    # Given a day's chunked settlement whose chunk finished the run while the broker refused every
    # sending of what follows it, its retries included (the task failed for good)
    yesterday, pending, then = _one_chunk_settlement_followed_by_the_audit()
    broker = _Broker(monkeypatch)
    broker.down = True
    with pytest.raises(Retry):  # eager retries nest: the last one's failure surfaces as this
        settlement_chunk.apply((pending[0],), throw=False)
    assert SettlementRun.objects.get(day=yesterday).status == SettlementRunStatus.SUCCEEDED
    assert ChunkedRun.objects.get(job="settlement").followers_sent_at is None

    # When the broker is back and a worker's reconnection sends the catch-up, twice
    broker.down = False
    first = catch_up()
    second = catch_up()

    # Then the first sends what follows the run, once, and marks it sent; the second sends nothing
    assert (first["owed"], first["followers_sent"]) == (None, 1)
    assert second == {"owed": None, "followers_sent": 0, "progress_chunks": 0}
    assert broker.sent == [then]
    assert ChunkedRun.objects.get(job="settlement").followers_sent_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_second_start_of_an_unfinished_run_adds_its_followers_and_the_finish_sends_each_once(monkeypatch):
    # Given a day's chunked settlement started by the night (its rebuilds to follow) and not finished
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    carbon_credit(UserFactory(), yesterday, 50_000)
    night = tasks._followers(None)
    _run, pending = settlement_chunked_start(day=yesterday, followers=night)

    # When the dashboard's press starts the same run with the audit to follow too (and the night's
    # rebuilds again), and the chunk finishes the run
    pressed = tasks._followers([ledger_audit_run.si().set(ignore_result=True), *night])
    _same, pending_again = settlement_chunked_start(day=yesterday, followers=pressed)
    broker = _Broker(monkeypatch)
    settlement_chunk(pending[0])

    # Then the run's one finish sends the rebuilds and the audit, each once
    assert pending_again == pending
    assert broker.sent == [night + pressed[:1]]
    assert ChunkedRun.objects.get(job="settlement").followers_sent_at is not None
