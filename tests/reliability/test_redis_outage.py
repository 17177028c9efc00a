"""Redis unavailable: what does not need it keeps working, `/readyz` says so, sign-in throttling
fails closed, and everything is back once Redis returns."""

from __future__ import annotations

import copy

import pytest
from django.conf import settings
from django.test import override_settings

from tests.accounts.factories import UserFactory
from tests.reliability.conftest import FIGURES, count_response
from tests.reliability.processes import RedisServer
from tests.rewards.factories import WelfareProjectFactory, fund_wallet


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
