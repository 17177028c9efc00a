"""Offers: drafts, review by operators, changes that go back to review, stock, pictures."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from core.api.errors import ApplicationError
from merchants import services
from merchants.images import MAX_PIXELS
from merchants.models import Merchant, Offer
from merchants.services import offer_redeem
from tests.accounts.factories import DistrictFactory, UserFactory
from tests.merchants.factories import OfferFactory

pytestmark = pytest.mark.django_db


def offer_body(**overrides):
    now = timezone.now()
    return {
        "title": "美式咖啡一杯",
        "description": "中杯",
        "category": "food_and_drink",
        "price_coins": 60,
        "total_stock": 200,
        "limit_per_person": 2,
        "sale_starts_at": (now - timedelta(hours=1)).isoformat(),
        "sale_ends_at": (now + timedelta(days=30)).isoformat(),
        "coupon_valid_days": 14,
        "districts": [DistrictFactory(code="kecheng").code],
        "refunds_on_expiry": True,
        **overrides,
    }


def picture(size=(800, 600), image_format="PNG", colour=(30, 120, 60)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=image_format)
    return SimpleUploadedFile(f"p.{image_format.lower()}", buffer.getvalue(), content_type="image/png")


def png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A PNG whose header claims 3.6 gigapixels, with a tiny body: past Pillow's own refusal limit."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width * 3 + 1) * 8, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.fixture
def operator():
    return UserFactory(is_staff=True)


def test_a_new_offer_is_a_draft_until_reviewed(shop, operator):
    response = shop.owner_client.post("/api/v1/merchant/offers", offer_body(), format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["stock_left"], body["districts"]) == ("draft", 200, ["kecheng"])
    assert body["refunds_on_expiry"] is True
    offer = Offer.objects.get(public_id=body["id"])

    submitted = shop.owner_client.post(f"/api/v1/merchant/offers/{offer.public_id}/submit")
    assert submitted.json()["status"] == "pending_review"
    services.offer_approve(offer=offer, reviewer=operator, seen_at=timezone.now())
    assert Offer.objects.get(pk=offer.pk).status == "live"


def test_refund_on_expiry_defaults_to_no(shop):
    body = offer_body()
    del body["refunds_on_expiry"]
    assert (
        shop.owner_client.post("/api/v1/merchant/offers", body, format="json").json()["refunds_on_expiry"]
        is False
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price_coins", 0),
        ("total_stock", -1),
        ("limit_per_person", 0),
        ("coupon_valid_days", 0),
        ("category", "weapons"),
        ("districts", ["nowhere"]),
    ],
)
def test_offer_fields_are_validated(shop, field, value):
    response = shop.owner_client.post("/api/v1/merchant/offers", offer_body(**{field: value}), format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_the_sale_must_end_after_it_starts(shop):
    now = timezone.now()
    response = shop.owner_client.post(
        "/api/v1/merchant/offers",
        offer_body(sale_starts_at=now.isoformat(), sale_ends_at=(now - timedelta(days=1)).isoformat()),
        format="json",
    )
    assert response.json()["error"]["fields"] == {"sale_ends_at": ["The sale must end after it starts."]}


def test_an_offer_of_an_unapproved_merchant_cannot_go_live(shop, operator):
    offer = OfferFactory(merchant=shop.merchant, status="pending_review", is_reviewed=False)
    Merchant.objects.filter(pk=shop.merchant.pk).update(status="rejected")
    with pytest.raises(ApplicationError) as refused:
        services.offer_approve(offer=offer, reviewer=operator, seen_at=timezone.now())
    assert refused.value.error.code == "merchant_not_approved"


def test_an_operator_sends_an_offer_back_with_a_note(shop, operator):
    offer = OfferFactory(merchant=shop.merchant, status="pending_review", is_reviewed=False)
    services.offer_reject(offer=offer, reviewer=operator, note="Say which cup size")
    offer.refresh_from_db()
    assert (offer.status, offer.review_note) == ("draft", "Say which cup size")


def test_changing_a_live_offer_sends_it_back_to_review_and_off_the_catalog(shop, citizen_client):
    offer = OfferFactory(merchant=shop.merchant)

    response = shop.owner_client.patch(f"/api/v1/merchant/offers/{offer.public_id}", {"price_coins": 10})

    assert response.json()["status"] == "pending_review"
    assert response.json()["price_coins"] == 10
    assert citizen_client.get("/api/v1/catalog/offers").json()["count"] == 0
    assert citizen_client.get(f"/api/v1/catalog/offers/{offer.public_id}").status_code == 409


def test_changing_the_districts_of_a_live_offer_needs_review(shop):
    offer = OfferFactory(merchant=shop.merchant)
    district = DistrictFactory()
    response = shop.owner_client.patch(
        f"/api/v1/merchant/offers/{offer.public_id}", {"districts": [district.code]}, format="json"
    )
    assert response.json()["status"] == "pending_review"


def test_an_unchanged_patch_keeps_the_offer_live(shop):
    offer = OfferFactory(merchant=shop.merchant)
    response = shop.owner_client.patch(f"/api/v1/merchant/offers/{offer.public_id}", {"title": offer.title})
    assert response.json()["status"] == "live"


def test_stock_can_grow_and_shrink_but_not_below_what_was_issued(shop, citizen):
    offer = OfferFactory(merchant=shop.merchant, total_stock=10, price_coins=1, limit_per_person=5)
    for _ in range(3):
        offer_redeem(user=citizen, offer_public_id=offer.public_id)
    url = f"/api/v1/merchant/offers/{offer.public_id}"

    grown = shop.owner_client.patch(url, {"total_stock": 20})
    shrunk = shop.owner_client.patch(url, {"total_stock": 3})
    too_low = shop.owner_client.patch(url, {"total_stock": 2})

    assert (grown.json()["total_stock"], grown.json()["stock_left"]) == (20, 17)
    assert (shrunk.json()["total_stock"], shrunk.json()["stock_left"]) == (3, 0)
    assert too_low.json()["error"]["code"] == "offer_stock_too_low"
    offer.refresh_from_db()
    assert (offer.total_stock, offer.stock_left, offer.status) == (3, 0, "live")


def test_a_paused_offer_not_reviewed_since_is_not_resumed(shop):
    offer = OfferFactory(merchant=shop.merchant, status="paused", is_reviewed=False)

    refused = shop.owner_client.post(f"/api/v1/merchant/offers/{offer.public_id}/resume")

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "offer_transition_not_allowed"
    assert refused.json()["error"]["fields"] == {"status": "paused"}
    offer.refresh_from_db()
    assert (offer.status, offer.is_reviewed) == ("paused", False)


def test_pause_resume_and_end(shop):
    offer = OfferFactory(merchant=shop.merchant)
    base = f"/api/v1/merchant/offers/{offer.public_id}"

    assert shop.owner_client.post(f"{base}/pause").json()["status"] == "paused"
    assert shop.owner_client.post(f"{base}/resume").json()["status"] == "live"
    assert shop.owner_client.post(f"{base}/end").json()["status"] == "ended"
    refused = shop.owner_client.post(f"{base}/resume")
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "offer_transition_not_allowed",
        "message": "This offer cannot do that in its current state.",
        "fields": {"status": "ended"},
    }
    assert (
        shop.owner_client.patch(base, {"title": "x"}).json()["error"]["code"]
        == "offer_transition_not_allowed"
    )


@pytest.mark.parametrize(("action", "status"), [("submit", "live"), ("pause", "draft"), ("resume", "live")])
def test_transitions_from_the_wrong_state_are_refused(shop, action, status):
    offer = OfferFactory(merchant=shop.merchant, status=status)
    response = shop.owner_client.post(f"/api/v1/merchant/offers/{offer.public_id}/{action}")
    assert response.json()["error"]["code"] == "offer_transition_not_allowed"
    assert Offer.objects.get(pk=offer.pk).status == status


def test_the_merchant_filters_its_offers_by_status(shop):
    OfferFactory(merchant=shop.merchant, status="draft")
    live = OfferFactory(merchant=shop.merchant)
    results = shop.owner_client.get("/api/v1/merchant/offers?status=live").json()["results"]
    assert [offer["id"] for offer in results] == [str(live.public_id)]


# --- Pictures ---------------------------------------------------------------------------------


def test_a_picture_is_re_encoded_with_a_thumbnail(shop):
    offer = OfferFactory(merchant=shop.merchant, status="draft")

    response = shop.owner_client.put(
        f"/api/v1/merchant/offers/{offer.public_id}/image",
        {"image": picture((2400, 1800))},
        format="multipart",
    )

    assert response.status_code == 200
    offer.refresh_from_db()
    with Image.open(offer.image.path) as main, Image.open(offer.thumbnail.path) as thumbnail:
        assert main.format == "JPEG"
        assert max(main.size) == 1600
        assert thumbnail.size == (400, 400)
    assert response.json()["thumbnail_url"].endswith("-thumb.jpg")
    assert response.json()["status"] == "draft"


def test_a_new_picture_on_a_live_offer_goes_to_review(shop):
    offer = OfferFactory(merchant=shop.merchant)
    response = shop.owner_client.put(
        f"/api/v1/merchant/offers/{offer.public_id}/image", {"image": picture()}, format="multipart"
    )
    assert response.json()["status"] == "pending_review"


def test_exif_is_dropped_and_orientation_applied(shop):
    offer = OfferFactory(merchant=shop.merchant, status="draft")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90°: the stored picture must come out upright
    exif[0x010F] = "Secret camera"
    buffer = io.BytesIO()
    Image.new("RGB", (800, 400), (200, 10, 10)).save(buffer, format="JPEG", exif=exif)
    upload = SimpleUploadedFile("p.jpg", buffer.getvalue(), content_type="image/jpeg")

    shop.owner_client.put(
        f"/api/v1/merchant/offers/{offer.public_id}/image", {"image": upload}, format="multipart"
    )

    offer.refresh_from_db()
    with Image.open(offer.image.path) as stored:
        assert stored.size == (400, 800)
        assert not stored.getexif()


@pytest.mark.parametrize(
    ("upload", "code"),
    [
        (SimpleUploadedFile("x.png", b"not an image at all", content_type="image/png"), "image_invalid"),
        (None, "image_invalid"),  # a truncated PNG
        ("gif", "image_invalid"),
        ("small", "image_too_small"),
        ("huge", "image_too_large"),
    ],
)
def test_bad_pictures_are_refused(shop, upload, code):
    offer = OfferFactory(merchant=shop.merchant, status="draft")
    if upload is None:
        data = picture().read()
        upload = SimpleUploadedFile("t.png", data[: len(data) // 2], content_type="image/png")
    elif upload == "gif":
        buffer = io.BytesIO()
        Image.new("RGB", (300, 300)).save(buffer, format="GIF")
        upload = SimpleUploadedFile("x.gif", buffer.getvalue(), content_type="image/gif")
    elif upload == "small":
        upload = picture((150, 150))
    elif upload == "huge":
        side = int(MAX_PIXELS**0.5) + 10
        buffer = io.BytesIO()
        Image.new("1", (side, side)).save(buffer, format="PNG")
        upload = SimpleUploadedFile("huge.png", buffer.getvalue(), content_type="image/png")

    response = shop.owner_client.put(
        f"/api/v1/merchant/offers/{offer.public_id}/image", {"image": upload}, format="multipart"
    )

    assert response.json()["error"]["code"] == code
    offer.refresh_from_db()
    assert not offer.image


def test_a_picture_past_pillows_own_bomb_limit_is_too_large(shop):
    offer = OfferFactory(merchant=shop.merchant, status="draft")
    bomb = SimpleUploadedFile("bomb.png", png_bomb(), content_type="image/png")

    response = shop.owner_client.put(
        f"/api/v1/merchant/offers/{offer.public_id}/image", {"image": bomb}, format="multipart"
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "image_too_large"
    assert response.json()["error"]["fields"] == {"max_pixels": MAX_PIXELS}
    offer.refresh_from_db()
    assert not offer.image


def test_an_oversized_file_is_refused_before_decoding(shop, monkeypatch):
    monkeypatch.setattr("merchants.images.MAX_UPLOAD_BYTES", 1000)
    offer = OfferFactory(merchant=shop.merchant, status="draft")
    response = shop.owner_client.put(
        f"/api/v1/merchant/offers/{offer.public_id}/image", {"image": picture()}, format="multipart"
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "image_too_large"


def test_an_offer_edited_while_waiting_for_review_is_not_approved_as_it_was_seen(shop, operator):
    offer = OfferFactory(merchant=shop.merchant, status="pending_review", is_reviewed=False, price_coins=50)
    seen_at = timezone.now()
    services.offer_update(offer=offer, data={"price_coins": 500})

    with pytest.raises(ApplicationError) as refused:
        services.offer_approve(offer=offer, reviewer=operator, seen_at=seen_at)

    assert refused.value.error.code == "offer_changed_since_seen"
    offer.refresh_from_db()
    assert (offer.status, offer.is_reviewed, offer.price_coins) == ("pending_review", False, 500)
    services.offer_approve(offer=offer, reviewer=operator, seen_at=timezone.now())
    assert Offer.objects.get(pk=offer.pk).status == "live"
