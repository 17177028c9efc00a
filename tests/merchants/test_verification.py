"""Verification at the counter: once, only here, only while valid; each refusal with its own code."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing
from django.utils import timezone
from PIL import Image

from core.api.errors import ApplicationError
from merchants.coupon_tokens import TOKEN_MAX_AGE_SECONDS, TOKEN_SALT, coupon_token_make, coupon_token_read
from merchants.models import Coupon
from merchants.services import offer_redeem
from tests.merchants.factories import OfferFactory

pytestmark = pytest.mark.django_db

VERIFY = "/api/v1/merchant/verifications"


@pytest.fixture
def coupon(shop, citizen) -> Coupon:
    offer = OfferFactory(merchant=shop.merchant, price_coins=10, limit_per_person=5)
    return offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_a_clerk_verifies_by_the_typed_code(shop, coupon):
    response = shop.clerk_client.post(VERIFY, {"code": coupon.display_code})

    assert response.status_code == 200
    assert response.json()["status"] == "verified"
    assert response.json()["offer_title"] == coupon.offer.title
    coupon.refresh_from_db()
    assert coupon.status == "verified"
    assert coupon.verified_by == shop.clerk
    assert coupon.verified_at is not None


@pytest.mark.parametrize("typed", ["lower", "spaced", "plain"])
def test_typed_codes_forgive_case_spaces_and_dashes(shop, coupon, typed):
    code = {"lower": coupon.display_code.lower(), "spaced": " ".join(coupon.code), "plain": coupon.code}[
        typed
    ]
    assert shop.clerk_client.post(VERIFY, {"code": code}).status_code == 200


def test_a_clerk_verifies_by_the_scanned_qr_token(shop, citizen_client, coupon):
    token = citizen_client.get(f"/api/v1/coupons/{coupon.public_id}/token").json()["token"]

    response = shop.clerk_client.post(VERIFY, {"token": token})

    assert response.status_code == 200
    assert response.json()["id"] == str(coupon.public_id)


def test_the_owner_can_verify_too(shop, coupon):
    assert shop.owner_client.post(VERIFY, {"code": coupon.code}).status_code == 200


def test_a_used_coupon_is_refused_as_already_used(shop, coupon):
    shop.clerk_client.post(VERIFY, {"code": coupon.code})

    again = shop.clerk_client.post(VERIFY, {"code": coupon.code})

    assert again.status_code == 409
    assert error_code(again) == "coupon_already_used"
    verified_at = Coupon.objects.get(pk=coupon.pk).verified_at
    assert again.json()["error"]["fields"] == {"verified_at": timezone.localtime(verified_at).isoformat()}
    assert again.json()["error"]["fields"]["verified_at"].endswith("+08:00")
    assert again.json()["error"]["message"] == "This coupon has already been used."


def test_an_expired_coupon_is_refused_as_expired(shop, coupon):
    expired = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # midnight of 21 November in Shanghai
    Coupon.objects.filter(pk=coupon.pk).update(valid_until=expired)

    response = shop.clerk_client.post(VERIFY, {"code": coupon.code})

    assert response.status_code == 409
    assert error_code(response) == "coupon_expired"
    assert response.json()["error"]["fields"] == {"valid_until": "2026-11-21T00:00:00+08:00"}
    assert Coupon.objects.get(pk=coupon.pk).status == "issued"


def test_a_coupon_expired_by_the_daily_job_is_refused_as_expired(shop, coupon):
    Coupon.objects.filter(pk=coupon.pk).update(status="expired", expired_at=timezone.now())
    assert error_code(shop.clerk_client.post(VERIFY, {"code": coupon.code})) == "coupon_expired"


def test_another_merchants_coupon_is_refused(other_shop, coupon):
    response = other_shop.clerk_client.post(VERIFY, {"code": coupon.code})

    assert response.status_code == 403
    assert error_code(response) == "coupon_other_merchant"
    assert Coupon.objects.get(pk=coupon.pk).status == "issued"


def test_another_merchants_qr_token_is_refused(other_shop, coupon):
    token = coupon_token_make(coupon_public_id=coupon.public_id).token
    assert error_code(other_shop.clerk_client.post(VERIFY, {"token": token})) == "coupon_other_merchant"


def test_an_unknown_code_is_not_found(shop, coupon):
    response = shop.clerk_client.post(VERIFY, {"code": "ABCD-EFGH-JKLM"})
    assert response.status_code == 404
    assert error_code(response) == "coupon_not_found"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: "not-a-token", id="garbage"),
        pytest.param(
            lambda: "0123456789abcdef0123456789abcdef:1abcde:forgedsignatureforgedsignature",
            id="bad-signature",
        ),
        pytest.param(
            lambda: signing.TimestampSigner(salt="another-salt").sign("0123456789abcdef0123456789abcdef"),
            id="other-salt",
        ),
    ],
)
def test_a_forged_token_is_refused(shop, coupon, token):
    response = shop.clerk_client.post(VERIFY, {"token": token()})
    assert response.status_code == 400
    assert error_code(response) == "coupon_token_forged"
    assert Coupon.objects.get(pk=coupon.pk).status == "issued"


def test_a_tampered_token_is_refused_as_forged(shop, coupon, other_shop, citizen):
    other_offer = OfferFactory(merchant=shop.merchant, price_coins=10)
    other_coupon = offer_redeem(user=citizen, offer_public_id=other_offer.public_id).coupon
    value, timestamp, signature = coupon_token_make(coupon_public_id=coupon.public_id).token.split(":")
    tampered = f"{other_coupon.public_id.hex}:{timestamp}:{signature}"

    assert error_code(shop.clerk_client.post(VERIFY, {"token": tampered})) == "coupon_token_forged"


def test_a_stale_token_is_refused_as_stale(shop, coupon, monkeypatch):
    token = coupon_token_make(coupon_public_id=coupon.public_id).token
    later = timezone.now().timestamp() + TOKEN_MAX_AGE_SECONDS + 5
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)

    response = shop.clerk_client.post(VERIFY, {"token": token})

    assert response.status_code == 400
    assert error_code(response) == "coupon_token_stale"
    assert "refresh" in response.json()["error"]["message"]
    assert Coupon.objects.get(pk=coupon.pk).status == "issued"


def test_a_token_is_signed_with_a_key_of_its_own_not_secret_key():
    # Before, Django's signer took SECRET_KEY's: whoever held it could make any coupon's token.
    token = coupon_token_make(coupon_public_id=Coupon().public_id).token
    with pytest.raises(signing.BadSignature):
        signing.TimestampSigner().unsign(token)
    with pytest.raises(signing.BadSignature):
        signing.TimestampSigner(salt=TOKEN_SALT).unsign(token)
    assert coupon_token_read(token=token)


def test_a_token_signed_before_a_rotation_reads_until_its_key_is_removed(settings):
    coupon_id = Coupon().public_id
    settings.COUPON_TOKEN_KEYS = ["old:" + "A" * 43]
    token = coupon_token_make(coupon_public_id=coupon_id).token

    settings.COUPON_TOKEN_KEYS = ["new:" + "B" * 43, "old:" + "A" * 43]
    assert coupon_token_read(token=token) == coupon_id
    assert coupon_token_make(coupon_public_id=coupon_id).token != token

    settings.COUPON_TOKEN_KEYS = ["new:" + "B" * 43]
    with pytest.raises(ApplicationError) as refused:
        coupon_token_read(token=token)
    assert refused.value.error.code == "coupon_token_forged"


def test_either_a_token_or_a_code_is_required(shop):
    assert error_code(shop.clerk_client.post(VERIFY, {})) == "validation_failed"
    assert error_code(shop.clerk_client.post(VERIFY, {"code": "A", "token": "B"})) == "validation_failed"


def test_messages_are_in_chinese_for_a_chinese_counter(shop, coupon):
    shop.clerk_client.post(VERIFY, {"code": coupon.code})
    again = shop.clerk_client.post(VERIFY, {"code": coupon.code}, HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert again.json()["error"]["message"] == "此券已被使用。"


# --- The coupon's QR code, for the holder ---------------------------------------------------------


def test_the_qr_code_is_a_png_carrying_a_fresh_token_and_the_code_in_text(citizen_client, coupon, shop):
    response = citizen_client.get(f"/api/v1/coupons/{coupon.public_id}/qr.png")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "no-store"
    assert response["X-Coupon-Code"] == coupon.display_code
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    assert image.size[0] == image.size[1] >= 200


def test_the_token_endpoint_says_when_to_refresh(citizen_client, coupon):
    body = citizen_client.get(f"/api/v1/coupons/{coupon.public_id}/token").json()

    assert body["code"] == coupon.display_code
    assert body["refresh_after_seconds"] < TOKEN_MAX_AGE_SECONDS
    assert body["token"].split(":")[0] == coupon.public_id.hex


def test_a_refreshed_token_differs_but_both_verify_while_fresh(citizen_client, coupon, shop, monkeypatch):
    first = citizen_client.get(f"/api/v1/coupons/{coupon.public_id}/token").json()["token"]
    later = timezone.now().timestamp() + 61
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    second = citizen_client.get(f"/api/v1/coupons/{coupon.public_id}/token").json()["token"]

    assert first != second
    assert shop.clerk_client.post(VERIFY, {"token": second}).status_code == 200


def test_a_used_coupon_has_no_qr_code(citizen_client, coupon, shop):
    shop.clerk_client.post(VERIFY, {"code": coupon.code})

    response = citizen_client.get(f"/api/v1/coupons/{coupon.public_id}/qr.png")

    assert response.status_code == 409
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == {
        "code": "coupon_not_usable",
        "message": "This coupon can no longer be used.",
        "fields": {"status": "verified"},
    }


def test_someone_elses_coupon_is_not_found(client_for, coupon):
    from tests.accounts.factories import UserFactory

    stranger = client_for(UserFactory())
    for path in ("", "/token", "/qr.png"):
        response = stranger.get(f"/api/v1/coupons/{coupon.public_id}{path}")
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


def test_typed_codes_cannot_be_guessed_by_brute_force(shop, coupon):
    for _ in range(60):
        shop.clerk_client.post(VERIFY, {"code": "AAAA-AAAA-AAAA"})

    response = shop.clerk_client.post(VERIFY, {"code": coupon.code})

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert Coupon.objects.get(pk=coupon.pk).status == "issued"


def test_a_coupon_past_validity_shows_expired_before_the_daily_job(citizen_client, coupon):
    Coupon.objects.filter(pk=coupon.pk).update(valid_until=timezone.now() - timedelta(minutes=1))

    shown = citizen_client.get(f"/api/v1/coupons/{coupon.public_id}").json()
    qr = citizen_client.get(f"/api/v1/coupons/{coupon.public_id}/qr.png")
    issued = citizen_client.get("/api/v1/coupons?status=issued").json()["results"]
    expired = citizen_client.get("/api/v1/coupons?status=expired").json()["results"]

    assert shown["status"] == "expired"
    assert qr.json()["error"]["fields"] == {"status": "expired"}
    assert issued == []
    assert [item["id"] for item in expired] == [str(coupon.public_id)]
