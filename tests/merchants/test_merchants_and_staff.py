"""Merchant applications, their review, and the owner managing staff."""

from __future__ import annotations

import pytest

from core.api.errors import ApplicationError
from merchants import services
from merchants.models import Merchant, MerchantStaff
from tests.accounts.factories import DistrictFactory, GuestFactory, UserFactory
from tests.merchants.factories import MerchantFactory, StaffFactory

pytestmark = pytest.mark.django_db


def application(**overrides):
    return {
        "name": "绿叶咖啡",
        "category": "food_and_drink",
        "district": DistrictFactory(code="kecheng").code,
        "licence_number": "91330802MA2ABC123X",
        "contact_name": "周晓",
        "contact_phone": "0570-8000001",
        **overrides,
    }


def test_a_person_applies_and_becomes_the_pending_merchants_owner(person, person_client):
    response = person_client.post("/api/v1/merchant-applications", application(), format="json")

    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    merchant = Merchant.objects.get(public_id=response.json()["id"])
    assert merchant.licence_number == "91330802MA2ABC123X"
    assert merchant.district.code == "kecheng"
    assert MerchantStaff.objects.get(user=person).role == "owner"
    assert person_client.get("/api/v1/merchant").json()["merchant"]["status"] == "pending"


def test_an_application_needs_every_field(person_client):
    response = person_client.post("/api/v1/merchant-applications", {"name": "X"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) >= {
        "category",
        "district",
        "licence_number",
        "contact_name",
        "contact_phone",
    }


def test_a_licence_number_registers_one_merchant(person_client, client_for):
    MerchantFactory(licence_number="91330802MA2ABC123X")
    response = person_client.post("/api/v1/merchant-applications", application(), format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "licence_number_taken"


def test_licence_numbers_are_compared_in_capitals(person_client):
    MerchantFactory(licence_number="91330802MA2ABC123X")
    response = person_client.post(
        "/api/v1/merchant-applications", application(licence_number="91330802ma2abc123x"), format="json"
    )
    assert response.json()["error"]["code"] == "licence_number_taken"


def test_a_person_applies_for_one_merchant_only(person_client):
    person_client.post("/api/v1/merchant-applications", application(), format="json")
    again = person_client.post(
        "/api/v1/merchant-applications", application(licence_number="91330802MA2XYZ999Y"), format="json"
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "merchant_application_exists"
    assert Merchant.objects.count() == 1


def test_guests_cannot_apply(client_for):
    response = client_for(GuestFactory()).post("/api/v1/merchant-applications", application(), format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "merchant_application_needs_identity"
    assert Merchant.objects.count() == 0


def test_an_operator_approves_or_rejects_once():
    operator = UserFactory(is_staff=True)
    pending = MerchantFactory(status=Merchant.Status.PENDING)
    other = MerchantFactory(status=Merchant.Status.PENDING)

    approved = services.merchant_approve(merchant=pending, reviewer=operator)
    rejected = services.merchant_reject(merchant=other, reviewer=operator, note="Licence unreadable")

    assert (approved.status, approved.reviewed_by) == ("approved", operator)
    assert (rejected.status, rejected.review_note) == ("rejected", "Licence unreadable")
    with pytest.raises(ApplicationError) as refused:
        services.merchant_reject(merchant=approved, reviewer=operator)
    assert refused.value.error.code == "merchant_not_reviewable"
    assert Merchant.objects.get(pk=approved.pk).status == "approved"


# --- Staff ------------------------------------------------------------------------------------


def test_the_owner_adds_a_clerk_by_public_id(shop):
    newcomer = UserFactory()

    response = shop.owner_client.post(
        "/api/v1/merchant/staff", {"user": str(newcomer.public_id), "role": "clerk"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["role"] == "clerk"
    assert MerchantStaff.objects.get(user=newcomer).merchant == shop.merchant


@pytest.mark.parametrize("kind", ["unknown", "guest", "closed"])
def test_only_real_open_accounts_can_join_staff(shop, kind):
    from django.utils import timezone

    target = {
        "unknown": lambda: UserFactory.build(),
        "guest": lambda: GuestFactory(),
        "closed": lambda: UserFactory(closed_at=timezone.now()),
    }[kind]()
    response = shop.owner_client.post(
        "/api/v1/merchant/staff", {"user": str(target.public_id), "role": "clerk"}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "staff_person_not_found"


def test_the_owner_promotes_and_removes_staff(shop):
    clerk_staff = MerchantStaff.objects.get(user=shop.clerk)

    promoted = shop.owner_client.patch(f"/api/v1/merchant/staff/{clerk_staff.public_id}", {"role": "owner"})
    removed = shop.owner_client.delete(f"/api/v1/merchant/staff/{clerk_staff.public_id}")

    assert promoted.json()["role"] == "owner"
    assert removed.status_code == 204
    assert not MerchantStaff.objects.filter(user=shop.clerk).exists()


def test_a_patch_without_a_role_changes_nothing(shop):
    """The schema documents PATCH bodies as partial; an empty one used to be refused with 400."""
    clerk_staff = MerchantStaff.objects.get(user=shop.clerk)

    response = shop.owner_client.patch(f"/api/v1/merchant/staff/{clerk_staff.public_id}", {}, format="json")

    assert response.status_code == 200
    assert response.json()["role"] == "clerk"
    assert MerchantStaff.objects.get(pk=clerk_staff.pk).role == "clerk"


def test_a_page_size_that_is_not_a_number_is_refused(shop):
    """It used to be ignored (the default page came back), though the schema says an integer."""
    response = shop.owner_client.get("/api/v1/merchant/staff?page_size=ét")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_failed"
    assert list(response.json()["error"]["fields"]) == ["page_size"]


def test_the_last_owner_can_be_neither_removed_nor_demoted(shop):
    owner_staff = MerchantStaff.objects.get(user=shop.owner)

    demoted = shop.owner_client.patch(f"/api/v1/merchant/staff/{owner_staff.public_id}", {"role": "clerk"})
    removed = shop.owner_client.delete(f"/api/v1/merchant/staff/{owner_staff.public_id}")

    assert demoted.json()["error"]["code"] == "last_owner"
    assert removed.json()["error"]["code"] == "last_owner"
    assert MerchantStaff.objects.get(pk=owner_staff.pk).role == "owner"


def test_with_two_owners_one_may_step_down(shop):
    second = StaffFactory(merchant=shop.merchant, role="owner")
    services.staff_change_role(staff=MerchantStaff.objects.get(user=shop.owner), role="clerk")
    with pytest.raises(ApplicationError):
        services.staff_remove(staff=second)
