"""Partner feeds: signed requests, per-record outcomes, idempotency, consent, plausibility."""

from __future__ import annotations

import datetime
import json
import time

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from accounts import services as accounts_services
from accounts.models import DataSource
from activities import services
from activities.models import ActivityRecord, DailyCarbon, PartnerCustomerLink, RejectionTally
from tests.accounts.factories import UserFactory
from tests.activities.conftest import ago, credited_mg, ride, signed_headers, snapshot, tally, yesterday_at

pytestmark = pytest.mark.django_db


def test_a_signed_batch_credits_each_ride(transit, rider, post_batch):
    response = post_batch(
        transit, [ride("R1", at=ago(hours=3)), ride("R2", behaviour="metro", at=ago(hours=2))]
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicate"], body["rejected"], body["held_for_review"]) == (2, 0, 0, 0)
    assert body["records"] == [
        {"id": "R1", "status": "accepted", "credited_carbon_mg": 80_000},
        {"id": "R2", "status": "accepted", "credited_carbon_mg": 80_000},
    ]
    assert credited_mg(rider) == 160_000
    record = ActivityRecord.objects.get(external_id="city-transit:R1")
    assert record.partner == transit.partner
    assert record.source == DataSource.TRANSIT_CARD


def test_a_resent_batch_credits_nothing_twice(transit, rider, post_batch):
    records = [ride("R1", at=ago(hours=3)), ride("R2", at=ago(hours=2))]
    post_batch(transit, records)
    before = snapshot()

    body = post_batch(transit, [*records, ride("R1", at=ago(hours=3))]).json()

    assert [r["status"] for r in body["records"]] == ["duplicate", "duplicate", "duplicate"]
    assert snapshot() == before


def test_the_same_id_twice_in_one_batch_is_credited_once(transit, rider, post_batch):
    body = post_batch(transit, [ride("R1", at=ago(hours=3)), ride("R1", at=ago(hours=3))]).json()

    assert [r["status"] for r in body["records"]] == ["accepted", "duplicate"]
    assert ActivityRecord.objects.count() == 1


def test_every_rejection_code_of_a_partner_record(transit, rider, post_batch):
    stranger = UserFactory()
    services.partner_customer_link(partner=transit.partner, customer_reference="T-NOCONSENT", user=stranger)
    closed = UserFactory(closed_at=datetime.datetime.now(tz=datetime.UTC))
    accounts_services.data_source_authorize(user=closed, source=DataSource.TRANSIT_CARD)
    services.partner_customer_link(partner=transit.partner, customer_reference="T-CLOSED", user=closed)
    records = [
        {"id": "bad", "behaviour": "bus"},
        ride("unknown-behaviour", behaviour="teleport"),
        ride("not-allowed", behaviour="walk"),
        ride("unknown-customer", reference="T-999"),
        ride("no-consent", reference="T-NOCONSENT"),
        ride("closed", reference="T-CLOSED"),
        {**ride("zero"), "quantity": "0"},
        {**ride("nan"), "quantity": "lots"},
        {**ride("huge"), "quantity": "1e12"},
        ride("future", at=ago(minutes=-30)),
        ride("old", at=ago(days=40)),
        ride("before-methodology", at=datetime.datetime(2019, 5, 1, tzinfo=datetime.UTC)),
    ]

    body = post_batch(transit, records).json()

    assert [(r["id"], r.get("code")) for r in body["records"]] == [
        ("bad", "invalid_record"),
        ("unknown-behaviour", "unknown_behaviour"),
        ("not-allowed", "behaviour_not_allowed"),
        ("unknown-customer", "unknown_customer"),
        ("no-consent", "source_not_authorized"),
        ("closed", "account_closed"),
        ("zero", "invalid_quantity"),
        ("nan", "invalid_quantity"),
        ("huge", "invalid_quantity"),
        ("future", "occurred_in_future"),
        ("old", "occurred_too_long_ago"),
        ("before-methodology", "occurred_too_long_ago"),
    ]
    assert body["rejected"] == len(records)
    assert all(r["message"] for r in body["records"])
    assert not ActivityRecord.objects.exists()
    assert not DailyCarbon.objects.exists()
    assert tally("source_not_authorized") == 1
    assert RejectionTally.objects.get(code="invalid_quantity").count == 3
    assert (
        sum(RejectionTally.objects.filter(partner_code="city-transit").values_list("count", flat=True)) == 12
    )


def test_a_record_older_than_the_history_window_is_rejected_in_an_import(transit, rider):
    outcomes = services.partner_records_ingest(
        partner=transit.partner,
        records=[ride("old", at=ago(days=91)), ride("recent", at=ago(days=89))],
        is_history=True,
    )

    assert [(o.status, o.code) for o in outcomes] == [
        ("rejected", "occurred_before_history_window"),
        ("accepted", ""),
    ]
    assert list(ActivityRecord.objects.values_list("external_id", flat=True)) == ["city-transit:recent"]
    assert tally("occurred_before_history_window") == 1


def test_a_back_fill_takes_any_age_the_methodology_has_factors_for(transit, rider):
    outcomes = services.partner_records_ingest(
        partner=transit.partner,
        records=[
            ride("ancient", at=datetime.datetime(2019, 5, 1, tzinfo=datetime.UTC)),
            ride("old", at=ago(days=200)),
        ],
        is_history=True,
        is_backfill=True,
    )

    assert [(o.status, o.code) for o in outcomes] == [("rejected", "no_factor_in_effect"), ("accepted", "")]


def test_a_partner_record_of_activity_before_the_authorization_is_rejected(transit, post_batch):
    person = UserFactory()
    services.partner_customer_link(partner=transit.partner, customer_reference="T-NEW", user=person)
    accounts_services.data_source_authorize(user=person, source=DataSource.TRANSIT_CARD)
    granted_at = person.data_source_authorizations.get().granted_at

    body = post_batch(
        transit,
        [
            ride("before", reference="T-NEW", at=granted_at - datetime.timedelta(days=3)),
            ride("just-before", reference="T-NEW", at=granted_at - datetime.timedelta(seconds=1)),
            ride("after", reference="T-NEW", at=granted_at + datetime.timedelta(seconds=1)),
        ],
    ).json()

    assert [(r["id"], r["status"], r.get("code")) for r in body["records"]] == [
        ("before", "rejected", "occurred_before_authorization"),
        ("just-before", "rejected", "occurred_before_authorization"),
        ("after", "accepted", None),
    ]
    assert list(ActivityRecord.objects.values_list("external_id", flat=True)) == ["city-transit:after"]
    assert credited_mg(person) == 80_000
    assert tally("occurred_before_authorization") == 2


def test_revoked_consent_rejects_and_stores_nothing(transit, rider, post_batch):
    accounts_services.data_source_revoke(user=rider, source=DataSource.TRANSIT_CARD)

    body = post_batch(transit, [ride("R1")]).json()

    assert body["records"][0]["code"] == "source_not_authorized"
    assert not ActivityRecord.objects.exists()
    assert tally("source_not_authorized") == 1


def test_a_utility_payment_counts_from_one_yuan(rider, post_batch, authorize):
    bank = services.partner_create(
        code="city-bank",
        name="City Bank",
        source=DataSource.BANK_PAYMENTS,
        behaviour_codes=["utility_payment"],
    )
    authorize(rider, DataSource.BANK_PAYMENTS)
    services.partner_customer_link(partner=bank.partner, customer_reference="B-1", user=rider)
    payment = {"customer_reference": "B-1", "behaviour": "utility_payment", "quantity": 1}
    amounts = {"P1": "1.00", "P2": "0.99", "P3": 0.5, "P4": 36, "P5": None, "P6": "0.001"}
    records = [
        dict(payment, id=record_id, occurred_at=ago(hours=n + 1).isoformat(), **({"amount": a} if a else {}))
        for n, (record_id, a) in enumerate(amounts.items())
    ]

    body = post_batch(bank, records).json()

    assert [(r["id"], r["status"], r.get("code")) for r in body["records"]] == [
        ("P1", "accepted", None),
        ("P2", "rejected", "payment_below_minimum"),
        ("P3", "rejected", "payment_below_minimum"),
        ("P4", "accepted", None),
        ("P5", "rejected", "invalid_record"),
        ("P6", "rejected", "invalid_record"),
    ]
    assert body["records"][4]["detail"] == "amount"
    assert credited_mg(rider) == 2 * 262_000
    assert tally("payment_below_minimum") == 2
    assert ActivityRecord.objects.filter(user=rider).count() == 2


def test_rides_beyond_the_daily_cap_are_accepted_but_capped(transit, rider, post_batch):
    start = yesterday_at(8)
    records = [ride(f"R{n}", at=start + datetime.timedelta(minutes=30 * n)) for n in range(7)]
    records = [dict(r, behaviour="metro") for r in records]

    body = post_batch(transit, records).json()

    assert [r["credited_carbon_mg"] for r in body["records"]] == [80_000] * 5 + [0, 0]
    assert body["records"][5]["capped_by"] == "day"
    assert credited_mg(rider) == 400_000


def test_overlapping_rides_are_held_for_review(transit, rider, post_batch):
    start = ago(hours=5)
    post_batch(transit, [ride("R1", at=start, minutes=40)])

    body = post_batch(
        transit,
        [
            ride("R2", at=start + datetime.timedelta(minutes=20), minutes=30),
            ride("R3", at=ago(hours=1), minutes=10),
        ],
    ).json()

    assert [(r["status"], r.get("hold_reason")) for r in body["records"]] == [
        ("held_for_review", "overlapping_trip"),
        ("accepted", None),
    ]
    assert credited_mg(rider) == 160_000


def test_more_rides_in_a_day_than_the_behaviour_allows_are_held(transit, rider, post_batch):
    start = yesterday_at(8)
    records = [
        dict(ride(f"R{n}", at=start + datetime.timedelta(minutes=10 * n)), behaviour="metro")
        for n in range(12)
    ]

    body = post_batch(transit, records).json()

    statuses = [r["status"] for r in body["records"]]
    assert statuses == ["accepted"] * 10 + ["held_for_review"] * 2
    assert body["records"][10]["hold_reason"] == "too_many_in_a_day"


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        ({"HTTP_X_SIGNATURE": "0" * 64}, "partner_signature_invalid", 401),
        ({"HTTP_X_PARTNER_KEY": "pk_unknown"}, "partner_credentials_invalid", 401),
        ({"HTTP_X_PARTNER_KEY": ""}, "partner_credentials_invalid", 401),
    ],
)
def test_bad_credentials_are_refused(transit, rider, change, code, status):
    body = json.dumps({"records": [ride("R1")]}).encode()
    headers = {**signed_headers(transit, body), **change}

    response = APIClient().post(
        "/api/v1/partner/records", data=body, content_type="application/json", **headers
    )

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not ActivityRecord.objects.exists()


def test_a_tampered_body_is_refused(transit, rider):
    body = json.dumps({"records": [ride("R1")]}).encode()
    headers = signed_headers(transit, body)
    tampered = body.replace(b'"1"', b'"9"')

    response = APIClient().post(
        "/api/v1/partner/records", data=tampered, content_type="application/json", **headers
    )

    assert response.json()["error"]["code"] == "partner_signature_invalid"


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_outside_five_minutes_is_refused(transit, rider, post_batch, offset):
    response = post_batch(transit, [ride("R1")], timestamp=int(time.time()) + offset)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "partner_timestamp_skewed"


def test_a_replayed_request_id_is_refused(transit, rider, post_batch):
    assert post_batch(transit, [ride("R1")], request_id="req-1").status_code == 200

    response = post_batch(transit, [ride("R2")], request_id="req-1")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "partner_request_replayed"
    assert ActivityRecord.objects.count() == 1


def test_a_rotated_secret_works_and_the_old_one_lasts_its_grace_period(transit, rider, post_batch):
    old_secret = transit.signing_secret
    new_secret = services.partner_secret_rotate(partner=transit.partner, grace=datetime.timedelta(hours=1))
    transit.partner.refresh_from_db()

    assert post_batch(type(transit)(transit.partner, new_secret), [ride("R1")]).status_code == 200
    assert post_batch(type(transit)(transit.partner, old_secret), [ride("R2")]).status_code == 200

    services.partner_secret_rotate(partner=transit.partner, grace=datetime.timedelta(0))
    response = post_batch(type(transit)(transit.partner, new_secret), [ride("R3")])
    assert response.json()["error"]["code"] == "partner_signature_invalid"


def test_a_batch_over_the_limit_is_refused(transit, rider, post_batch, settings):
    settings.ACTIVITIES_PARTNER_BATCH_MAX = 2

    response = post_batch(transit, [ride("R1"), ride("R2"), ride("R3")])

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "partner_batch_too_large"


def test_a_body_that_is_not_json_is_refused(transit):
    body = b"records=1"
    response = APIClient().post(
        "/api/v1/partner/records", data=body, content_type="application/json", **signed_headers(transit, body)
    )

    assert response.json()["error"]["code"] == "malformed_request"


def test_a_partner_links_its_customer_with_the_code_the_person_got(transit, person, person_client):
    code = person_client.post("/api/v1/activities/partner-links/code").json()["code"]
    body = json.dumps({"link_code": code, "customer_reference": "T-555"}).encode()

    response = APIClient().post(
        "/api/v1/partner/links",
        data=body,
        content_type="application/json",
        **signed_headers(transit, body, path="/api/v1/partner/links"),
    )

    assert response.status_code == 201
    link = PartnerCustomerLink.objects.get(customer_reference="T-555")
    assert (link.user, link.linked_by_partner) == (person, True)
    again = json.dumps({"link_code": code, "customer_reference": "T-556"}).encode()
    response = APIClient().post(
        "/api/v1/partner/links",
        data=again,
        content_type="application/json",
        **signed_headers(transit, again, path="/api/v1/partner/links"),
    )
    assert response.json()["error"]["code"] == "link_code_invalid"


def _link_by_code(transit, code: str, customer_reference: str):
    body = json.dumps({"link_code": code, "customer_reference": customer_reference}).encode()
    return APIClient().post(
        "/api/v1/partner/links",
        data=body,
        content_type="application/json",
        **signed_headers(transit, body, path="/api/v1/partner/links"),
    )


def test_the_card_s_holder_linking_by_code_takes_over_a_link_someone_typed_in_the_app(
    transit, person, person_client, client_for, authorize
):
    # Given someone else who typed the person's card number into their app first
    squatter = UserFactory()
    authorize(squatter, DataSource.TRANSIT_CARD)
    authorize(person, DataSource.TRANSIT_CARD)
    typed = client_for(squatter).post(
        "/api/v1/activities/partner-links",
        {"partner": "city-transit", "customer_reference": "T-555"},
        format="json",
    )
    assert typed.status_code == 201
    refused = person_client.post(
        "/api/v1/activities/partner-links",
        {"partner": "city-transit", "customer_reference": "T-555"},
        format="json",
    )
    assert refused.json()["error"]["code"] == "customer_reference_taken"

    # When the card's holder has the partner link it with the code their app showed
    code = person_client.post("/api/v1/activities/partner-links/code").json()["code"]
    response = _link_by_code(transit, code, "T-555")

    # Then the card is theirs, its next ride is credited to them, and the other link is gone
    assert response.status_code == 201
    link = PartnerCustomerLink.objects.get(customer_reference="T-555")
    assert (link.user, link.linked_by_partner) == (person, True)
    ride_record = {"id": "R-after", "customer_reference": "T-555", "behaviour": "bus", "quantity": "1",
                   "occurred_at": ago(hours=1).isoformat()}  # fmt: skip
    outcomes = services.partner_records_ingest(partner=transit.partner, records=[ride_record])
    assert [outcome.status for outcome in outcomes] == ["accepted"], outcomes
    assert ActivityRecord.objects.get(external_id="city-transit:R-after").user == person
    assert client_for(squatter).get("/api/v1/activities/partner-links").json() == []
    # and no typed link takes a card its partner vouched for
    retyped = client_for(squatter).post(
        "/api/v1/activities/partner-links",
        {"partner": "city-transit", "customer_reference": "T-555"},
        format="json",
    )
    assert retyped.json()["error"]["code"] == "customer_reference_taken"


def test_a_link_code_dies_with_the_account_erased_after_asking_for_it(transit, person, person_client):
    code = person_client.post("/api/v1/activities/partner-links/code").json()["code"]
    accounts_services.account_erase(user=person)

    response = _link_by_code(transit, code, "T-ERASED-1")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "link_code_invalid"
    assert not PartnerCustomerLink.objects.exists()


def test_a_link_code_of_an_account_merged_since_links_nothing(transit, person, person_client):
    code = person_client.post("/api/v1/activities/partner-links/code").json()["code"]
    accounts_services.account_merge(source_user=person, target_user=UserFactory())

    response = _link_by_code(transit, code, "T-MERGED-1")

    assert response.json()["error"]["code"] == "link_code_invalid"
    assert not PartnerCustomerLink.objects.exists()


def test_a_person_links_and_unlinks_a_transit_card(transit, person, person_client, client_for):
    response = person_client.post(
        "/api/v1/activities/partner-links",
        {"partner": "city-transit", "customer_reference": "T-777"},
        format="json",
    )

    assert response.status_code == 201
    link_id = response.json()["id"]
    assert person_client.get("/api/v1/activities/partner-links").json()[0]["customer_reference"] == "T-777"
    other = client_for(UserFactory())
    taken = other.post(
        "/api/v1/activities/partner-links",
        {"partner": "city-transit", "customer_reference": "T-777"},
        format="json",
    )
    assert taken.json()["error"]["code"] == "customer_reference_taken"
    assert other.delete(f"/api/v1/activities/partner-links/{link_id}").status_code == 404
    assert person_client.delete(f"/api/v1/activities/partner-links/{link_id}").status_code == 204
    assert not PartnerCustomerLink.objects.exists()


def test_linking_to_an_unknown_partner_is_refused(person_client):
    response = person_client.post(
        "/api/v1/activities/partner-links", {"partner": "nobody", "customer_reference": "1"}, format="json"
    )

    assert response.json()["error"]["code"] == "partner_not_found"


@override_settings(ACTIVITIES_LINK_CODE_FAILURES_ALLOWED=3)
def test_a_partner_guessing_link_codes_is_refused_after_a_few_wrong_ones(transit, person, person_client):
    # Given a partner that tried three wrong codes, and a code a person really got
    wrong = [_link_by_code(transit, f"{number:08d}", f"T-GUESS-{number}") for number in range(3)]
    code = person_client.post("/api/v1/activities/partner-links/code").json()["code"]

    # When it tries again, even with the right code
    refused = _link_by_code(transit, code, "T-REAL")

    # Then it is refused until the window ends, and another partner's linking is not
    assert [response.json()["error"]["code"] for response in wrong] == ["link_code_invalid"] * 3
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "link_code_attempts_exceeded"
    assert not PartnerCustomerLink.objects.exists()
    bank = services.partner_create(code="city-bank", name="City bank", source=DataSource.BANK_PAYMENTS,
                                   behaviour_codes=["e_invoice"])  # fmt: skip
    assert _link_by_code(bank, code, "B-1").status_code == 201


@override_settings(ACTIVITIES_LINK_CODE_FAILURES_ALLOWED=3)
def test_codes_that_link_do_not_use_up_the_partner_s_attempts(transit, client_for):
    people = UserFactory.create_batch(5)
    codes = [
        client_for(person).post("/api/v1/activities/partner-links/code").json()["code"] for person in people
    ]

    responses = [_link_by_code(transit, code, f"T-OK-{number}") for number, code in enumerate(codes)]

    assert [response.status_code for response in responses] == [201] * 5
