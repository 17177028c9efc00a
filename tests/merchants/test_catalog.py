"""The catalog citizens browse: live offers, filters, what I can afford, sorting, a cache that
never shows a stale stock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from merchants import catalog_cache, services
from tests.accounts.factories import DistrictFactory, UserFactory
from tests.merchants.factories import OfferFactory
from tests.rewards.factories import fund_wallet

pytestmark = pytest.mark.django_db

CATALOG = "/api/v1/catalog/offers"


def titles(response) -> list[str]:
    return [offer["title"] for offer in response.json()["results"]]


def test_only_live_offers_on_sale_are_listed(shop, citizen_client):
    now = timezone.now()
    OfferFactory(merchant=shop.merchant, title="live")
    OfferFactory(merchant=shop.merchant, title="coming", sale_starts_at=now + timedelta(days=1))
    OfferFactory(
        merchant=shop.merchant, title="over", sale_starts_at=now - timedelta(days=9), sale_ends_at=now
    )
    for status in ("draft", "pending_review", "paused", "ended"):
        OfferFactory(merchant=shop.merchant, title=status, status=status)

    assert sorted(titles(citizen_client.get(CATALOG))) == ["coming", "live"]


def test_an_offer_shows_its_stock_and_merchant(shop, citizen_client):
    offer = OfferFactory(merchant=shop.merchant, total_stock=10, stock_left=0)
    body = citizen_client.get(CATALOG).json()["results"][0]
    assert body["id"] == str(offer.public_id)
    assert (body["stock_left"], body["total_stock"], body["is_sold_out"]) == (0, 10, True)
    assert body["merchant"] == {
        "id": str(shop.merchant.public_id),
        "name": shop.merchant.name,
        "district": shop.merchant.district.code,
    }


def test_filter_by_category(shop, citizen_client):
    OfferFactory(merchant=shop.merchant, title="coffee", category="food_and_drink")
    OfferFactory(merchant=shop.merchant, title="bike", category="transport")
    assert titles(citizen_client.get(CATALOG, {"category": "transport"})) == ["bike"]
    assert citizen_client.get(CATALOG, {"category": "nonsense"}).status_code == 400


def test_filter_by_district_keeps_offers_valid_everywhere(shop, citizen_client):
    kecheng, qujiang = DistrictFactory(code="kecheng"), DistrictFactory(code="qujiang")
    OfferFactory(merchant=shop.merchant, title="everywhere")
    OfferFactory(merchant=shop.merchant, title="kecheng only").districts.set([kecheng])
    OfferFactory(merchant=shop.merchant, title="both").districts.set([kecheng, qujiang])
    OfferFactory(merchant=shop.merchant, title="qujiang only").districts.set([qujiang])

    assert sorted(titles(citizen_client.get(CATALOG, {"district": "kecheng"}))) == [
        "both",
        "everywhere",
        "kecheng only",
    ]


def test_what_i_can_afford_follows_my_wallet(shop, client_for):
    person = UserFactory()
    fund_wallet(person, 50)
    OfferFactory(merchant=shop.merchant, title="cheap", price_coins=50)
    OfferFactory(merchant=shop.merchant, title="dear", price_coins=51)
    client = client_for(person)

    response = client.get(CATALOG, {"affordable": "true"})

    assert titles(response) == ["cheap"]
    assert response.json()["wallet_balance"] == 50
    fund_wallet(person, 1)
    assert sorted(titles(client.get(CATALOG, {"affordable": "true"}))) == ["cheap", "dear"]


def test_sort_by_price_or_newest(shop, citizen_client):
    OfferFactory(merchant=shop.merchant, title="b", price_coins=20)
    OfferFactory(merchant=shop.merchant, title="c", price_coins=10)
    OfferFactory(merchant=shop.merchant, title="a", price_coins=30)

    assert titles(citizen_client.get(CATALOG, {"sort": "price"})) == ["c", "b", "a"]
    assert titles(citizen_client.get(CATALOG, {"sort": "-price"})) == ["a", "b", "c"]
    assert titles(citizen_client.get(CATALOG)) == ["a", "c", "b"]


def test_pages(shop, citizen_client):
    for index in range(5):
        OfferFactory(merchant=shop.merchant, title=f"o{index}", price_coins=index + 1)
    first = citizen_client.get(CATALOG, {"sort": "price", "page_size": 2}).json()
    last = citizen_client.get(CATALOG, {"sort": "price", "page_size": 2, "page": 3}).json()
    assert (first["count"], first["next_page"], [o["title"] for o in first["results"]]) == (
        5,
        2,
        ["o0", "o1"],
    )
    assert (last["next_page"], [o["title"] for o in last["results"]]) == (None, ["o4"])


def test_the_catalog_is_served_from_the_cache_with_the_stock_read_live(shop, citizen_client):
    OfferFactory(merchant=shop.merchant)
    citizen_client.get(CATALOG)
    with CaptureQueriesContext(connection) as queries:
        citizen_client.get(CATALOG)
    offer_reads = [query["sql"] for query in queries.captured_queries if "merchants_offer" in query["sql"]]
    # Only the page's stock: no join, no filter on status or sale window, no district list.
    assert len(offer_reads) == 1, offer_reads
    select, _, condition = offer_reads[0].partition(" FROM ")
    assert '"stock_left"' in select
    assert "title" not in select
    assert "JOIN" not in condition
    assert '"status"' not in condition
    assert "ORDER BY" not in condition


def test_a_redemption_keeps_the_cached_pages(
    shop, citizen, citizen_client, django_capture_on_commit_callbacks
):
    offer = OfferFactory(merchant=shop.merchant, total_stock=3, price_coins=1)
    citizen_client.get(CATALOG)
    version = catalog_cache.version()

    with django_capture_on_commit_callbacks(execute=True):
        services.offer_redeem(user=citizen, offer_public_id=offer.public_id)

    assert catalog_cache.version() == version
    assert citizen_client.get(CATALOG).json()["results"][0]["stock_left"] == 2


def test_the_cached_catalog_shows_the_new_stock_after_a_redemption(
    shop, citizen, citizen_client, django_capture_on_commit_callbacks
):
    offer = OfferFactory(merchant=shop.merchant, total_stock=2, price_coins=1, limit_per_person=2)
    assert citizen_client.get(CATALOG).json()["results"][0]["stock_left"] == 2

    with django_capture_on_commit_callbacks(execute=True):
        services.offer_redeem(user=citizen, offer_public_id=offer.public_id)
    assert citizen_client.get(CATALOG).json()["results"][0]["stock_left"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        services.offer_redeem(user=citizen, offer_public_id=offer.public_id)
    body = citizen_client.get(CATALOG).json()["results"][0]
    assert (body["stock_left"], body["is_sold_out"]) == (0, True)


def test_the_cached_catalog_follows_restocks_and_status_changes(
    shop, citizen_client, django_capture_on_commit_callbacks
):
    offer = OfferFactory(merchant=shop.merchant, total_stock=2)
    citizen_client.get(CATALOG)

    with django_capture_on_commit_callbacks(execute=True):
        services.offer_set_total_stock(offer=offer, total_stock=5)
    assert citizen_client.get(CATALOG).json()["results"][0]["stock_left"] == 5

    with django_capture_on_commit_callbacks(execute=True):
        services.offer_pause(offer=offer)
    assert citizen_client.get(CATALOG).json()["count"] == 0

    with django_capture_on_commit_callbacks(execute=True):
        services.offer_resume(offer=offer)
    assert citizen_client.get(CATALOG).json()["count"] == 1


def test_a_cached_offer_disappears_when_its_sale_ends(shop, citizen_client, monkeypatch):
    now = timezone.now()
    OfferFactory(merchant=shop.merchant, sale_ends_at=now + timedelta(hours=1))
    assert citizen_client.get(CATALOG).json()["count"] == 1

    # Nothing is committed when a sale window closes: the cached list filters itself by the clock.
    monkeypatch.setattr("merchants.selectors.timezone.now", lambda: now + timedelta(hours=2))
    assert citizen_client.get(CATALOG).json()["count"] == 0


def test_offer_detail(shop, citizen_client):
    district = DistrictFactory()
    offer = OfferFactory(merchant=shop.merchant)
    offer.districts.set([district])
    body = citizen_client.get(f"{CATALOG}/{offer.public_id}").json()
    assert (body["title"], body["districts"]) == (offer.title, [district.code])


def test_what_i_can_afford_without_a_wallet_yet_is_nothing_and_opens_no_wallet(shop, client_for):
    from rewards.models import LedgerAccount

    newcomer = UserFactory()
    OfferFactory(merchant=shop.merchant, price_coins=1)

    response = client_for(newcomer).get(CATALOG, {"affordable": "true"})

    assert (response.json()["count"], response.json()["wallet_balance"]) == (0, 0)
    assert not LedgerAccount.objects.filter(kind="wallet", owner_id=newcomer.pk).exists()


def test_offer_detail_of_an_offer_whose_sale_ended_is_not_available_as_the_list_has_it(shop, citizen_client):
    now = timezone.now()
    offer = OfferFactory(
        merchant=shop.merchant,
        sale_starts_at=now - timedelta(days=9),
        sale_ends_at=now - timedelta(seconds=1),
    )

    response = citizen_client.get(f"{CATALOG}/{offer.public_id}")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "offer_not_available"
    assert citizen_client.get(CATALOG).json()["count"] == 0


def test_offer_detail_of_an_offer_coming_soon_is_shown_as_the_list_has_it(shop, citizen_client):
    offer = OfferFactory(merchant=shop.merchant, sale_starts_at=timezone.now() + timedelta(days=1))

    response = citizen_client.get(f"{CATALOG}/{offer.public_id}")

    assert response.status_code == 200
    assert response.json()["id"] == str(offer.public_id)
