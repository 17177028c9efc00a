"""Redis unavailable: what does not need it keeps working, `/readyz` says so, sign-in throttling
fails closed, and everything is back once Redis returns; the nightly work beat could not send while
Redis (the Celery broker) was down is done by a real worker once it is back, as if nothing happened.
"""

from __future__ import annotations

import contextlib
import copy
import datetime

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone, translation
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from core.api.errors import SERVICE_UNAVAILABLE
from rewards.models import LeaderboardBuild, LedgerAccount, Settlement, SettlementRun, SettlementRunStatus
from rewards.services import issuance_account
from tests.accounts.factories import UserFactory
from tests.reliability.conftest import FIGURES, count_response, soak
from tests.reliability.processes import RedisServer, celery_beat, celery_worker, processes, wait_for
from tests.rewards.factories import WelfareProjectFactory, carbon_credit, fund_wallet


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def on_throwaway_redis(redis_server):
    caches = copy.deepcopy(settings.CACHES)
    for alias in caches.values():
        alias["LOCATION"] = redis_server.url
        alias.setdefault("OPTIONS", {}).update({"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5})
    with override_settings(CACHES=caches, REDIS_URL=redis_server.url):
        yield redis_server


def test_with_redis_down_reads_and_writes_work_readyz_says_so_and_sign_in_fails_closed(
    on_throwaway_redis, client_for, api_client
):
    user = UserFactory()
    fund_wallet(user, 100)
    client = client_for(user)  # a real session, cached in Redis while it was up
    project = WelfareProjectFactory()
    assert client.get("/api/v1/wallet").status_code == 200

    on_throwaway_redis.stop()
    FIGURES["faults injected"] += 1

    ready = api_client.get("/readyz")
    count_response(ready.status_code, during_fault=True)
    assert ready.status_code == 503
    assert ready.json()["error"]["fields"]["failed"] == ["redis"]

    wallet = client.get("/api/v1/wallet")
    count_response(wallet.status_code)
    assert wallet.status_code == 200, wallet.content
    donation = client.post(
        f"/api/v1/welfare/projects/{project.public_id}/donations",
        {"amount": 5},
        format="json",
        HTTP_IDEMPOTENCY_KEY="outage-donation-1",
    )
    count_response(donation.status_code)
    assert donation.status_code == 201, donation.content

    guest = api_client.post(
        "/api/v1/guests", {"device_id": "device-0123456789abcdef", "accepted_agreements": []}, format="json"
    )
    count_response(guest.status_code, during_fault=True)
    assert guest.status_code == 503, guest.content
    assert guest.json()["error"]["code"] == "service_unavailable"
    # In the caller's language, though the refusal comes before the language is picked.
    in_chinese = api_client.post("/api/v1/guests", {}, format="json", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    with translation.override("zh-hans"):
        assert in_chinese.json()["error"]["message"] == str(SERVICE_UNAVAILABLE.message)
    assert in_chinese.json()["error"]["message"] != guest.json()["error"]["message"]
    sign_in = api_client.post(
        "/_allauth/app/v1/auth/login", {"username": user.username, "password": "x"}, format="json"
    )
    count_response(sign_in.status_code, during_fault=True)
    assert sign_in.status_code == 503, sign_in.content

    on_throwaway_redis.start()

    ready = api_client.get("/readyz")
    count_response(ready.status_code)
    assert ready.status_code == 200
    assert client.get("/api/v1/wallet").json()["balance"] == 95
    guest = api_client.post(
        "/api/v1/guests", {"device_id": "device-0123456789abcdef", "accepted_agreements": []}, format="json"
    )
    count_response(guest.status_code)
    assert guest.status_code < 500, guest.content


def _finished(worker, task: str) -> int:
    """How many runs of `task` the worker has finished."""
    return sum(1 for line in worker.output.splitlines() if f"{task}[" in line and "succeeded in" in line)


def _catch_ups(worker) -> int:
    return _finished(worker, "rewards.catch_up")


def _people_with_carbon_on(day: datetime.date) -> dict[int, int]:
    """Person id → the coins their carbon of `day` is worth (10 g a coin, plus a remainder)."""
    expected = {}
    for number, user in enumerate(UserFactory.create_batch(10), start=1):
        carbon_credit(user, day, number * 10_000 + 3_000)
        expected[user.pk] = number
    issuance_account()
    return expected


def _assert_settled_once(day: datetime.date, expected: dict[int, int]) -> None:
    balances = dict(LedgerAccount.objects.filter(kind="wallet").values_list("owner_id", "balance"))
    assert balances == expected
    assert Settlement.objects.filter(day=day).count() == len(expected)
    assert SettlementRun.objects.get(day=day).status == SettlementRunStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_the_night_a_redis_restart_forgot_is_settled_when_a_worker_connects(redis_server):
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    expected = _people_with_carbon_on(yesterday)
    client = Celery("reliability-client", broker=redis_server.url, set_as_current=False)
    # Given the nightly job queued by beat while no worker was consuming (a deploy, say),
    client.send_task("rewards.settlement_settle_yesterday")
    queued = redis.Redis.from_url(redis_server.url)
    assert queued.llen("celery") == 1
    # when Redis restarts without persistence and forgets it,
    redis_server.stop()
    redis_server.start()
    FIGURES["faults injected"] += 1
    assert queued.llen("celery") == 0
    client.close()

    # then the worker that connects works out from the database what the night owes, and settles it.
    with processes() as started:
        worker = celery_worker(started, redis_url=redis_server.url, name="catch-up", CELERY_CATCH_UP="1")
        wait_for(lambda: _catch_ups(worker) == 1, timeout=60, what="the catch-up to run")
        wait_for(
            lambda: LeaderboardBuild.objects.filter(period="all_time").exists(),
            timeout=30,
            what="the boards the settlement makes stale to be rebuilt",
        )

    _assert_settled_once(yesterday, expected)


@soak
@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_what_came_due_while_redis_was_down_is_done_once_it_returns(redis_server):
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    with processes() as started:
        worker = celery_worker(started, redis_url=redis_server.url, name="catch-up", CELERY_CATCH_UP="1")
        wait_for(lambda: _catch_ups(worker) == 1, timeout=30, what="the start-up catch-up")
        assert not SettlementRun.objects.exists(), "nothing was owed when the worker started"
        expected = _people_with_carbon_on(yesterday)
        beat = celery_beat(started, redis_url=redis_server.url, name="beat", CELERY_CATCH_UP="1")
        wait_for(lambda: "beat: Starting" in beat.output, timeout=30, what="beat to start")

        # Given Redis down when the nightly settlement comes due,
        redis_server.stop()
        FIGURES["faults injected"] += 1
        PeriodicTask.objects.create(
            name="reliability.nightly",
            task="rewards.settlement_settle_yesterday",
            interval=IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS),
            one_off=True,  # due once, like 00:10 on a crontab
        )
        wait_for(lambda: "beat: Connection error" in beat.output, timeout=60, what="beat to find Redis down")
        assert not Settlement.objects.exists()

        # when Redis comes back (empty),
        redis_server.start()

        # then the worker reconnects and catches up, beat sends the job it held, and the day is
        # settled once whichever of them gets there first.
        settled = SettlementRun.objects.filter(day=yesterday, status=SettlementRunStatus.SUCCEEDED)
        wait_for(settled.exists, timeout=90, what="the day to be settled")
        wait_for(lambda: _catch_ups(worker) >= 2, timeout=60, what="the reconnection's catch-up")
        wait_for(
            lambda: _finished(worker, "rewards.settlement_settle_yesterday") == 1,
            timeout=60,
            what="the job beat held to run",
        )
        sent = beat.output.count("Sending due task reliability.nightly")

    _assert_settled_once(yesterday, expected)
    assert sent == 1


def test_resuming_a_settlement_from_the_admin_with_the_queue_down_says_so_instead_of_failing(redis_server):
    operator = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    day = timezone.localdate() - datetime.timedelta(days=1)
    run = SettlementRun.objects.create(
        day=day, status="failed", carbon_mg_per_coin=10_000, started_at=timezone.now()
    )
    redis_server.stop()
    FIGURES["faults injected"] += 1

    with broker_of_this_process(redis_server.url):
        page = client.post(
            "/admin/rewards/settlementrun/", {"action": "resume", "_selected_action": [run.pk]}, follow=True
        )

    count_response(page.status_code, during_fault=True)
    assert page.status_code == 200
    assert "The task queue is unreachable: nothing was queued." in page.content.decode()
    run.refresh_from_db()
    assert run.status == "failed"


@contextlib.contextmanager
def broker_of_this_process(url: str):
    """This process's Celery app sending through `url` for real (the tests otherwise run tasks eagerly)."""
    from config.celery import app

    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url", "broker_write_url")}
    app.conf.update(task_always_eager=False, broker_url=url, broker_write_url=None)
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        app.conf.update(saved)
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None
