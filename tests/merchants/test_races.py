"""Real concurrency against PostgreSQL: threads, each with its own connection, racing for coupons."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from core.api.errors import ApplicationError
from merchants import catalog_cache
from merchants.console import ratelimit
from merchants.models import Coupon, MerchantStaff, Offer
from merchants.services import coupon_verify, offer_redeem, offer_set_total_stock
from rewards.models import LedgerAccount, LedgerTransaction
from rewards.services import clearing_account_for_merchant, coins_issue, wallet_account_for_user
from tests.accounts.factories import UserFactory
from tests.merchants.conftest import make_shop
from tests.merchants.factories import MerchantFactory, OfferFactory, StaffFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

# PostgreSQL here allows 100 connections, shared with other suites: 24 at once is plenty of contention.
THREADS = 24


def race(tasks: list[Callable[[], str]]) -> Counter:
    """Runs the tasks on THREADS threads that all start at the same moment; counts the outcomes."""
    barrier = threading.Barrier(min(THREADS, len(tasks)), timeout=30)
    started = threading.local()

    def run(task: Callable[[], str]) -> str:
        try:
            if not getattr(started, "value", False):
                started.value = True
                barrier.wait()
            try:
                return task()
            except ApplicationError as error:
                return error.error.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return Counter(pool.map(run, tasks))


def fund(user, amount: int) -> None:
    coins_issue(
        destination=wallet_account_for_user(user_id=user.pk),
        amount=amount,
        kind="issuance",
        idempotency_key=f"race-funding:{user.pk}",
        reference="race",
    )


def test_200_people_racing_for_the_last_100_coupons_get_exactly_100():
    merchant = MerchantFactory()
    offer = OfferFactory(merchant=merchant, price_coins=7, total_stock=500, stock_left=100)
    people = UserFactory.create_batch(200)
    for person in people:
        fund(person, 20)

    def attempt(person) -> Callable[[], str]:
        return lambda: "coupon" if offer_redeem(user=person, offer_public_id=offer.public_id).created else "?"

    outcomes = race([attempt(person) for person in people])

    assert outcomes == Counter({"coupon": 100, "offer_sold_out": 100})
    offer.refresh_from_db()
    assert offer.stock_left == 0
    assert Coupon.objects.filter(offer=offer).count() == 100
    assert Coupon.objects.filter(offer=offer).values("user").distinct().count() == 100
    assert LedgerTransaction.objects.filter(kind="redemption").count() == 100
    assert clearing_account_for_merchant(merchant_id=merchant.pk).balance == 700
    wallets = LedgerAccount.objects.filter(kind="wallet", owner_id__in=[person.pk for person in people])
    assert sorted(Counter(wallets.values_list("balance", flat=True)).items()) == [(13, 100), (20, 100)]


def test_a_person_racing_themselves_cannot_pass_the_per_person_limit():
    offer = OfferFactory(price_coins=5, total_stock=100, limit_per_person=3)
    person = UserFactory()
    fund(person, 1000)

    outcomes = race(
        [lambda: "coupon" if offer_redeem(user=person, offer_public_id=offer.public_id).created else "?"] * 30
    )

    assert outcomes == Counter({"coupon": 3, "redemption_limit_reached": 27})
    assert Coupon.objects.filter(user=person).count() == 3
    assert LedgerTransaction.objects.filter(kind="redemption").count() == 3
    assert wallet_account_for_user(user_id=person.pk).balance == 985
    assert Offer.objects.get(pk=offer.pk).stock_left == 97


def test_the_same_idempotency_key_sent_many_times_at_once_makes_one_coupon():
    offer = OfferFactory(price_coins=5, total_stock=100, limit_per_person=10)
    person = UserFactory()
    fund(person, 1000)

    def attempt() -> str:
        return str(
            offer_redeem(
                user=person, offer_public_id=offer.public_id, idempotency_key="tap-tap-tap-1"
            ).coupon.public_id
        )

    outcomes = race([attempt] * 20)

    assert len(outcomes) == 1
    assert sum(outcomes.values()) == 20
    assert Coupon.objects.filter(user=person).count() == 1
    assert wallet_account_for_user(user_id=person.pk).balance == 995


def test_two_clerks_scanning_the_same_coupon_at_once_one_succeeds_one_hears_already_used():
    merchant = MerchantFactory()
    clerks = [StaffFactory(merchant=merchant, role=MerchantStaff.Role.CLERK) for _ in range(2)]
    offer = OfferFactory(merchant=merchant, price_coins=5, total_stock=100, limit_per_person=20)
    person = UserFactory()
    fund(person, 1000)
    coupons = [offer_redeem(user=person, offer_public_id=offer.public_id).coupon for _ in range(12)]

    for coupon in coupons:
        outcomes = race(
            [
                lambda clerk=clerk, coupon=coupon: coupon_verify(staff=clerk, code=coupon.code).status
                for clerk in clerks
            ]
        )
        assert outcomes == Counter({"verified": 1, "coupon_already_used": 1})

    assert Coupon.objects.filter(status="verified").count() == 12


def test_two_owners_removing_each_other_at_once_leave_one_owner():
    from merchants.services import staff_remove

    merchant = MerchantFactory()
    first, second = (StaffFactory(merchant=merchant, role=MerchantStaff.Role.OWNER) for _ in range(2))

    def remove(member) -> Callable[[], str]:
        def run() -> str:
            staff_remove(staff=MerchantStaff.objects.get(pk=member.pk))
            return "removed"

        return run

    outcomes = race([remove(first), remove(second)])

    assert outcomes == Counter({"removed": 1, "last_owner": 1})
    assert MerchantStaff.objects.filter(merchant=merchant, role="owner").count() == 1


def test_wrong_passwords_sent_at_the_same_moment_are_checked_at_most_five_times():
    owner = StaffFactory().user

    def attempt() -> int:
        return (
            Client().post("/console/sign-in/", {"username": owner.username, "password": "wrong"}).status_code
        )

    outcomes = race([attempt] * 15)

    assert outcomes == Counter({400: ratelimit.SIGN_IN_PER_USERNAME.attempts, 429: 10})


def test_typed_codes_sent_at_the_same_moment_get_sixty_tries_a_minute(client_for):
    shop = make_shop(client_for)

    def attempt(number: int) -> int:
        return (
            client_for(shop.clerk)
            .post("/api/v1/merchant/verifications", {"code": f"AAAA{number:08d}"})
            .status_code
        )

    outcomes = race([lambda number=number: attempt(number) for number in range(120)])

    assert outcomes[429] == 120 - ratelimit.VERIFY_PER_USER.attempts
    assert Coupon.objects.filter(status="verified").count() == 0


def test_a_sold_out_answer_read_before_a_restock_commits_does_not_leave_the_offer_flagged(
    monkeypatch, client_for
):
    offer = OfferFactory(price_coins=5, total_stock=1, stock_left=0)
    person = UserFactory()
    fund(person, 100)
    read_no_stock, restocked = threading.Event(), threading.Event()
    mark_sold_out = catalog_cache.mark_sold_out

    def mark_after_the_restock(*, offer_public_id) -> None:
        read_no_stock.set()
        assert restocked.wait(timeout=30)
        mark_sold_out(offer_public_id=offer_public_id)

    monkeypatch.setattr(catalog_cache, "mark_sold_out", mark_after_the_restock)

    def redeem_before_the_restock() -> str:
        try:
            offer_redeem(user=person, offer_public_id=offer.public_id)
        except ApplicationError as error:
            return error.error.code
        finally:
            connection.close()
        return "coupon"

    with ThreadPoolExecutor(max_workers=1) as pool:
        refused = pool.submit(redeem_before_the_restock)
        assert read_no_stock.wait(timeout=30)
        offer_set_total_stock(offer=offer, total_stock=3)
        restocked.set()
        assert refused.result(timeout=30) == "offer_sold_out"

    monkeypatch.setattr(catalog_cache, "mark_sold_out", mark_sold_out)
    response = client_for(person).post(
        f"/api/v1/catalog/offers/{offer.public_id}/redeem", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
    )
    assert not catalog_cache.is_sold_out(offer_public_id=offer.public_id)
    assert response.status_code == 201
    assert Offer.objects.get(pk=offer.pk).stock_left == 1
