"""The merchants part of export, erasure and account merges."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from merchants import personal_data
from merchants.models import Coupon, MerchantStaff, OfferRedemptionCount
from merchants.services import coupon_verify, offer_redeem
from tests.accounts.factories import UserFactory
from tests.merchants.factories import OfferFactory
from tests.rewards.factories import fund_wallet

pytestmark = pytest.mark.django_db


def test_export_lists_the_persons_coupons(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant, title="Coffee")
    coupon = offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon

    exported = personal_data.personal_data_export(user=citizen)

    json.dumps(exported)
    assert exported["coupons"] == [
        {
            "id": str(coupon.public_id),
            "code": coupon.display_code,
            "offer": "Coffee",
            "merchant": shop.merchant.name,
            "price_coins": offer.price_coins,
            "status": "issued",
            "issued_at": timezone.localtime(coupon.issued_at).isoformat(),
            "valid_until": timezone.localtime(coupon.valid_until).isoformat(),
            "verified_at": None,
            "expired_at": None,
            "refunded_at": None,
        }
    ]
    assert exported["merchant_staff"] is None
    assert exported["coupons"][0]["valid_until"].endswith("+08:00")


def test_export_of_a_clerk_shows_their_place(shop):
    exported = personal_data.personal_data_export(user=shop.clerk)
    assert exported["merchant_staff"]["role"] == "clerk"


def test_erasure_keeps_coupons_anonymous(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant)
    coupon = offer_redeem(
        user=citizen, offer_public_id=offer.public_id, idempotency_key="erase-me-001"
    ).coupon
    coupon_verify(staff=MerchantStaff.objects.get(user=shop.clerk), code=coupon.code)

    personal_data.personal_data_erase(user=citizen)
    personal_data.personal_data_erase(user=shop.clerk)

    coupon.refresh_from_db()
    assert (coupon.user, coupon.idempotency_key, coupon.verified_by) == (None, None, None)
    assert coupon.status == "verified"
    assert not OfferRedemptionCount.objects.filter(user=citizen).exists()
    assert not MerchantStaff.objects.filter(user=shop.clerk).exists()
    assert shop.owner_client.get("/api/v1/merchant/reports/offers").json()[0]["issued"] == 1


def test_merge_moves_coupons_and_adds_up_counts(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant, limit_per_person=3, price_coins=1)
    other = OfferFactory(merchant=shop.merchant, price_coins=1)
    target = UserFactory()
    fund_wallet(target, 10)
    mine = offer_redeem(user=citizen, offer_public_id=offer.public_id, idempotency_key="same-key-0001").coupon
    offer_redeem(user=citizen, offer_public_id=other.public_id)
    theirs = offer_redeem(
        user=target, offer_public_id=offer.public_id, idempotency_key="same-key-0001"
    ).coupon

    personal_data.accounts_merge(source_user=citizen, target_user=target)

    assert Coupon.objects.filter(user=target).count() == 3
    assert not Coupon.objects.filter(user=citizen).exists()
    counts = dict(OfferRedemptionCount.objects.filter(user=target).values_list("offer_id", "redeemed_count"))
    assert counts == {offer.pk: 2, other.pk: 1}
    assert not OfferRedemptionCount.objects.filter(user=citizen).exists()
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (theirs.idempotency_key, mine.idempotency_key) == ("same-key-0001", None)
    # The limit counts coupons of both accounts now: one more, then no more.
    assert offer_redeem(user=target, offer_public_id=offer.public_id).created
    with pytest.raises(Exception, match="redemption_limit_reached"):
        offer_redeem(user=target, offer_public_id=offer.public_id)


def test_merge_moves_a_staff_place_to_a_target_without_one(shop):
    target = UserFactory()
    personal_data.accounts_merge(source_user=shop.clerk, target_user=target)
    assert MerchantStaff.objects.get(user=target).merchant == shop.merchant


def test_merging_two_places_at_one_merchant_keeps_one_with_the_stronger_role(shop):
    from accounts.services import account_merge

    account_merge(source_user=shop.owner, target_user=shop.clerk)

    assert MerchantStaff.objects.get(user=shop.clerk).role == MerchantStaff.Role.OWNER
    assert not MerchantStaff.objects.filter(user=shop.owner).exists()
    assert shop.merchant.staff.filter(role=MerchantStaff.Role.OWNER).count() == 1


def test_staff_of_two_merchants_cannot_be_merged_and_nothing_moves(shop, citizen):
    from accounts.models import User
    from accounts.services import account_merge
    from core.api.errors import ApplicationError
    from tests.merchants.factories import MerchantFactory, StaffFactory

    other = StaffFactory(merchant=MerchantFactory(), role=MerchantStaff.Role.OWNER).user
    offer = OfferFactory(merchant=shop.merchant)
    fund_wallet(shop.clerk, 100)
    coupon = offer_redeem(user=shop.clerk, offer_public_id=offer.public_id).coupon

    with pytest.raises(ApplicationError) as refused:
        account_merge(source_user=shop.clerk, target_user=other)

    assert refused.value.error.code == "merge_staff_of_two_merchants"
    assert MerchantStaff.objects.get(user=shop.clerk).merchant == shop.merchant
    assert MerchantStaff.objects.get(user=other).merchant != shop.merchant
    coupon.refresh_from_db()
    assert coupon.user_id == shop.clerk.pk
    assert User.objects.get(pk=shop.clerk.pk).closed_at is None
