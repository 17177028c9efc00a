"""The authorization matrix: every merchant route, for every kind of caller.

A merchant sees and changes only its own offers, coupons and reports: another merchant's
objects are not found (404), its own routes answer for its own data only.
"""

from __future__ import annotations

import pytest

from merchants.models import Merchant
from merchants.services import offer_redeem
from tests.accounts.factories import UserFactory
from tests.merchants.conftest import make_shop
from tests.merchants.factories import OfferFactory, StaffFactory

pytestmark = pytest.mark.django_db

# (method, path template, body, open to clerks)
ROUTES = [
    ("get", "/api/v1/merchant/staff", None, False),
    ("post", "/api/v1/merchant/staff", {"user": "{person}", "role": "clerk"}, False),
    ("patch", "/api/v1/merchant/staff/{staff}", {"role": "owner"}, False),
    ("delete", "/api/v1/merchant/staff/{staff}", None, False),
    ("get", "/api/v1/merchant/offers", None, False),
    ("post", "/api/v1/merchant/offers", "offer", False),
    ("get", "/api/v1/merchant/offers/{offer}", None, False),
    ("patch", "/api/v1/merchant/offers/{offer}", {"title": "New"}, False),
    ("put", "/api/v1/merchant/offers/{offer}/image", None, False),
    ("post", "/api/v1/merchant/offers/{offer}/submit", None, False),
    ("post", "/api/v1/merchant/offers/{offer}/pause", None, False),
    ("post", "/api/v1/merchant/offers/{offer}/resume", None, False),
    ("post", "/api/v1/merchant/offers/{offer}/end", None, False),
    ("get", "/api/v1/merchant/coupons", None, False),
    ("get", "/api/v1/merchant/reports/offers", None, False),
    ("get", "/api/v1/merchant/reports/offers.csv", None, False),
    ("get", "/api/v1/merchant/statements/2026-11", None, False),
    ("post", "/api/v1/merchant/verifications", {"code": "{code}"}, True),
]
OBJECT_ROUTES = [route for route in ROUTES if "{offer}" in route[1] or "{staff}" in route[1]]


def offer_body():
    return {
        "title": "Tea",
        "category": "food_and_drink",
        "price_coins": 10,
        "total_stock": 10,
        "sale_starts_at": "2026-01-01T00:00:00+08:00",
        "sale_ends_at": "2027-01-01T00:00:00+08:00",
    }


@pytest.fixture
def world(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant)
    coupon = offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon
    return {
        "offer": offer.public_id,
        "staff": shop.merchant.staff.get(user=shop.clerk).public_id,
        "person": UserFactory().public_id,
        "code": coupon.code,
    }


def call(client, method, path, body, world):
    path = path.format(**world)
    if body == "offer":
        body = offer_body()
    elif isinstance(body, dict):
        body = {
            key: value.format(**world) if isinstance(value, str) else value for key, value in body.items()
        }
    return (
        getattr(client, method)(path, body, format="json")
        if body is not None
        else getattr(client, method)(path)
    )


@pytest.mark.parametrize(("method", "path", "body", "for_clerks"), ROUTES)
def test_anonymous_callers_must_sign_in(api_client, world, method, path, body, for_clerks):
    response = call(api_client, method, path, body, world)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize(("method", "path", "body", "for_clerks"), ROUTES)
def test_citizens_are_not_merchant_staff(citizen_client, world, method, path, body, for_clerks):
    response = call(citizen_client, method, path, body, world)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_merchant_staff"


@pytest.mark.parametrize(("method", "path", "body", "for_clerks"), ROUTES)
def test_clerks_only_verify(shop, world, method, path, body, for_clerks):
    response = call(shop.clerk_client, method, path, body, world)
    if for_clerks:
        assert response.status_code == 200, response.json()
    else:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "owner_role_required"


@pytest.mark.parametrize(("method", "path", "body", "for_clerks"), ROUTES)
@pytest.mark.parametrize("status", [Merchant.Status.PENDING, Merchant.Status.REJECTED])
def test_staff_of_an_unapproved_merchant_can_do_nothing_yet(
    shop, world, method, path, body, for_clerks, status
):
    Merchant.objects.filter(pk=shop.merchant.pk).update(status=status)
    response = call(shop.owner_client, method, path, body, world)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "merchant_not_approved"


@pytest.mark.parametrize(("method", "path", "body", "for_clerks"), OBJECT_ROUTES)
def test_another_merchants_owner_cannot_find_this_merchants_objects(
    other_shop, world, method, path, body, for_clerks
):
    response = call(other_shop.owner_client, method, path, body, world)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_another_merchants_clerk_cannot_verify_this_merchants_coupon(other_shop, world):
    response = call(
        other_shop.clerk_client, "post", "/api/v1/merchant/verifications", {"code": "{code}"}, world
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "coupon_other_merchant"


def test_lists_and_reports_show_only_the_merchants_own_data(shop, other_shop, citizen, world, client_for):
    theirs = OfferFactory(merchant=other_shop.merchant, title="Their offer")
    offer_redeem(user=citizen, offer_public_id=theirs.public_id)

    offers = shop.owner_client.get("/api/v1/merchant/offers").json()["results"]
    coupons = shop.owner_client.get("/api/v1/merchant/coupons").json()["results"]
    report = shop.owner_client.get("/api/v1/merchant/reports/offers").json()
    csv_text = shop.owner_client.get("/api/v1/merchant/reports/offers.csv").content.decode("utf-8-sig")
    staff = shop.owner_client.get("/api/v1/merchant/staff").json()["results"]
    statement = shop.owner_client.get("/api/v1/merchant/statements/2026-11").json()

    assert [offer["id"] for offer in offers] == [str(world["offer"])]
    assert {coupon["offer"] for coupon in coupons} == {str(world["offer"])}
    assert [row["offer_id"] for row in report] == [str(world["offer"])]
    assert "Their offer" not in csv_text
    assert {member["user"] for member in staff} == {str(shop.owner.public_id), str(shop.clerk.public_id)}
    assert statement["merchant_id"] == str(shop.merchant.public_id)


def test_another_merchants_owner_cannot_take_over_staff(shop, other_shop):
    response = other_shop.owner_client.post(
        "/api/v1/merchant/staff", {"user": str(shop.clerk.public_id), "role": "clerk"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "staff_already_employed"
    assert shop.merchant.staff.filter(user=shop.clerk).exists()


def test_merchant_me_answers_before_approval(client_for):
    shop = make_shop(client_for)
    Merchant.objects.filter(pk=shop.merchant.pk).update(status=Merchant.Status.PENDING)
    response = shop.owner_client.get("/api/v1/merchant")
    assert response.status_code == 200
    assert response.json()["merchant"]["status"] == "pending"
    assert response.json()["role"] == "owner"


def test_platform_statements_are_for_operators_only(shop, client_for):
    assert shop.owner_client.get("/api/v1/platform/merchant-statements/2026-11").status_code == 403
    operator = StaffFactory().user
    operator.is_staff = True
    operator.save()
    assert client_for(operator).get("/api/v1/platform/merchant-statements/2026-11").status_code == 200


CITIZEN_ROUTES = [
    ("get", "/api/v1/catalog/offers"),
    ("get", "/api/v1/catalog/offers/{offer}"),
    ("post", "/api/v1/catalog/offers/{offer}/redeem"),
    ("get", "/api/v1/coupons"),
    ("post", "/api/v1/merchant-applications"),
    ("get", "/api/v1/merchant"),
]


@pytest.mark.parametrize(("method", "path"), CITIZEN_ROUTES)
@pytest.mark.parametrize("token", [None, "not-a-session-token"])
def test_citizen_routes_need_a_valid_session(api_client, world, method, path, token):
    if token:
        api_client.credentials(HTTP_X_SESSION_TOKEN=token)
    response = getattr(api_client, method)(path.format(**world))
    assert response.status_code == 401
