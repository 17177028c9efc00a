"""A gunicorn worker killed in the middle of a redemption while the client retries with the same
Idempotency-Key: the killed request's transaction rolls back, the retry makes one coupon, a second
retry returns that same coupon, and the coins are taken once."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import requests

from merchants.models import Coupon
from rewards.models import LedgerAccount
from tests.accounts.factories import UserFactory
from tests.conftest import session_token_for
from tests.merchants.factories import OfferFactory
from tests.reliability.conftest import FIGURES, count_response
from tests.reliability.processes import (
    backends_waiting_on_a_lock,
    gunicorn,
    gunicorn_workers,
    processes,
    row_locked,
    wait_for,
)
from tests.rewards.factories import fund_wallet
from tests.services import throwaway_redis

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def test_a_worker_killed_mid_redemption_and_a_retry_with_the_same_key_take_the_coins_once():
    user = UserFactory()
    fund_wallet(user, 1000)
    offer = OfferFactory(price_coins=40, total_stock=5, stock_left=5, limit_per_person=3)
    headers = {"X-Session-Token": session_token_for(user), "Idempotency-Key": "retry-after-crash-1"}

    with throwaway_redis() as redis_url, processes() as started:
        base = gunicorn(started, redis_url=redis_url)
        url = f"{base}/api/v1/catalog/offers/{offer.public_id}/redeem"
        outcome: dict = {}

        def first_attempt() -> None:
            try:
                outcome["response"] = requests.post(url, json={}, headers=headers, timeout=30)
            except requests.ConnectionError as error:
                outcome["error"] = error

        # The stock is taken last: holding the offer's row stops the request inside its transaction.
        with row_locked("SELECT id FROM merchants_offer WHERE id = %s FOR UPDATE", [offer.pk]):
            client = threading.Thread(target=first_attempt)
            client.start()
            wait_for(lambda: backends_waiting_on_a_lock() == 1, timeout=30, what="the redemption to block")
            (worker,) = gunicorn_workers(started[0])
            os.kill(worker, signal.SIGKILL)
            FIGURES["faults injected"] += 1
            client.join(timeout=30)
        assert "error" in outcome or outcome["response"].status_code >= 500
        if "response" in outcome:
            count_response(outcome["response"].status_code, during_fault=True)

        wait_for(lambda: len(gunicorn_workers(started[0])) == 1, timeout=30, what="gunicorn to replace it")
        retry = requests.post(url, json={}, headers=headers, timeout=30)
        again = requests.post(url, json={}, headers=headers, timeout=30)
        for response in (retry, again):
            count_response(response.status_code)

    assert (retry.status_code, again.status_code) == (201, 200), (retry.content, again.content)
    assert retry.json() == again.json()
    assert Coupon.objects.filter(user=user).count() == 1
    assert LedgerAccount.objects.get(kind="wallet", owner_id=user.pk).balance == 960
    offer.refresh_from_db()
    assert offer.stock_left == 4
