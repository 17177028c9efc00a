"""The green credit profile: a bank reads it through the signed partner API only with the person's
consent; every fetch is logged and shown to the person; without consent nothing is disclosed."""

from __future__ import annotations

import datetime
import json
import time
import uuid

import gmssl_pyx
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pysmx import SM2 as smx  # noqa: N811 - the independent implementation
from rest_framework.test import APIClient

from accounts.models import DataSource
from activities import services as activities_services
from activities import signing
from activities.models import Partner, SignatureScheme
from core.crypto import platform_keys
from rewards.gamification.ratings import ratings_rate_month
from rewards.models import CreditProfileAccess, CreditProfileConsent
from tests.activities.conftest import signed_headers
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


PROFILE_PATH = "/api/v1/partner/credit-profile"


def fetch(partner, reference: str = "GB-1"):
    body = json.dumps({"customer_reference": reference}).encode()
    return APIClient().post(
        PROFILE_PATH,
        data=body,
        content_type="application/json",
        **signed_headers(partner, body, path=PROFILE_PATH),
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


def test_a_signed_link_request_sent_to_the_profile_route_discloses_nothing(client_for, bank, customer):
    """A link request carries a customer reference too; captured, it is no profile request."""
    client_for(customer).post("/api/v1/credit-profile/consents", {"partner": "green-bank"}, format="json")
    body = json.dumps({"link_code": "ABCD2345", "customer_reference": "GB-1"}).encode()

    response = APIClient().post(
        PROFILE_PATH,
        data=body,
        content_type="application/json",
        **signed_headers(bank, body, path="/api/v1/partner/links"),
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "partner_signature_invalid"
    assert CreditProfileAccess.objects.count() == 0


def test_the_person_sees_their_own_profile_as_a_bank_would(client_for, customer):
    body = client_for(customer).get("/api/v1/credit-profile").json()

    assert body["person"] == str(customer.public_id)
    assert body["twelve_months"]["carbon_mg"] == 120_000


def fetch_as_sm_bank(partner, bank_keys, reference: str = "GB-1"):
    """The bank signs with SM2 (its own key pair), as a bank of the national suite does."""
    public, private = bank_keys
    body = json.dumps({"customer_reference": reference}).encode()
    stamp, request_id = str(int(time.time())), uuid.uuid4().hex
    message = signing.request_message("POST", PROFILE_PATH, stamp, request_id, body)
    response = APIClient().post(
        PROFILE_PATH,
        data=body,
        content_type="application/json",
        HTTP_X_PARTNER_KEY=partner.partner.api_key,
        HTTP_X_TIMESTAMP=stamp,
        HTTP_X_PARTNER_REQUEST_ID=request_id,
        HTTP_X_SIGNATURE=gmssl_pyx.sm2_sign(private, public, message).hex(),
    )
    return response, request_id


@pytest.fixture
def sm_bank(bank):
    keys = gmssl_pyx.sm2_key_generate()
    Partner.objects.filter(pk=bank.partner.pk).update(
        signature_scheme=SignatureScheme.SM2_SM3, sm2_public_key=keys[0].hex()
    )
    return bank, keys


def platform_signature_verifies(response, request_id: str) -> bool:
    """What the bank does with our answer: snowland-smx, our public key of the named key id."""
    public = bytes.fromhex(platform_keys.sm2_public_keys()[response["X-Platform-Key-Id"]][2:])
    r, s = decode_dss_signature(bytes.fromhex(response["X-Platform-Signature"]))
    message = signing.answer_message(response["X-Platform-Timestamp"], request_id, response.content)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return smx.Verify(raw, message, public, 64, uid=b"1234567812345678") is True


def test_a_bank_of_the_sm_suite_gets_the_profile_signed_with_our_sm2_key(client_for, sm_bank, customer):
    bank, keys = sm_bank
    client_for(customer).post("/api/v1/credit-profile/consents", {"partner": "green-bank"}, format="json")

    response, request_id = fetch_as_sm_bank(bank, keys)

    assert response.status_code == 200
    assert response["X-Platform-Signature-Scheme"] == "sm2-sm3"
    assert response["X-Platform-Key-Id"] == "dev-1"
    assert abs(int(response["X-Platform-Timestamp"]) - time.time()) < 60
    assert platform_signature_verifies(response, request_id)
    assert not platform_signature_verifies(response, "another-request")
    assert response.json()["twelve_months"]["carbon_mg"] == 120_000


def test_a_refusal_to_an_sm_bank_is_signed_too_and_an_hmac_sha256_bank_gets_no_signature(sm_bank, customer):
    bank, keys = sm_bank

    refused, request_id = fetch_as_sm_bank(bank, keys)
    Partner.objects.filter(pk=bank.partner.pk).update(signature_scheme=SignatureScheme.HMAC_SHA256)
    plain = fetch(bank)

    assert refused.status_code == 403
    assert platform_signature_verifies(refused, request_id)
    assert plain.status_code == 403
    assert plain.get("X-Platform-Signature") is None


def test_after_our_key_rotates_the_answer_names_the_new_key_id(settings, client_for, sm_bank, customer):
    bank, keys = sm_bank
    client_for(customer).post("/api/v1/credit-profile/consents", {"partner": "green-bank"}, format="json")
    settings.PLATFORM_SM2_SIGNING_KEYS = ["k2:" + "2" * 64, *settings.PLATFORM_SM2_SIGNING_KEYS]

    response, request_id = fetch_as_sm_bank(bank, keys)

    assert response["X-Platform-Key-Id"] == "k2"
    assert platform_signature_verifies(response, request_id)
