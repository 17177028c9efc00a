"""Redemption: coins for a coupon in one step, honouring stock, limits, the window and retries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from merchants import catalog_cache
from merchants.models import Coupon, Offer, OfferRedemptionCount
from merchants.services import CODE_ALPHABET, CODE_LENGTH, coupon_code_new, offer_update
from rewards.models import LedgerTransaction
from rewards.services import clearing_account_for_merchant, wallet_account_for_user
from tests.accounts.factories import UserFactory
from tests.conftest import session_token_for
from tests.merchants.factories import OfferFactory
from tests.rewards.factories import fund_wallet

pytestmark = pytest.mark.django_db


def redeem(client, offer, key=None, **headers):
    """A redemption as the app sends it: with a new Idempotency-Key unless one is given."""
    headers["HTTP_IDEMPOTENCY_KEY"] = key or uuid.uuid4().hex
    return client.post(f"/api/v1/catalog/offers/{offer.public_id}/redeem", **headers)


def balance(user) -> int:
    return wallet_account_for_user(user_id=user.pk).balance


def test_a_redemption_moves_coins_takes_stock_and_issues_a_coupon(shop, citizen, citizen_client):
    offer = OfferFactory(merchant=shop.merchant, price_coins=60, total_stock=5, coupon_valid_days=7)

    response = redeem(citizen_client, offer)

    assert response.status_code == 201
    body = response.json()
    coupon = Coupon.objects.get(public_id=body["id"])
    assert body["status"] == "issued"
    assert body["code"] == coupon.display_code
    assert body["offer"]["title"] == offer.title
    assert body["price_coins"] == 60
    assert coupon.valid_until - coupon.issued_at == timedelta(days=7)
    assert len(coupon.code) == CODE_LENGTH
    assert set(coupon.code) <= set(CODE_ALPHABET)
    offer.refresh_from_db()
    assert offer.stock_left == 4
    assert balance(citizen) == 940
    assert clearing_account_for_merchant(merchant_id=shop.merchant.pk).balance == 60
    debit = LedgerTransaction.objects.get(kind="redemption")
    assert debit.reference == f"coupon:{coupon.public_id}"


def test_coupon_codes_are_distinct_and_unguessable(shop, client_for):
    offer = OfferFactory(merchant=shop.merchant, price_coins=1, total_stock=30)
    codes = set()
    for _ in range(30):
        person = UserFactory()
        fund_wallet(person, 1)
        codes.add(redeem(client_for(person), offer).json()["code"])
    assert len(codes) == 30


def test_not_enough_coins_changes_nothing(shop, client_for):
    poor = UserFactory()
    fund_wallet(poor, 10)
    offer = OfferFactory(merchant=shop.merchant, price_coins=60, total_stock=5)

    response = redeem(client_for(poor), offer)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_coins"
    offer.refresh_from_db()
    assert offer.stock_left == 5
    assert balance(poor) == 10
    assert Coupon.objects.count() == 0
    assert OfferRedemptionCount.objects.count() == 0


def test_the_per_person_limit_is_enforced(shop, citizen, citizen_client):
    offer = OfferFactory(merchant=shop.merchant, price_coins=10, limit_per_person=2)

    assert redeem(citizen_client, offer).status_code == 201
    assert redeem(citizen_client, offer).status_code == 201
    third = redeem(citizen_client, offer)

    assert third.status_code == 409
    assert third.json()["error"]["code"] == "redemption_limit_reached"
    assert third.json()["error"]["fields"] == {"limit_per_person": 2}
    assert Coupon.objects.filter(user=citizen).count() == 2
    assert balance(citizen) == 980
    offer.refresh_from_db()
    assert offer.stock_left == 98


@pytest.mark.parametrize(
    ("starts", "ends", "code"),
    [
        (timedelta(hours=1), timedelta(days=2), "offer_sale_not_started"),
        (-timedelta(days=2), -timedelta(hours=1), "offer_sale_ended"),
    ],
)
def test_the_sale_window_is_enforced(shop, citizen, citizen_client, starts, ends, code):
    now = timezone.now()
    offer = OfferFactory(merchant=shop.merchant, sale_starts_at=now + starts, sale_ends_at=now + ends)

    response = redeem(citizen_client, offer)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == code
    assert balance(citizen) == 1000
    assert Coupon.objects.count() == 0


def test_a_sale_not_started_says_when_it_starts_in_local_time_as_the_offer_does(shop, citizen_client):
    starts = datetime(2030, 1, 1, 1, 30, tzinfo=UTC)
    offer = OfferFactory(
        merchant=shop.merchant, sale_starts_at=starts, sale_ends_at=starts + timedelta(days=2)
    )

    response = redeem(citizen_client, offer)
    shown = citizen_client.get(f"/api/v1/catalog/offers/{offer.public_id}")

    assert response.json()["error"]["fields"] == {"sale_starts_at": "2030-01-01T09:30:00+08:00"}
    assert shown.json()["sale_starts_at"] == "2030-01-01T09:30:00+08:00"


@pytest.mark.parametrize("status", ["draft", "pending_review", "paused", "ended"])
def test_only_live_offers_can_be_redeemed(shop, citizen, citizen_client, status):
    offer = OfferFactory(merchant=shop.merchant, status=status)

    response = redeem(citizen_client, offer)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "offer_not_available"
    assert balance(citizen) == 1000


def test_an_unknown_offer_is_not_available(citizen_client):
    response = citizen_client.post(
        "/api/v1/catalog/offers/00000000-0000-0000-0000-000000000000/redeem",
        HTTP_IDEMPOTENCY_KEY="unknown-offer-1",
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "offer_not_available"


def test_the_last_coupon_marks_the_offer_sold_out_and_later_requests_touch_no_row(
    shop, citizen, citizen_client, client_for, django_capture_on_commit_callbacks
):
    offer = OfferFactory(merchant=shop.merchant, price_coins=10, total_stock=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert redeem(citizen_client, offer).status_code == 201
    assert catalog_cache.is_sold_out(offer_public_id=offer.public_id)

    late = UserFactory()
    fund_wallet(late, 100)
    late_client = client_for(late)
    with CaptureQueriesContext(connection) as queries:
        response = redeem(late_client, offer)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "offer_sold_out"
    assert not any("merchants_offer" in query["sql"] for query in queries.captured_queries)
    assert not any("FOR UPDATE" in query["sql"] for query in queries.captured_queries)
    assert balance(late) == 100


def test_sold_out_without_the_cached_flag_is_read_without_a_transaction(shop, citizen, citizen_client):
    offer = OfferFactory(merchant=shop.merchant, total_stock=3, stock_left=0)
    cache.clear()

    with CaptureQueriesContext(connection) as queries:
        response = redeem(citizen_client, offer)

    assert response.json()["error"]["code"] == "offer_sold_out"
    assert not any(
        query["sql"].startswith(("UPDATE", "INSERT", "SAVEPOINT")) for query in queries.captured_queries
    )
    assert catalog_cache.is_sold_out(offer_public_id=offer.public_id)


def test_restocking_clears_the_sold_out_flag(
    shop, citizen, citizen_client, django_capture_on_commit_callbacks
):
    offer = OfferFactory(merchant=shop.merchant, total_stock=1, stock_left=0)
    assert redeem(citizen_client, offer).json()["error"]["code"] == "offer_sold_out"

    with django_capture_on_commit_callbacks(execute=True):
        response = shop.owner_client.patch(
            f"/api/v1/merchant/offers/{offer.public_id}", {"total_stock": 2}, format="json"
        )
    assert response.status_code == 200
    assert response.json()["stock_left"] == 1
    assert response.json()["status"] == "live"  # a stock change needs no review

    assert redeem(citizen_client, offer).status_code == 201


def test_a_retry_with_the_same_key_returns_the_same_coupon(shop, citizen, citizen_client):
    offer = OfferFactory(merchant=shop.merchant, price_coins=10, limit_per_person=5)

    first = redeem(citizen_client, offer, key="retry-key-0001")
    again = redeem(citizen_client, offer, key="retry-key-0001")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Coupon.objects.count() == 1
    assert balance(citizen) == 990
    assert LedgerTransaction.objects.filter(kind="redemption").count() == 1


def test_a_retry_after_the_last_coupon_still_returns_the_coupon(
    shop, citizen, citizen_client, django_capture_on_commit_callbacks
):
    offer = OfferFactory(merchant=shop.merchant, total_stock=1)
    with django_capture_on_commit_callbacks(execute=True):
        first = redeem(citizen_client, offer, key="last-one-0001")

    again = redeem(citizen_client, offer, key="last-one-0001")

    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


def test_the_same_key_for_another_offer_is_refused(shop, citizen, citizen_client):
    offer = OfferFactory(merchant=shop.merchant, price_coins=10)
    other = OfferFactory(merchant=shop.merchant, price_coins=10)
    redeem(citizen_client, offer, key="shared-key-0001")

    response = redeem(citizen_client, other, key="shared-key-0001")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Coupon.objects.count() == 1
    assert balance(citizen) == 990
    other.refresh_from_db()
    assert other.stock_left == other.total_stock


def test_keys_belong_to_their_person(shop, citizen_client, client_for):
    offer = OfferFactory(merchant=shop.merchant, price_coins=10)
    someone = UserFactory()
    fund_wallet(someone, 100)

    mine = redeem(citizen_client, offer, key="same-key-0001")
    theirs = redeem(client_for(someone), offer, key="same-key-0001")

    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine.json()["id"]


@pytest.mark.parametrize("key", ["short", "has space in it", "x" * 65, "bad/char-0001"])
def test_a_malformed_key_is_refused(shop, citizen_client, key):
    offer = OfferFactory(merchant=shop.merchant)
    response = redeem(citizen_client, offer, key=key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_invalid"
    assert Coupon.objects.count() == 0


@pytest.mark.parametrize("headers", [{}, {"HTTP_IDEMPOTENCY_KEY": ""}])
def test_a_redemption_without_a_key_is_refused_and_spends_nothing(shop, citizen, citizen_client, headers):
    offer = OfferFactory(merchant=shop.merchant, price_coins=60, total_stock=5)

    response = citizen_client.post(f"/api/v1/catalog/offers/{offer.public_id}/redeem", **headers)

    assert response.status_code == 428
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert "Idempotency-Key" in response.json()["error"]["message"]
    assert citizen_client.put(f"/api/v1/catalog/offers/{offer.public_id}/redeem").status_code == 405
    assert balance(citizen) == 1000
    assert Offer.objects.get(pk=offer.pk).stock_left == 5
    assert Coupon.objects.count() == 0


def test_a_redemption_without_a_key_is_refused_even_when_the_offer_is_flagged_sold_out(
    shop, citizen, citizen_client
):
    """The early sold-out answer (merchants.middleware) leaves it to the full path, which says 428."""
    offer = OfferFactory(merchant=shop.merchant, total_stock=1, stock_left=0)
    catalog_cache.mark_sold_out(offer_public_id=offer.public_id)

    response = citizen_client.post(f"/api/v1/catalog/offers/{offer.public_id}/redeem")

    assert response.status_code == 428
    assert response.json()["error"]["code"] == "idempotency_key_required"


def test_the_coupon_shows_what_was_bought_whatever_the_owner_changes_on_the_offer(
    shop, citizen, citizen_client
):
    offer = OfferFactory(merchant=shop.merchant, title="Free coffee", price_coins=10, refunds_on_expiry=True)
    coupon_id = redeem(citizen_client, offer).json()["id"]
    offer_update(
        offer=Offer.objects.get(pk=offer.pk),
        data={"title": "10% off coffee", "price_coins": 99, "refunds_on_expiry": False},
    )

    held = citizen_client.get(f"/api/v1/coupons/{coupon_id}").json()
    listed = citizen_client.get("/api/v1/coupons").json()["results"][0]
    in_the_books = shop.owner_client.get("/api/v1/merchant/coupons").json()["results"][0]

    for coupon in (held, listed):
        assert (coupon["offer"]["title"], coupon["price_coins"]) == ("Free coffee", 10)
        assert coupon["offer"]["id"] == str(offer.public_id)
        assert coupon["refunds_on_expiry"] is True
    assert in_the_books["offer_title"] == "Free coffee"
    assert Coupon.objects.get(public_id=coupon_id).title == "Free coffee"


def test_guests_can_redeem_with_their_coins(shop, client_for):
    from tests.accounts.factories import GuestFactory

    guest = GuestFactory()
    fund_wallet(guest, 100)
    offer = OfferFactory(merchant=shop.merchant, price_coins=10)

    assert redeem(client_for(guest), offer).status_code == 201


def test_sold_out_is_answered_before_sign_in_and_throttling(
    shop, citizen, citizen_client, django_capture_on_commit_callbacks
):
    offer = OfferFactory(merchant=shop.merchant, total_stock=1)
    with django_capture_on_commit_callbacks(execute=True):
        redeem(citizen_client, offer)
    someone = UserFactory()
    client = APIClient()
    client.credentials(HTTP_X_SESSION_TOKEN=session_token_for(someone))
    with CaptureQueriesContext(connection) as queries:
        response = redeem(client, offer, key="fresh-key-0001")

    assert response.json()["error"]["code"] == "offer_sold_out"
    assert not any("accounts_user" in query["sql"] for query in queries.captured_queries)
    assert cache.get(f"throttle_user_{someone.pk}") is None


def test_sold_out_with_an_unknown_session_still_asks_to_sign_in(shop, citizen, api_client):
    offer = OfferFactory(merchant=shop.merchant, total_stock=1, stock_left=0)
    catalog_cache.mark_sold_out(offer_public_id=offer.public_id)
    api_client.credentials(HTTP_X_SESSION_TOKEN="no-such-session-token")

    response = redeem(api_client, offer)

    assert response.status_code == 401
    assert redeem(APIClient(), offer).status_code == 401


def test_a_retry_at_the_per_person_limit_returns_the_coupon(shop, citizen, citizen_client):
    offer = OfferFactory(merchant=shop.merchant, price_coins=10, limit_per_person=1)
    first = redeem(citizen_client, offer, key="limit-key-0001")
    again = redeem(citizen_client, offer, key="limit-key-0001")
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    assert balance(citizen) == 990


def test_a_retry_after_the_offer_was_paused_returns_the_coupon(shop, citizen, citizen_client):
    offer = OfferFactory(merchant=shop.merchant, price_coins=10)
    first = redeem(citizen_client, offer, key="pause-key-0001")
    Offer.objects.filter(pk=offer.pk).update(status="paused")
    again = redeem(citizen_client, offer, key="pause-key-0001")
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])


# --- The sold-out answer before sign-in, and the session it reads ---------------------------


def _answer(response) -> tuple:
    """What a client gets, but for the request id that differs on every request."""
    headers = {name: value for name, value in response.items() if name != "X-Request-ID"}
    return response.status_code, headers, response.content


@pytest.mark.parametrize(
    ("accept_language", "message"),
    [("en", "Sorry, this offer is sold out."), ("zh-Hans", "抱歉，该商品已兑完。")],
)
def test_the_sold_out_answer_before_sign_in_is_the_full_paths_answer_byte_for_byte(
    shop, citizen, citizen_client, accept_language, message
):
    offer = OfferFactory(merchant=shop.merchant, total_stock=3, stock_left=0)
    cache.clear()
    # The full path (sign-in, throttling, the offer's row) answers sold out and sets the flag.
    full = redeem(citizen_client, offer, key="full-path-key-01", HTTP_ACCEPT_LANGUAGE=accept_language)
    assert catalog_cache.is_sold_out(offer_public_id=offer.public_id)

    with CaptureQueriesContext(connection) as queries:
        early = redeem(citizen_client, offer, key="early-key-0001", HTTP_ACCEPT_LANGUAGE=accept_language)

    assert not any("accounts_user" in query["sql"] for query in queries.captured_queries)
    assert _answer(early) == _answer(full)
    assert early.status_code == 409
    assert early.json() == {"error": {"code": "offer_sold_out", "message": message, "fields": {}}}
    assert early["Content-Type"] == "application/json"
    assert early["Content-Language"] == accept_language.lower()
    assert early["Allow"] == "POST, OPTIONS"
    assert "Accept-Language" in early["Vary"]
    assert early["X-Request-ID"]


def test_sold_out_before_sign_in_is_compact_json_whatever_the_accept_header(shop, citizen, citizen_client):
    # As DRF answered an error raised before its content negotiation: its first renderer, plain.
    offer = OfferFactory(merchant=shop.merchant, total_stock=1, stock_left=0)
    catalog_cache.mark_sold_out(offer_public_id=offer.public_id)
    plain = redeem(citizen_client, offer)

    for accept in ["application/json; indent=4", "text/html", "image/png"]:
        with CaptureQueriesContext(connection) as queries:
            response = redeem(citizen_client, offer, HTTP_ACCEPT=accept)

        assert _answer(response) == _answer(plain)
        assert response.content.startswith(b'{"error":{"code":"offer_sold_out"')
        assert not any("accounts_user" in query["sql"] for query in queries.captured_queries)


def test_a_failing_sold_out_check_leaves_the_redemption_to_the_full_path(
    shop, citizen, citizen_client, monkeypatch, caplog
):
    offer = OfferFactory(merchant=shop.merchant, price_coins=10)

    def unreachable(**kwargs):
        raise RuntimeError("forced failure for the test")

    monkeypatch.setattr("merchants.selectors.sold_out_before_sign_in", unreachable)
    response = redeem(citizen_client, offer)

    assert response.status_code == 201
    assert Coupon.objects.filter(offer=offer, user=citizen).count() == 1
    assert balance(citizen) == 990
    assert "sold-out check before sign-in failed" in caplog.text


def test_a_redemption_reads_the_session_from_redis_once(shop, citizen, citizen_client, monkeypatch):
    offer = OfferFactory(merchant=shop.merchant, price_coins=10)

    def read_again(*args, **kwargs):
        raise AssertionError("sign-in read the session a second time")

    monkeypatch.setattr("accounts.sessions.session_prefetch", read_again)
    assert redeem(citizen_client, offer).status_code == 201
    assert balance(citizen) == 990


def test_a_redemption_makes_three_redis_round_trips(
    shop, citizen, citizen_client, monkeypatch, django_capture_on_commit_callbacks
):
    """The flag, the session, the person and the agreements in force in one MGET; the rate limit's
    counter; the wallet's cached reading retired (`core.person_cache`, one script call).

    No read of the agreements of its own for the permission, no catalog version bumped."""
    import redis.client

    offer = OfferFactory(merchant=shop.merchant, price_coins=10, limit_per_person=2)
    assert redeem(citizen_client, offer).status_code == 201  # the agreements in force get cached
    round_trips = []
    send_command, send_pipeline = redis.client.Redis.execute_command, redis.client.Pipeline.execute

    def command(client, *args, **options):
        if not isinstance(client, redis.client.Pipeline):
            round_trips.append(str(args[0]))
        return send_command(client, *args, **options)

    def pipeline(client, *args, **options):
        round_trips.append("pipeline: " + ", ".join(str(queued[0][0]) for queued in client.command_stack))
        return send_pipeline(client, *args, **options)

    monkeypatch.setattr(redis.client.Redis, "execute_command", command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", pipeline)
    with django_capture_on_commit_callbacks(execute=True):
        assert redeem(citizen_client, offer).status_code == 201

    assert round_trips == ["MGET", "pipeline: INCRBY, EXPIRE", "EVALSHA"], round_trips
    assert balance(citizen) == 980


def test_the_session_read_by_the_sold_out_check_is_still_checked_at_sign_in(shop, citizen, client_for):
    offer = OfferFactory(merchant=shop.merchant, price_coins=10)
    client = client_for(citizen)
    citizen.set_password("a-new-password-2026")
    citizen.save()

    response = redeem(client, offer)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert balance(citizen) == 1000
    assert not Coupon.objects.filter(offer=offer).exists()


def test_the_redemption_answers_the_coupon_as_its_serializer_does(shop, citizen, citizen_client):
    from merchants.apis.serializers import CouponOutput

    offer = OfferFactory(merchant=shop.merchant, price_coins=10)
    body = redeem(citizen_client, offer).json()
    coupon = Coupon.objects.select_related("offer", "merchant").get(public_id=body["id"])

    assert body == CouponOutput(coupon).data
    assert citizen_client.get(f"/api/v1/coupons/{coupon.public_id}").json() == body


def test_coupon_codes_draw_every_letter_of_the_alphabet():
    letters = set("".join(coupon_code_new() for _ in range(300)))

    assert len(CODE_ALPHABET) == 2**5  # five random bits a letter
    assert letters == set(CODE_ALPHABET)


def test_only_a_post_to_the_redemption_route_is_answered_before_sign_in(shop, citizen, citizen_client):
    offer = OfferFactory(merchant=shop.merchant, total_stock=1, stock_left=0)
    catalog_cache.mark_sold_out(offer_public_id=offer.public_id)
    redeem_path = f"/api/v1/catalog/offers/{offer.public_id}/redeem"

    assert citizen_client.post(redeem_path, HTTP_IDEMPOTENCY_KEY="only-post-0001").status_code == 409
    assert citizen_client.get(redeem_path).status_code == 405  # the view's answer, not the shortcut's
    assert citizen_client.post(f"/api/v1/catalog/offers/{offer.public_id}").status_code == 405
    assert citizen_client.post(f"{redeem_path}/again").status_code == 404
    assert citizen_client.post(redeem_path.replace(str(offer.public_id), "not-a-uuid")).status_code == 404
