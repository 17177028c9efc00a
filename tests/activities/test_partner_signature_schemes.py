"""Partner requests signed in each scheme: HMAC-SM3 and SM2 with SM3 (HMAC-SHA256's are in
test_partner_feed.py). The same bytes are signed (method, path, timestamp, request id, body) and
refused with the same codes when tampered with, sent to another route, replayed or out of time; the
legacy form (no method and path) only within the partner's window for it."""

from __future__ import annotations

import datetime
import importlib
import json
import secrets
import time
import uuid

import gmssl_pyx
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.utils import timezone
from django.utils.http import http_date
from pysmx import SM2 as smx  # noqa: N811 - the independent implementation
from rest_framework.test import APIClient

from activities import signing
from activities.models import ActivityRecord, Partner, SignatureScheme
from tests.activities.conftest import ride

BANK_PUBLIC, BANK_PRIVATE = gmssl_pyx.sm2_key_generate()


def use_scheme(partner, scheme: str, **fields) -> None:
    Partner.objects.filter(pk=partner.partner.pk).update(signature_scheme=scheme, **fields)


def sign(scheme: str, secret: str, message: bytes) -> str:
    if scheme == SignatureScheme.SM2_SM3:
        return gmssl_pyx.sm2_sign(BANK_PRIVATE, BANK_PUBLIC, message).hex()
    return signing.signature_of(secret, message, scheme=scheme)


RECORDS_PATH = "/api/v1/partner/records"


def message_of(method: str, signed_path: str | None, stamp: str, request_id: str, body: bytes) -> bytes:
    """What is signed for `method signed_path`; `signed_path` None: the legacy form (no method, no path)."""
    if signed_path is None:
        return signing.legacy_request_message(stamp, request_id, body)
    return signing.request_message(method, signed_path, stamp, request_id, body)


def post(
    partner,
    scheme: str,
    records: list[dict],
    *,
    timestamp=None,
    request_id=None,
    body=None,
    signer=None,
    signed_path: str | None = RECORDS_PATH,
    path: str = RECORDS_PATH,
):
    """A batch to `path`, signed for `signed_path` (None: in the legacy form, without method and path)."""
    signed_body = json.dumps({"records": records}).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    request_id = request_id or uuid.uuid4().hex
    message = message_of("POST", signed_path, stamp, request_id, signed_body)
    signature = (signer or sign)(scheme, partner.signing_secret, message)
    return APIClient().post(
        path,
        data=signed_body if body is None else body,
        content_type="application/json",
        HTTP_X_PARTNER_KEY=partner.partner.api_key,
        HTTP_X_TIMESTAMP=stamp,
        HTTP_X_PARTNER_REQUEST_ID=request_id,
        HTTP_X_SIGNATURE=signature,
    )


@pytest.fixture(params=[SignatureScheme.HMAC_SM3, SignatureScheme.SM2_SM3])
def scheme(request, transit) -> str:
    use_scheme(transit, request.param, sm2_public_key=BANK_PUBLIC.hex())
    return request.param


def test_a_batch_signed_in_the_partner_s_scheme_is_accepted(transit, rider, scheme):
    response = post(transit, scheme, [ride("R1"), ride("R2")])

    assert response.status_code == 200
    assert response.json()["accepted"] == 2
    assert ActivityRecord.objects.count() == 2


def test_an_sm2_signature_made_by_snowland_smx_is_accepted(transit, rider):
    """A bank signing with another implementation of the standard: signer id and SM3 digest as ours."""
    pair = smx.generate_keypair()
    use_scheme(transit, SignatureScheme.SM2_SM3, sm2_public_key=pair.publicKey.hex())

    def smx_signer(_scheme, _secret, message: bytes) -> str:
        raw = smx.Sign(message, pair.privateKey, secrets.token_hex(32), 64, uid=b"1234567812345678")
        return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")).hex()

    response = post(transit, SignatureScheme.SM2_SM3, [ride("R1")], signer=smx_signer)

    assert response.status_code == 200
    assert response.json()["accepted"] == 1


def test_a_tampered_body_is_refused(transit, rider, scheme):
    records = [ride("R1")]
    tampered = json.dumps({"records": records}).encode().replace(b'"1"', b'"9"')

    response = post(transit, scheme, records, body=tampered)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "partner_signature_invalid"
    assert not ActivityRecord.objects.exists()


def test_a_replayed_request_id_is_refused(transit, rider, scheme):
    assert post(transit, scheme, [ride("R1")], request_id="req-1").status_code == 200

    response = post(transit, scheme, [ride("R2")], request_id="req-1")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "partner_request_replayed"
    assert ActivityRecord.objects.count() == 1


# A second's margin each way: the timestamp is whole seconds, and a loaded machine is slow.
@pytest.mark.parametrize("offset", [-302, 302])
def test_a_timestamp_outside_five_minutes_is_refused(transit, rider, scheme, offset):
    response = post(transit, scheme, [ride("R1")], timestamp=int(time.time()) + offset)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "partner_timestamp_skewed"
    assert not ActivityRecord.objects.exists()


@pytest.mark.parametrize(
    ("scheme_used", "signature_of_scheme"),
    [
        (SignatureScheme.HMAC_SM3, SignatureScheme.HMAC_SHA256),
        (SignatureScheme.HMAC_SHA256, SignatureScheme.HMAC_SM3),
        (SignatureScheme.SM2_SM3, SignatureScheme.HMAC_SHA256),
    ],
)
def test_a_signature_in_another_scheme_than_the_partner_s_is_refused(
    transit, rider, scheme_used, signature_of_scheme
):
    use_scheme(transit, scheme_used, sm2_public_key=BANK_PUBLIC.hex())

    response = post(transit, signature_of_scheme, [ride("R1")])

    assert response.json()["error"]["code"] == "partner_signature_invalid"
    assert not ActivityRecord.objects.exists()


def test_an_sm2_partner_with_another_signer_id_must_sign_with_it(transit, rider):
    use_scheme(
        transit, SignatureScheme.SM2_SM3, sm2_public_key=BANK_PUBLIC.hex(), sm2_signer_id="GREEN-BANK-01"
    )

    def signer(_scheme, _secret, message: bytes, signer_id: bytes) -> str:
        return gmssl_pyx.sm2_sign(BANK_PRIVATE, BANK_PUBLIC, message, signer_id).hex()

    refused = post(
        transit, SignatureScheme.SM2_SM3, [ride("R1")], signer=lambda *a: signer(*a, b"1234567812345678")
    )
    accepted = post(
        transit, SignatureScheme.SM2_SM3, [ride("R1")], signer=lambda *a: signer(*a, b"GREEN-BANK-01")
    )

    assert refused.json()["error"]["code"] == "partner_signature_invalid"
    assert accepted.status_code == 200


def test_a_signed_batch_sent_to_another_route_or_with_another_query_is_refused(transit, rider, scheme):
    """The signature binds the request to its route: a captured request means nothing elsewhere."""
    elsewhere = post(transit, scheme, [ride("R1")], signed_path="/api/v1/partner/links")
    with_query = post(transit, scheme, [ride("R1")], signed_path=RECORDS_PATH + "?dry_run=1")
    signed_with_query = post(
        transit, scheme, [ride("R2")], signed_path=RECORDS_PATH + "?note=1", path=RECORDS_PATH + "?note=1"
    )

    assert elsewhere.json()["error"]["code"] == "partner_signature_invalid"
    assert with_query.json()["error"]["code"] == "partner_signature_invalid"
    assert signed_with_query.status_code == 200
    credited = ActivityRecord.objects.values_list("external_id", flat=True)
    assert list(credited) == [f"{transit.partner.code}:R2"]


def test_the_legacy_form_is_accepted_within_the_partner_s_window_with_its_end_in_each_answer(
    transit, rider, scheme
):
    until = timezone.now() + datetime.timedelta(days=30)
    use_scheme(transit, scheme, legacy_signature_until=until)

    response = post(transit, scheme, [ride("R1")], signed_path=None)
    signed = post(transit, scheme, [ride("R2")])

    assert response.status_code == 200
    assert response["Sunset"] == http_date(until.timestamp())
    assert "sign method, path, timestamp, request id and body" in response["X-Signature-Notice"]
    assert "Sunset" not in signed
    assert signed.status_code == 200
    transit.partner.refresh_from_db()
    assert timezone.now() - transit.partner.legacy_signature_seen_at < datetime.timedelta(minutes=1)


@pytest.mark.parametrize("window", [None, -datetime.timedelta(seconds=1)])
def test_the_legacy_form_is_refused_without_a_window_or_after_it(transit, rider, scheme, window):
    until = None if window is None else timezone.now() + window
    use_scheme(transit, scheme, legacy_signature_until=until)

    response = post(transit, scheme, [ride("R1")], signed_path=None)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "partner_signature_invalid"
    assert not ActivityRecord.objects.exists()
    transit.partner.refresh_from_db()
    assert transit.partner.legacy_signature_seen_at is None


def test_partners_there_before_the_method_and_path_were_signed_keep_the_earlier_form_for_90_days(transit):
    """The data migration's step, run on a partner without a date; one created since has none."""
    from django.apps import apps

    migration = importlib.import_module("activities.migrations.0018_partner_signatures_cover_method_and_path")
    assert Partner.objects.get(pk=transit.partner.pk).legacy_signature_until is None

    migration.existing_partners_keep_the_earlier_form(apps, None)

    until = Partner.objects.get(pk=transit.partner.pk).legacy_signature_until
    assert abs(until - timezone.now() - datetime.timedelta(days=90)) < datetime.timedelta(minutes=1)


def check_signature(partner, scheme: str, *, signed_path: str | None = "/api/v1/partner/signature"):
    """`GET /api/v1/partner/signature`, empty body, signed for `signed_path` (None: the legacy form)."""
    stamp, request_id = str(int(time.time())), uuid.uuid4().hex
    message = message_of("GET", signed_path, stamp, request_id, b"")
    return APIClient().get(
        "/api/v1/partner/signature",
        HTTP_X_PARTNER_KEY=partner.partner.api_key,
        HTTP_X_TIMESTAMP=stamp,
        HTTP_X_PARTNER_REQUEST_ID=request_id,
        HTTP_X_SIGNATURE=sign(scheme, partner.signing_secret, message),
    )


def test_a_partner_checks_its_signing_and_learns_the_form_it_signed_in(transit, scheme):
    until = timezone.now() + datetime.timedelta(days=30)
    use_scheme(transit, scheme, legacy_signature_until=until)

    current = check_signature(transit, scheme)
    legacy = check_signature(transit, scheme, signed_path=None)
    as_a_post = check_signature(transit, scheme, signed_path="/api/v1/partner/records")

    assert current.status_code == 200
    answer = current.json()
    assert datetime.datetime.fromisoformat(answer.pop("legacy_signature_until")) == until
    assert answer == {
        "partner": transit.partner.code,
        "signature_scheme": scheme,
        "signed_form": "method_and_path",
    }
    assert (legacy.json()["signed_form"], "Sunset" in legacy) == ("legacy", True)
    assert as_a_post.json()["error"]["code"] == "partner_signature_invalid"
