"""What the person sees: balance, pending carbon, next expiries, a history traceable to causes."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from rewards.models import LedgerEntry
from rewards.services import (
    clearing_account_for_merchant,
    coins_transfer,
    settlement_run,
    wallet_account_for_user,
)
from tests.accounts.factories import UserFactory
from tests.rewards.factories import carbon_credit, fund_wallet

pytestmark = pytest.mark.django_db(transaction=True)


def _spend(person, coins: int, coupon: str) -> None:
    """Coins of the person's paid for a coupon: to a merchant's clearing account."""
    coins_transfer(
        source=wallet_account_for_user(user_id=person.pk),
        destination=clearing_account_for_merchant(merchant_id=9),
        amount=coins,
        kind="redemption",
        idempotency_key=f"{coupon}-coupon",
        reference=f"coupon:{coupon}",
    )


def test_the_wallet_shows_balance_pending_carbon_and_next_expiries(person, person_client):
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    carbon_credit(person, yesterday, 23_500)
    settlement_run(day=yesterday)
    carbon_credit(person, timezone.localdate(), 4_000)

    body = person_client.get("/api/v1/wallet").json()

    assert body["balance"] == 2
    assert body["pending_carbon_mg"] == 3_500 + 4_000
    assert body["carbon_mg_per_coin"] == 10_000
    assert body["next_expiries"] == [
        {"expires_on": (yesterday + datetime.timedelta(days=365)).isoformat(), "coins": 2}
    ]
    assert body["has_expiry_reminder"] is False


def test_a_new_person_has_an_empty_wallet(person_client):
    body = person_client.get("/api/v1/wallet").json()

    assert (body["balance"], body["pending_carbon_mg"], body["next_expiries"]) == (0, 0, [])


def test_the_history_pages_by_cursor_and_names_each_cause(person, person_client):
    day = timezone.localdate() - datetime.timedelta(days=2)
    carbon_credit(person, day, 30_000)
    settlement_run(day=day)
    for number in range(3):
        _spend(person, 1, f"c{number}")

    first = person_client.get("/api/v1/wallet/history?page_size=2").json()
    second = person_client.get(first["next"]).json()

    entries = first["results"] + second["results"]
    assert [entry["amount"] for entry in entries] == [-1, -1, -1, 3]
    assert entries[0]["cause"] == {"type": "redemption", "reference": "coupon:c2", "coupon_id": "c2"}
    assert entries[3]["cause"] == {
        "type": "settlement",
        "reference": f"settlement:{day.isoformat()}",
        "settlement_day": day.isoformat(),
        "carbon_mg": 30_000,
        "carbon_days": [day.isoformat()],
    }
    assert second["next"] is None
    detail = person_client.get(f"/api/v1/wallet/history/{entries[3]['id']}").json()
    assert detail["activity_records"] == []  # carbon credited directly here; capture links real records


def test_someone_elses_history_entry_is_not_found(person, client_for):
    fund_wallet(person, 3)
    entry_id = LedgerEntry.objects.filter(account__owner_id=person.pk).values_list("id", flat=True).get()

    response = client_for(UserFactory()).get(f"/api/v1/wallet/history/{entry_id}")

    assert response.status_code == 404


def test_the_wallet_needs_a_session(api_client):
    assert api_client.get("/api/v1/wallet").status_code == 401


def test_an_entry_id_beyond_any_database_id_is_simply_not_found(person_client):
    assert person_client.get(f"/api/v1/wallet/history/{2**64}").status_code == 404


@pytest.mark.parametrize("page_size", ["ten", "2.5", ""])
def test_a_history_page_size_that_is_not_a_number_is_refused(person_client, page_size):
    response = person_client.get("/api/v1/wallet/history", {"page_size": page_size})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert list(error["fields"]) == ["page_size"]


# --- Cached per person (core.person_cache): a repeat read is served from Redis, every change seen ---


@pytest.mark.parametrize("path", ["/api/v1/wallet", "/api/v1/wallet/history"])
def test_a_repeat_wallet_read_is_served_without_the_database(
    person, person_client, django_assert_num_queries, path
):
    fund_wallet(person, 5)
    first = person_client.get(path).json()

    with django_assert_num_queries(0):
        again = person_client.get(path).json()

    assert again == first


def test_the_cached_wallet_shows_every_change_to_the_ledger_and_the_carbon_owed(person, person_client):
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    fund_wallet(person, 5)
    assert person_client.get("/api/v1/wallet").json()["balance"] == 5

    _spend(person, 2, "cached-wallet")
    assert person_client.get("/api/v1/wallet").json()["balance"] == 3

    carbon_credit(person, yesterday, 20_000)
    assert person_client.get("/api/v1/wallet").json()["pending_carbon_mg"] == 20_000

    settlement_run(day=yesterday)  # set-based: everyone's cached wallet is retired
    body = person_client.get("/api/v1/wallet").json()
    assert (body["balance"], body["pending_carbon_mg"]) == (5, 0)


def test_a_new_coin_rate_is_shown_by_every_cached_wallet(person, person_client):
    from rewards.models import CoinRate

    carbon_credit(person, timezone.localdate(), 40_000)
    assert person_client.get("/api/v1/wallet").json()["pending_coins_estimate"] == 4

    CoinRate.objects.create(valid_from=timezone.localdate(), carbon_mg_per_coin=5_000)

    body = person_client.get("/api/v1/wallet").json()
    assert (body["carbon_mg_per_coin"], body["pending_coins_estimate"]) == (5_000, 8)


def test_one_person_s_change_leaves_another_s_cached_wallet_cached(
    person, person_client, client_for, django_assert_num_queries
):
    other = UserFactory()
    other_client = client_for(other)
    other_client.get("/api/v1/wallet")

    fund_wallet(person, 1)

    with django_assert_num_queries(0):
        other_client.get("/api/v1/wallet")


def test_the_cached_history_s_first_page_shows_every_change(person, person_client):
    fund_wallet(person, 5)
    assert [entry["amount"] for entry in person_client.get("/api/v1/wallet/history").json()["results"]] == [5]

    _spend(person, 2, "cached-history")
    after = person_client.get("/api/v1/wallet/history").json()["results"]
    assert [entry["amount"] for entry in after] == [-2, 5]
    # Each language its own: the kinds are named in the answer.
    in_chinese = person_client.get("/api/v1/wallet/history", HTTP_ACCEPT_LANGUAGE="zh-Hans").json()
    assert in_chinese["results"][0]["kind_display"] != after[0]["kind_display"]


def test_a_cached_first_page_links_the_next_on_the_host_it_was_asked_on(person, person_client):
    for _entry in range(21):  # one more than a page
        fund_wallet(person, 1)
    person_client.get("/api/v1/wallet/history", HTTP_HOST="localhost")  # cached here

    cached = person_client.get("/api/v1/wallet/history", HTTP_HOST="127.0.0.1").json()

    assert (len(cached["results"]), cached["previous"]) == (20, None)
    assert cached["next"].startswith("http://127.0.0.1/api/v1/wallet/history?cursor=")
    assert len(person_client.get(cached["next"]).json()["results"]) == 1
