"""The merchant console in a real Chromium: an owner's new offer, a clerk at the counter.

With DOCS_SCREENSHOTS=1 the clerk's verification page is also saved to docs/images/ for the README.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from merchants.models import Coupon, MerchantStaff, Offer
from merchants.services import offer_redeem
from tests import docs_screenshots
from tests.accounts.factories import UserFactory
from tests.merchants.factories import MerchantFactory, OfferFactory, StaffFactory
from tests.rewards.factories import fund_wallet

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-password"


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/console/sign-in/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#sign-in")


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (31, 122, 77)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def shop_with_coupon():
    merchant = MerchantFactory(name="绿叶咖啡 Green Leaf Coffee")
    clerk = StaffFactory(merchant=merchant, role=MerchantStaff.Role.CLERK, user__username="clerk").user
    offer = OfferFactory(merchant=merchant, title="¥5 off any coffee", price_coins=30)
    citizen = UserFactory(nickname="林小伟")
    fund_wallet(citizen, 100)
    coupon = offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon
    return clerk, coupon


def test_an_owner_creates_an_offer_with_a_picture_and_sees_it_waiting_for_review(live_server, page):
    merchant = MerchantFactory(name="Green Leaf Coffee")
    StaffFactory(merchant=merchant, role=MerchantStaff.Role.OWNER, user__username="owner")

    sign_in(page, live_server, "owner")
    page.click("text=New offer")
    page.fill("#id_title", "¥5 off a latte")
    page.fill("#id_description", "Any size, any milk.")
    page.select_option("#id_category", "food_and_drink")
    page.fill("#id_price_coins", "50")
    page.fill("#id_total_stock", "200")
    page.fill("#id_limit_per_person", "2")
    page.fill("#id_sale_starts_at", "2030-01-01T09:00")
    page.fill("#id_sale_ends_at", "2030-03-01T21:00")
    page.set_input_files(
        "#id_image", files=[{"name": "latte.png", "mimeType": "image/png", "buffer": png_bytes()}]
    )
    page.click("button[name=submit_for_review]")

    card = page.locator(".offer", has_text="¥5 off a latte")
    assert card.locator("[data-status]").get_attribute("data-status") == "pending_review"
    assert "Waiting for review" in card.inner_text()
    assert card.locator("img").get_attribute("src").endswith("-thumb.jpg")
    offer = Offer.objects.get(merchant=merchant)
    assert (offer.status, offer.price_coins, offer.total_stock) == ("pending_review", 50, 200)


def test_a_clerk_verifies_a_redeemed_coupon_by_typing_its_code_once(
    live_server, mobile_page, shop_with_coupon
):
    clerk, coupon = shop_with_coupon

    sign_in(mobile_page, live_server, "clerk")
    mobile_page.fill("#id_code", coupon.display_code.lower())
    mobile_page.click("#verify-submit")

    result = mobile_page.locator("#result")
    assert result.get_attribute("data-result") == "verified"
    assert "Verified: ¥5 off any coffee" in result.inner_text()
    assert "Redeemed by 林**" in result.inner_text()
    docs_screenshots.save(mobile_page, "console-verify")

    mobile_page.fill("#id_code", coupon.code)
    mobile_page.click("#verify-submit")

    assert mobile_page.locator("#result").get_attribute("data-code") == "coupon_already_used"
    assert "This coupon has already been used." in mobile_page.locator("#result").inner_text()
    coupon.refresh_from_db()
    assert (coupon.status, coupon.verified_by_id) == (Coupon.Status.VERIFIED, clerk.pk)


def test_a_clerk_of_another_merchant_is_refused(live_server, mobile_page, shop_with_coupon):
    _clerk, coupon = shop_with_coupon
    StaffFactory(role=MerchantStaff.Role.CLERK, user__username="other-clerk")

    sign_in(mobile_page, live_server, "other-clerk")
    mobile_page.fill("#id_code", coupon.display_code)
    mobile_page.click("#verify-submit")

    assert mobile_page.locator("#result").get_attribute("data-code") == "coupon_other_merchant"
    assert "for another merchant" in mobile_page.locator("#result").inner_text()
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.ISSUED
