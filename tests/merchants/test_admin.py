"""Operators in the Django admin: bulk reviews through the services, coupons read-only."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from merchants.models import Merchant, MerchantStaff, Offer
from merchants.services import offer_redeem, offer_update
from tests.accounts.factories import UserFactory
from tests.merchants.factories import MerchantFactory, OfferFactory, StaffFactory

pytestmark = pytest.mark.django_db


def action_form_fields(page: str) -> dict[str, str]:
    """The hidden fields a browser posts with an action of the changelist it was shown."""
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))


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
    seen = action_form_fields(operator_client.get(changelist).content.decode())

    operator_client.post(
        changelist, {**seen, "action": "approve", "_selected_action": [o.pk for o in waiting]}
    )
    operator_client.post(changelist, {**seen, "action": "reject", "_selected_action": [other.pk]})

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


def test_approving_an_offer_the_owner_changed_since_the_page_was_loaded_is_refused(operator_client):
    offer = OfferFactory(status="pending_review", is_reviewed=False, price_coins=50)
    changelist = reverse("admin:merchants_offer_changelist")
    seen = action_form_fields(operator_client.get(changelist).content.decode())

    offer_update(offer=offer, data={"price_coins": 500})
    response = operator_client.post(
        changelist, {**seen, "action": "approve", "_selected_action": [offer.pk]}, follow=True
    )

    offer.refresh_from_db()
    assert (offer.status, offer.is_reviewed, offer.reviewed_by) == ("pending_review", False, None)
    assert offer.price_coins == 500
    assert "changed after the page was loaded" in response.content.decode()


def test_approving_an_offer_unchanged_since_the_page_was_loaded_puts_it_live(operator_client):
    offer = OfferFactory(status="pending_review", is_reviewed=False)
    changelist = reverse("admin:merchants_offer_changelist")
    seen = action_form_fields(operator_client.get(changelist).content.decode())

    operator_client.post(changelist, {**seen, "action": "approve", "_selected_action": [offer.pk]})

    offer.refresh_from_db()
    assert (offer.status, offer.reviewed_by) == ("live", operator_client.operator)


def test_approving_from_a_page_that_carried_no_load_time_approves_nothing(operator_client):
    offer = OfferFactory(status="pending_review", is_reviewed=False)

    response = operator_client.post(
        reverse("admin:merchants_offer_changelist"),
        {"action": "approve", "_selected_action": [offer.pk]},
        follow=True,
    )

    offer.refresh_from_db()
    assert offer.status == "pending_review"
    assert "The page was out of date: nothing was approved." in response.content.decode()


def merchant_change_form(merchant: Merchant, staff_rows: list[dict[str, object]]) -> dict[str, object]:
    """What the merchant's change form posts: its fields and its staff inline's rows."""
    data: dict[str, object] = {
        "name": merchant.name,
        "category": merchant.category,
        "district": merchant.district_id,
        "licence_number": merchant.licence_number,
        "contact_name": merchant.contact_name,
        "contact_phone": merchant.contact_phone,
        "address": merchant.address,
        "review_note": merchant.review_note,
        "staff-TOTAL_FORMS": len(staff_rows),
        "staff-INITIAL_FORMS": len(staff_rows),
        "staff-MIN_NUM_FORMS": 0,
        "staff-MAX_NUM_FORMS": 1000,
        "_save": "Save",
    }
    for index, row in enumerate(staff_rows):
        data |= {f"staff-{index}-{name}": value for name, value in row.items()}
    return data


def test_the_merchant_form_cannot_remove_or_demote_the_last_owner(operator_client):
    owner = StaffFactory(role=MerchantStaff.Role.OWNER)
    merchant = owner.merchant
    change = reverse("admin:merchants_merchant_change", args=[merchant.pk])
    row = {"id": owner.pk, "merchant": merchant.pk, "user": owner.user_id, "role": "owner"}

    operator_client.post(change, merchant_change_form(merchant, [row | {"DELETE": "on"}]))
    operator_client.post(change, merchant_change_form(merchant, [row | {"role": "clerk"}]))

    assert list(MerchantStaff.objects.filter(merchant=merchant).values_list("pk", "role")) == [
        (owner.pk, "owner")
    ]


def test_the_staff_admin_cannot_remove_or_demote_the_last_owner(operator_client):
    owner = StaffFactory(role=MerchantStaff.Role.OWNER)
    staff_admin = reverse("admin:merchants_merchantstaff_change", args=[owner.pk])

    operator_client.post(
        staff_admin, {"user": owner.user_id, "merchant": owner.merchant_id, "role": "clerk", "_save": "Save"}
    )
    operator_client.post(reverse("admin:merchants_merchantstaff_delete", args=[owner.pk]), {"post": "yes"})
    operator_client.post(
        reverse("admin:merchants_merchantstaff_changelist"),
        {"action": "delete_selected", "_selected_action": [owner.pk], "post": "yes"},
    )

    assert list(MerchantStaff.objects.filter(merchant=owner.merchant).values_list("pk", "role")) == [
        (owner.pk, "owner")
    ]


def test_staff_actions_go_through_the_services_and_keep_an_owner(operator_client):
    owner = StaffFactory(role=MerchantStaff.Role.OWNER)
    clerk = StaffFactory(merchant=owner.merchant, role=MerchantStaff.Role.CLERK)
    changelist = reverse("admin:merchants_merchantstaff_changelist")

    refused = operator_client.post(
        changelist, {"action": "remove", "_selected_action": [owner.pk]}, follow=True
    )
    operator_client.post(changelist, {"action": "make_owner", "_selected_action": [clerk.pk]})
    operator_client.post(changelist, {"action": "make_clerk", "_selected_action": [owner.pk]})
    operator_client.post(changelist, {"action": "remove", "_selected_action": [owner.pk]})

    assert "A merchant needs at least one owner." in refused.content.decode()
    assert list(MerchantStaff.objects.filter(merchant=owner.merchant).values_list("pk", "role")) == [
        (clerk.pk, "owner")
    ]
