"""The green credit profile: a bank reads it through the signed partner API only with the person's
consent; every fetch is logged and shown to the person; without consent nothing is disclosed."""

from __future__ import annotations

import datetime
import json
import time
import uuid

import pytest
from rest_framework.test import APIClient

from accounts.models import DataSource
from activities import services as activities_services
from activities import signing
from rewards.gamification.ratings import ratings_rate_month
from rewards.models import CreditProfileAccess, CreditProfileConsent
from tests.rewards.gamification import person_with, today

pytestmark = pytest.mark.django_db


@pytest.fixture
def bank(db):
    return activities_services.partner_create(
        code="green-bank", name="Green Bank", source=DataSource.BANK_PAYMENTS, behaviour_codes=["e_invoice"]
    )


@pytest.fixture
def customer(bank):
    last_month = (today().replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
    user = person_with(120_000, day=last_month + datetime.timedelta(days=3))
    person_with(10_000, day=last_month + datetime.timedelta(days=3))
    ratings_rate_month(month=last_month)
    activities_services.partner_customer_link(partner=bank.partner, customer_reference="GB-1", user=user)
    return user


def fetch(partner, reference: str = "GB-1"):
    body = json.dumps({"customer_reference": reference}).encode()
    stamp, request_id = str(int(time.time())), uuid.uuid4().hex
    return APIClient().post(
        "/api/v1/partner/credit-profile",
        data=body,
        content_type="application/json",
        HTTP_X_PARTNER_KEY=partner.partner.api_key,
        HTTP_X_TIMESTAMP=stamp,
        HTTP_X_PARTNER_REQUEST_ID=request_id,
        HTTP_X_SIGNATURE=signing.signature_of(partner.signing_secret, stamp, request_id, body),
    )


def test_without_consent_the_bank_gets_a_clear_refusal_and_nothing_else(bank, customer):
    response = fetch(bank)

    assert response.status_code == 403
    body = response.json()
    assert body["error"]["code"] == "credit_profile_consent_missing"
    assert str(customer.public_id) not in response.content.decode()
    assert "rating" not in response.content.decode()
    assert CreditProfileAccess.objects.get().outcome == "refused"


def test_an_unknown_customer_gets_the_same_refusal(bank, customer):
    unknown, known = fetch(bank, "GB-404"), fetch(bank)

    assert unknown.status_code == known.status_code == 403
    assert unknown.json()["error"] == known.json()["error"]


def test_with_consent_the_bank_reads_rating_history_and_twelve_month_totals(client_for, bank, customer):
    grant = client_for(customer).post(
        "/api/v1/credit-profile/consents", {"partner": "green-bank"}, format="json"
    )
    response = fetch(bank)

    assert grant.status_code == 201
    assert response.status_code == 200
    profile = response.json()
    last_month = (today().replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
    assert profile["current_rating"] == {
        "month": last_month.strftime("%Y-%m"),
        "level": "dark_green",
        "is_ambassador": True,
    }
    assert len(profile["rating_history"]) == 12
    assert profile["twelve_months"]["carbon_mg"] == 120_000
    assert profile["twelve_months"]["dark_green_months"] == 1
    assert "from" in profile["twelve_months"]
    assert CreditProfileAccess.objects.get().outcome == "disclosed"


def test_after_revoking_the_bank_is_refused_again_and_the_person_sees_every_fetch(client_for, bank, customer):
    client = client_for(customer)
    client.post("/api/v1/credit-profile/consents", {"partner": "green-bank"}, format="json")
    assert fetch(bank).status_code == 200

    revoke = client.delete("/api/v1/credit-profile/consents/green-bank")
    refused = fetch(bank)
    log = client.get("/api/v1/credit-profile/accesses").json()
    consents = client.get("/api/v1/credit-profile/consents").json()

    assert revoke.status_code == 204
    assert refused.status_code == 403
    assert [entry["outcome"] for entry in log] == ["refused", "disclosed"]
    assert {entry["partner"] for entry in log} == {"green-bank"}
    assert consents["banks"] == [{"partner": "green-bank", "name": "Green Bank", "is_granted": False}]
    assert consents["consents"][0]["revoked_at"] is not None


def test_granting_twice_keeps_one_active_consent_and_only_banks_can_be_granted(client_for, bank, customer):
    transit = activities_services.partner_create(
        code="transit", name="Transit", source=DataSource.TRANSIT_CARD, behaviour_codes=["bus"]
    )
    client = client_for(customer)
    client.post("/api/v1/credit-profile/consents", {"partner": "green-bank"}, format="json")
    client.post("/api/v1/credit-profile/consents", {"partner": "green-bank"}, format="json")
    refused = client.post("/api/v1/credit-profile/consents", {"partner": transit.partner.code}, format="json")

    assert CreditProfileConsent.objects.filter(user=customer, revoked_at__isnull=True).count() == 1
    assert refused.json()["error"]["code"] == "credit_profile_partner_unknown"


def test_another_bank_without_its_own_consent_is_refused(client_for, bank, customer):
    other = activities_services.partner_create(
        code="other-bank", name="Other Bank", source=DataSource.BANK_PAYMENTS, behaviour_codes=["e_invoice"]
    )
    activities_services.partner_customer_link(partner=other.partner, customer_reference="GB-1", user=customer)
    client_for(customer).post("/api/v1/credit-profile/consents", {"partner": "green-bank"}, format="json")

    assert fetch(other).status_code == 403
    assert fetch(bank).status_code == 200


def test_an_unsigned_request_is_refused_before_anything_is_looked_up(bank, customer):
    response = APIClient().post(
        "/api/v1/partner/credit-profile", {"customer_reference": "GB-1"}, format="json"
    )

    assert response.status_code in (401, 403)
    assert CreditProfileAccess.objects.count() == 0


def test_the_person_sees_their_own_profile_as_a_bank_would(client_for, customer):
    body = client_for(customer).get("/api/v1/credit-profile").json()

    assert body["person"] == str(customer.public_id)
    assert body["twelve_months"]["carbon_mg"] == 120_000
