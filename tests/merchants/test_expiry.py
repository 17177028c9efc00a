"""The daily expiry of unused coupons, and refunds where the coupon was bought with that promise."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from merchants.models import Coupon
from merchants.services import coupons_expire, offer_redeem, offer_update
from merchants.tasks import expire_coupons
from operations.invariants import invariant_violations
from rewards.groups.challenges import sponsor_fund
from rewards.groups.models import ChallengeSponsor
from rewards.models import LedgerTransaction, LedgerTransactionKind
from rewards.services import clearing_account_for_merchant, coins_issue, wallet_account_for_user
from tests.accounts.factories import UserFactory
from tests.merchants.factories import OfferFactory
from tests.rewards.factories import fund_wallet

pytestmark = pytest.mark.django_db


def age(coupons, days_past_validity=1):
    Coupon.objects.filter(pk__in=[coupon.pk for coupon in coupons]).update(
        valid_until=timezone.now() - timedelta(days=days_past_validity)
    )


def test_unused_coupons_past_validity_expire_without_refund_by_default(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant, price_coins=10, limit_per_person=5)
    old = [offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon for _ in range(3)]
    fresh = offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon
    age(old)

    result = coupons_expire()

    assert (result.expired, result.refunded) == (3, 0)
    assert set(Coupon.objects.filter(status="expired").values_list("pk", flat=True)) == {c.pk for c in old}
    assert Coupon.objects.get(pk=fresh.pk).status == "issued"
    assert wallet_account_for_user(user_id=citizen.pk).balance == 960
    assert not LedgerTransaction.objects.filter(kind="coupon_refund").exists()


def test_used_coupons_never_expire(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant)
    coupon = offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon
    Coupon.objects.filter(pk=coupon.pk).update(status="verified", verified_at=timezone.now())
    age([coupon])
    assert coupons_expire().expired == 0
    assert Coupon.objects.get(pk=coupon.pk).status == "verified"


def test_refunds_go_through_the_ledger_when_the_offer_says_so(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant, price_coins=25, refunds_on_expiry=True, limit_per_person=2)
    coupons = [offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon for _ in range(2)]
    age(coupons)

    result = coupons_expire()

    assert (result.expired, result.refunded) == (2, 2)
    assert wallet_account_for_user(user_id=citizen.pk).balance == 1000
    assert clearing_account_for_merchant(merchant_id=shop.merchant.pk).balance == 0
    refunds = LedgerTransaction.objects.filter(kind="coupon_refund").order_by("pk")
    assert [refund.reference for refund in refunds] == [f"coupon:{coupon.public_id}" for coupon in coupons]
    assert all(coupon.refunded_at for coupon in Coupon.objects.all())


def test_running_the_job_twice_changes_nothing_more(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant, price_coins=25, refunds_on_expiry=True)
    coupon = offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon
    age([coupon])

    first = expire_coupons()
    second = expire_coupons()

    assert first == {"expired": 1, "refunded": 1, "refunds_waiting": 0, "reminded": 0}
    assert second == {"expired": 0, "refunded": 0, "refunds_waiting": 0, "reminded": 0}
    assert LedgerTransaction.objects.filter(kind="coupon_refund").count() == 1
    assert wallet_account_for_user(user_id=citizen.pk).balance == 1000


def test_an_interrupted_refund_is_finished_by_the_next_run(shop, citizen, monkeypatch):
    offer = OfferFactory(merchant=shop.merchant, price_coins=25, refunds_on_expiry=True)
    coupon = offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon
    age([coupon])

    def crash(**kwargs):
        raise RuntimeError("worker lost")

    # Lost after the coupons were claimed, before their coins moved.
    monkeypatch.setattr("rewards.services.coins_transfers", crash)
    with pytest.raises(RuntimeError):
        coupons_expire()
    monkeypatch.undo()
    assert Coupon.objects.get(pk=coupon.pk).status == "expired"
    assert Coupon.objects.get(pk=coupon.pk).refunded_at is None

    assert coupons_expire().refunded == 1
    assert wallet_account_for_user(user_id=citizen.pk).balance == 1000


def test_a_refund_its_merchant_cannot_pay_waits_without_stopping_the_others(shop, other_shop, citizen):
    # Shop's clearing account funded a challenge budget with the coins the coupon paid it.
    offer = OfferFactory(merchant=shop.merchant, price_coins=25, refunds_on_expiry=True)
    other_offer = OfferFactory(merchant=other_shop.merchant, price_coins=30, refunds_on_expiry=True)
    unpaid = offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon
    paid = offer_redeem(user=citizen, offer_public_id=other_offer.public_id).coupon
    sponsor = ChallengeSponsor.objects.create(name="Shop's budget", merchant_id=shop.merchant.pk)
    sponsor_fund(sponsor=sponsor, amount=25, idempotency_key="budget")
    age([unpaid, paid])

    first = expire_coupons()

    assert first == {"expired": 2, "refunded": 1, "refunds_waiting": 1, "reminded": 0}
    assert Coupon.objects.get(pk=paid.pk).refunded_at is not None
    assert Coupon.objects.get(pk=unpaid.pk).refunded_at is None
    assert wallet_account_for_user(user_id=citizen.pk).balance == 1000 - 25
    # The next night tries it again, and pays it once the merchant's account holds the coins.
    assert expire_coupons()["refunds_waiting"] == 1
    coins_issue(
        destination=clearing_account_for_merchant(merchant_id=shop.merchant.pk),
        amount=25,
        kind=LedgerTransactionKind.CORRECTION,
        idempotency_key="shop tops up",
        reference="test",
    )
    assert expire_coupons() == {"expired": 0, "refunded": 1, "refunds_waiting": 0, "reminded": 0}
    assert wallet_account_for_user(user_id=citizen.pk).balance == 1000
    assert invariant_violations() == []


@pytest.mark.parametrize(
    ("promised_at_purchase", "refunded", "balance"),
    [(True, 1, 1000), (False, 0, 975)],
    ids=["the owner drops the promise", "the owner adds a promise"],
)
def test_a_coupon_keeps_the_refund_promise_it_was_bought_with(
    shop, citizen, promised_at_purchase, refunded, balance
):
    offer = OfferFactory(merchant=shop.merchant, price_coins=25, refunds_on_expiry=promised_at_purchase)
    coupon = offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon
    offer_update(offer=offer, data={"refunds_on_expiry": not promised_at_purchase})
    age([coupon])

    result = coupons_expire()

    assert (result.expired, result.refunded) == (1, refunded)
    assert wallet_account_for_user(user_id=citizen.pk).balance == balance
    assert LedgerTransaction.objects.filter(kind="coupon_refund").count() == refunded
    assert Coupon.objects.get(pk=coupon.pk).refunds_on_expiry is promised_at_purchase


def test_a_merchant_that_cannot_pay_all_its_refunds_of_a_night_pays_none_and_they_all_wait(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant, price_coins=25, refunds_on_expiry=True, limit_per_person=2)
    coupons = [offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon for _ in range(2)]
    sponsor = ChallengeSponsor.objects.create(name="Shop's budget", merchant_id=shop.merchant.pk)
    sponsor_fund(sponsor=sponsor, amount=10, idempotency_key="budget")
    age(coupons)

    result = coupons_expire()

    assert (result.expired, result.refunded, result.refunds_waiting) == (2, 0, 2)
    assert Coupon.objects.filter(refunded_at__isnull=False).count() == 0
    assert clearing_account_for_merchant(merchant_id=shop.merchant.pk).balance == 40
    assert wallet_account_for_user(user_id=citizen.pk).balance == 950
    assert not LedgerTransaction.objects.filter(kind="coupon_refund").exists()


def _queries_to_refund(shop, count: int) -> int:
    offer = OfferFactory(merchant=shop.merchant, price_coins=5, refunds_on_expiry=True)
    coupons = []
    for _person in range(count):
        person = UserFactory()
        fund_wallet(person, 10)
        coupons.append(offer_redeem(user=person, offer_public_id=offer.public_id).coupon)
    age(coupons)
    with CaptureQueriesContext(connection) as queries:
        assert coupons_expire().refunded == count
    return len(queries)


def test_refunding_expired_coupons_takes_as_many_statements_for_twenty_as_for_two(shop):
    assert _queries_to_refund(shop, 20) == _queries_to_refund(shop, 2)


def test_refunds_work_in_batches(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant, price_coins=1, refunds_on_expiry=True, limit_per_person=10)
    coupons = [offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon for _ in range(7)]
    age(coupons)

    result = coupons_expire(batch_size=3)

    assert (result.expired, result.refunded) == (7, 7)
    assert wallet_account_for_user(user_id=citizen.pk).balance == 1000
    assert LedgerTransaction.objects.filter(kind="coupon_refund").count() == 7
    assert invariant_violations() == []


def test_expiry_works_in_batches(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant, price_coins=1, limit_per_person=10)
    coupons = [offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon for _ in range(7)]
    age(coupons)
    assert coupons_expire(batch_size=3).expired == 7


def test_coupons_of_erased_people_expire_without_a_refund(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant, price_coins=25, refunds_on_expiry=True)
    coupon = offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon
    Coupon.objects.filter(pk=coupon.pk).update(user=None)
    age([coupon])

    result = coupons_expire()

    assert (result.expired, result.refunded) == (1, 0)
    assert Coupon.objects.get(pk=coupon.pk).status == "expired"
    assert not LedgerTransaction.objects.filter(kind="coupon_refund").exists()


def test_the_job_is_scheduled_daily():
    from django.conf import settings

    job = settings.CELERY_BEAT_SCHEDULE["merchants.expire_coupons"]
    assert job["task"] == "merchants.tasks.expire_coupons"
