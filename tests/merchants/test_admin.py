"""Operators in the Django admin: bulk reviews through the services, coupons read-only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from merchants.models import Merchant, Offer
from merchants.services import offer_redeem
from tests.accounts.factories import UserFactory
from tests.merchants.factories import MerchantFactory, OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    operator = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(operator)
    client.operator = operator
    return client


def test_bulk_approve_merchants(operator_client):
    pending = MerchantFactory.create_batch(2, status=Merchant.Status.PENDING)
    already = MerchantFactory(status=Merchant.Status.REJECTED)

    response = operator_client.post(
        reverse("admin:merchants_merchant_changelist"),
        {"action": "approve", "_selected_action": [m.pk for m in [*pending, already]]},
        follow=True,
    )

    assert response.status_code == 200
    assert set(Merchant.objects.filter(status="approved").values_list("pk", flat=True)) == {
        m.pk for m in pending
    }
    assert Merchant.objects.get(pk=already.pk).status == "rejected"
    assert Merchant.objects.get(pk=pending[0].pk).reviewed_by == operator_client.operator
    assert "already reviewed" in response.content.decode()


def test_bulk_reject_merchants(operator_client):
    pending = MerchantFactory(status=Merchant.Status.PENDING)
    operator_client.post(
        reverse("admin:merchants_merchant_changelist"), {"action": "reject", "_selected_action": [pending.pk]}
    )
    assert Merchant.objects.get(pk=pending.pk).status == "rejected"


def test_bulk_approve_and_reject_offers(operator_client):
    waiting = OfferFactory.create_batch(2, status="pending_review", is_reviewed=False)
    other = OfferFactory(status="pending_review", is_reviewed=False)
    changelist = reverse("admin:merchants_offer_changelist")

    operator_client.post(changelist, {"action": "approve", "_selected_action": [o.pk for o in waiting]})
    operator_client.post(changelist, {"action": "reject", "_selected_action": [other.pk]})

    assert set(Offer.objects.filter(status="live").values_list("pk", flat=True)) == {o.pk for o in waiting}
    assert Offer.objects.get(pk=other.pk).status == "draft"


def test_admin_pages_render(operator_client, citizen):
    offer = OfferFactory()
    coupon = offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon
    for name, args in [
        ("admin:merchants_merchant_changelist", []),
        ("admin:merchants_merchant_change", [offer.merchant.pk]),
        ("admin:merchants_offer_changelist", []),
        ("admin:merchants_offer_change", [offer.pk]),
        ("admin:merchants_coupon_changelist", []),
        ("admin:merchants_coupon_change", [coupon.pk]),
        ("admin:merchants_merchantstaff_changelist", []),
    ]:
        assert operator_client.get(reverse(name, args=args)).status_code == 200, name
    assert (
        coupon.code
        in operator_client.get(
            reverse("admin:merchants_coupon_changelist") + f"?q={coupon.code}"
        ).content.decode()
    )


def test_coupons_are_read_only(operator_client, citizen):
    offer = OfferFactory()
    coupon = offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon
    page = operator_client.get(reverse("admin:merchants_coupon_change", args=[coupon.pk])).content.decode()
    assert 'name="_save"' not in page
    assert operator_client.get(reverse("admin:merchants_coupon_add")).status_code == 403
    assert (
        operator_client.post(
            reverse("admin:merchants_coupon_delete", args=[coupon.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
