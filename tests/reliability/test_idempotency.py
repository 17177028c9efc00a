"""Each Idempotency-Key has at most one effect, and its replays — one after another or at the same
moment from several threads — get the same response."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from merchants.models import Coupon
from rewards.models import Donation, LedgerAccount
from tests.accounts.factories import UserFactory
from tests.merchants.factories import OfferFactory
from tests.reliability.conftest import count_response
from tests.rewards.factories import WelfareProjectFactory, fund_wallet

pytestmark = pytest.mark.django_db(transaction=True)


def _replays_at_once(client_for, user, path: str, body: dict, key: str, times: int = 4) -> list:
    start = threading.Barrier(times)
    responses: list = [None] * times

    def replay(index: int) -> None:
        client = client_for(user)
        try:
            start.wait()
            responses[index] = client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        finally:
            connection.close()

    threads = [threading.Thread(target=replay, args=(index,)) for index in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for response in responses:
        count_response(response.status_code)
    return responses


def test_concurrent_and_later_replays_of_a_redemption_make_one_coupon_with_one_answer(client_for):
    user = UserFactory()
    fund_wallet(user, 500)
    offer = OfferFactory(price_coins=30, total_stock=10, stock_left=10, limit_per_person=5)
    path = f"/api/v1/catalog/offers/{offer.public_id}/redeem"

    responses = _replays_at_once(client_for, user, path, {}, "same-redemption-key")
    later = client_for(user).post(path, {}, format="json", HTTP_IDEMPOTENCY_KEY="same-redemption-key")
    count_response(later.status_code)

    assert sorted(response.status_code for response in responses) == [200, 200, 200, 201]
    assert all(response.json() == later.json() for response in responses)
    assert Coupon.objects.filter(user=user).count() == 1
    assert LedgerAccount.objects.get(kind="wallet", owner_id=user.pk).balance == 470


def test_concurrent_and_later_replays_of_a_donation_give_once_with_one_answer(client_for):
    user = UserFactory()
    fund_wallet(user, 500)
    project = WelfareProjectFactory()
    path = f"/api/v1/welfare/projects/{project.public_id}/donations"

    responses = _replays_at_once(client_for, user, path, {"amount": 12}, "same-donation-key")
    later = client_for(user).post(
        path, {"amount": 12}, format="json", HTTP_IDEMPOTENCY_KEY="same-donation-key"
    )
    count_response(later.status_code)

    assert {response.status_code for response in responses} <= {200, 201}
    assert all(response.json() == later.json() for response in responses)
    assert Donation.objects.filter(user=user).count() == 1
    assert LedgerAccount.objects.get(kind="wallet", owner_id=user.pk).balance == 488


def test_a_key_reused_for_a_different_request_is_refused_and_changes_nothing(client_for):
    user = UserFactory()
    fund_wallet(user, 500)
    project = WelfareProjectFactory()
    client = client_for(user)
    path = f"/api/v1/welfare/projects/{project.public_id}/donations"
    assert (
        client.post(path, {"amount": 12}, format="json", HTTP_IDEMPOTENCY_KEY="reused-key-1").status_code
        == 201
    )

    response = client.post(path, {"amount": 13}, format="json", HTTP_IDEMPOTENCY_KEY="reused-key-1")

    count_response(response.status_code)
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert LedgerAccount.objects.get(kind="wallet", owner_id=user.pk).balance == 488
