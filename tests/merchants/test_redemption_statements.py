"""A redemption's round trips to PostgreSQL: few, and the hot rows only in the last statement.

A hot offer sells as fast as its rows can be locked, changed and committed one redemption after
another, so the number of statements and their order is part of the contract: the offer read (no
transaction), the coupon with the person's count, then the ledger transfer (wallet and the
merchant's clearing account) that takes the offer's stock in the same statement.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from merchants.models import Coupon, OfferRedemptionCount
from merchants.services import offer_redeem
from rewards.models import LedgerTransaction
from rewards.services import clearing_account_for_merchant, wallet_account_for_user
from tests.accounts.factories import UserFactory
from tests.merchants.factories import OfferFactory
from tests.rewards.factories import fund_wallet

pytestmark = pytest.mark.django_db


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [
        " ".join(query["sql"].split())
        for query in queries.captured_queries
        if not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT"))
    ]


def test_a_redemption_is_three_statements_with_the_hot_rows_in_the_last(shop):
    offer = OfferFactory(merchant=shop.merchant, price_coins=10, total_stock=10, limit_per_person=5)
    first, second = UserFactory(), UserFactory()
    fund_wallet(first, 100)
    fund_wallet(second, 100)
    offer_redeem(user=first, offer_public_id=offer.public_id)  # opens the merchant's clearing account

    with CaptureQueriesContext(connection) as queries:
        redemption = offer_redeem(
            user=second, offer_public_id=offer.public_id, idempotency_key="statements-1"
        )

    statements = _statements(queries)
    assert len(statements) == 3, statements
    assert statements[0].startswith("SELECT offer.id")
    assert "INSERT INTO merchants_coupon" in statements[1]
    assert "merchants_offerredemptioncount" in statements[1]
    assert "rewards_ledgeraccount" in statements[2]
    assert "FOR UPDATE" in statements[2]
    assert "UPDATE merchants_offer SET stock_left = stock_left - 1" in statements[2]
    assert not any("FOR UPDATE" in statement for statement in statements[:2])

    coupon = Coupon.objects.get(public_id=redemption.coupon.public_id)
    assert coupon.pk == redemption.coupon.pk
    assert (coupon.idempotency_key, coupon.price_coins, coupon.user_id) == ("statements-1", 10, second.pk)
    assert OfferRedemptionCount.objects.get(offer=offer, user=second).redeemed_count == 1
    assert LedgerTransaction.objects.filter(reference=f"coupon:{coupon.public_id}").count() == 1
    assert wallet_account_for_user(user_id=second.pk).balance == 90
    assert clearing_account_for_merchant(merchant_id=shop.merchant.pk).balance == 20
    offer.refresh_from_db()
    assert offer.stock_left == 8


def test_the_returned_coupon_reads_like_a_stored_one(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant, price_coins=10, total_stock=10, coupon_valid_days=3)

    coupon = offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon

    stored = Coupon.objects.select_related("offer", "merchant").get(pk=coupon.pk)
    assert coupon.code == stored.code
    assert coupon.valid_until == stored.valid_until
    assert coupon.offer.title == stored.offer.title
    assert coupon.offer.description == stored.offer.description  # loaded on demand
    assert coupon.merchant.name == stored.merchant.name
    assert coupon.current_status == Coupon.Status.ISSUED
    assert not coupon._state.adding
