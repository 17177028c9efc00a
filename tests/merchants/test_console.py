"""The merchant console through Django's test client: sign-in and its limits, only one's own
merchant, owners' offers, staff and reports, clerks' verification and its limits, both languages."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from accounts.models import User
from merchants.console import ratelimit
from merchants.models import Coupon, Merchant, MerchantStaff, Offer
from merchants.services import offer_redeem
from tests.accounts.factories import UserFactory
from tests.merchants.factories import MerchantFactory, OfferFactory, StaffFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def picture() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 60)).save(buffer, format="PNG")
    return SimpleUploadedFile("coffee.png", buffer.getvalue(), content_type="image/png")


OFFER_POST = {
    "title": "¥5 off a coffee",
    "description": "Any size.",
    "category": "food_and_drink",
    "price_coins": "50",
    "total_stock": "100",
    "limit_per_person": "1",
    "sale_starts_at": "2030-01-01T09:00",
    "sale_ends_at": "2030-02-01T09:00",
    "coupon_valid_days": "30",
}


@pytest.fixture
def coupon(shop, citizen) -> Coupon:
    offer = OfferFactory(merchant=shop.merchant, title="¥5 off", price_coins=10, limit_per_person=5)
    return offer_redeem(user=citizen, offer_public_id=offer.public_id).coupon


# --- Signing in ---------------------------------------------------------------------------------


def test_an_owner_signs_in_with_a_password_and_lands_on_the_offers(shop):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/console/sign-in/")
    token = page.cookies["csrftoken"].value

    response = client.post(
        "/console/sign-in/",
        {"username": shop.owner.username, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 302
    assert response["Location"] == "/console/"
    assert client.get("/console/").status_code == 200


def test_sign_in_without_the_csrf_token_is_refused(shop):
    client = Client(enforce_csrf_checks=True)

    response = client.post("/console/sign-in/", {"username": shop.owner.username, "password": PASSWORD})

    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_a_person_who_is_not_merchant_staff_cannot_sign_in(db):
    citizen = UserFactory()

    response = Client().post("/console/sign-in/", {"username": citizen.username, "password": PASSWORD})

    assert response.status_code == 400
    assert "does not work for a merchant" in response.content.decode()


def test_sign_in_is_refused_after_five_wrong_passwords_even_with_the_right_one(shop):
    client = Client()
    for _attempt in range(ratelimit.SIGN_IN_PER_USERNAME.attempts):
        assert (
            client.post(
                "/console/sign-in/", {"username": shop.owner.username, "password": "wrong"}
            ).status_code
            == 400
        )

    response = client.post("/console/sign-in/", {"username": shop.owner.username, "password": PASSWORD})

    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def full_width(text: str) -> str:
    """The same letters and digits in their full-width forms, which NFKC turns back into ASCII."""
    return "".join(chr(ord(character) + 0xFEE0) for character in text)


def test_the_sign_in_limit_holds_for_another_spelling_of_the_same_username(shop):
    username = shop.owner.username
    for _attempt in range(ratelimit.SIGN_IN_PER_USERNAME.attempts):
        Client().post("/console/sign-in/", {"username": username, "password": "wrong"})

    spellings = [full_width(username), f" {username.upper()} ", full_width(username[:1]) + username[1:]]
    responses = [
        Client().post("/console/sign-in/", {"username": spelling, "password": PASSWORD})
        for spelling in spellings
    ]

    assert [response.status_code for response in responses] == [429, 429, 429]


def test_a_full_width_spelling_signs_in_as_the_account_it_normalizes_to(shop):
    client = Client()

    response = client.post(
        "/console/sign-in/", {"username": full_width(shop.owner.username), "password": PASSWORD}
    )

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(shop.owner.pk)


def test_correct_sign_ins_do_not_use_up_the_address_s_attempts(shop):
    statuses = [
        Client()
        .post("/console/sign-in/", {"username": shop.owner.username, "password": PASSWORD})
        .status_code
        for _attempt in range(ratelimit.SIGN_IN_PER_ADDRESS.attempts + 1)
    ]

    assert statuses == [302] * (ratelimit.SIGN_IN_PER_ADDRESS.attempts + 1)


def test_a_correct_sign_in_clears_the_person_s_failed_attempts(shop):
    for _attempt in range(ratelimit.SIGN_IN_PER_USERNAME.attempts - 1):
        Client().post("/console/sign-in/", {"username": shop.owner.username, "password": "wrong"})
    Client().post("/console/sign-in/", {"username": shop.owner.username, "password": PASSWORD})

    statuses = [
        Client().post("/console/sign-in/", {"username": shop.owner.username, "password": "wrong"}).status_code
        for _attempt in range(ratelimit.SIGN_IN_PER_USERNAME.attempts)
    ]

    assert statuses == [400] * ratelimit.SIGN_IN_PER_USERNAME.attempts


def test_pages_need_a_signed_in_person(db):
    response = Client().get("/console/verify/")

    assert response.status_code == 302
    assert response["Location"] == "/console/sign-in/?next=/console/verify/"


def test_staff_of_a_merchant_waiting_for_review_are_told_so(db):
    owner = StaffFactory(merchant=MerchantFactory(status=Merchant.Status.PENDING)).user

    response = signed_in(owner).get("/console/")

    assert response.status_code == 403
    assert "has not been approved yet" in response.content.decode()


def test_sign_out_ends_the_session(shop):
    client = signed_in(shop.owner)

    client.post("/console/sign-out/")

    assert client.get("/console/").status_code == 302


# --- Owners -------------------------------------------------------------------------------------


def test_an_owner_sees_only_their_own_offers(shop, other_shop):
    mine = OfferFactory(merchant=shop.merchant, title="Mine")
    theirs = OfferFactory(merchant=other_shop.merchant, title="Theirs")
    client = signed_in(shop.owner)

    page = client.get("/console/").content.decode()

    assert "Mine" in page
    assert "Theirs" not in page
    assert client.get(f"/console/offers/{theirs.public_id}/").status_code == 404
    assert client.post(f"/console/offers/{theirs.public_id}/pause/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Offer.Status.LIVE
    assert client.get(f"/console/offers/{mine.public_id}/").status_code == 200


def test_an_owner_creates_an_offer_with_a_picture_and_submits_it(shop):
    client = signed_in(shop.owner)

    response = client.post(
        "/console/offers/new/", {**OFFER_POST, "image": picture(), "submit_for_review": "1"}
    )

    assert response.status_code == 302
    offer = Offer.objects.get(merchant=shop.merchant)
    assert offer.status == Offer.Status.PENDING_REVIEW
    assert offer.stock_left == 100
    assert offer.image.name.endswith(".jpg")
    assert offer.thumbnail.name.endswith("-thumb.jpg")
    assert "Waiting for review" in client.get("/console/").content.decode()


def test_a_file_that_is_not_a_picture_creates_no_offer(shop):
    fake = SimpleUploadedFile("coffee.png", b"not a picture", content_type="image/png")

    response = signed_in(shop.owner).post("/console/offers/new/", {**OFFER_POST, "image": fake})

    assert response.status_code == 200
    assert not Offer.objects.filter(merchant=shop.merchant).exists()


def test_a_sale_that_ends_before_it_starts_is_refused(shop):
    post = {**OFFER_POST, "sale_ends_at": "2029-12-01T09:00"}

    response = signed_in(shop.owner).post("/console/offers/new/", post)

    assert "The sale must end after it starts." in response.content.decode()
    assert not Offer.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price_coins", "0"),
        ("price_coins", "1000001"),
        ("price_coins", "99999999999999999999"),
        ("total_stock", "2147483648"),
        ("limit_per_person", "0"),
        ("coupon_valid_days", "0"),
        ("coupon_valid_days", "9223372036854775808"),
    ],
)
def test_a_number_out_of_the_offer_s_bounds_is_a_form_error_in_both_forms(shop, field, value):
    # The same bounds as the API's (merchants.models.OFFER_NUMBER_BOUNDS); past them was a 500.
    offer = OfferFactory(merchant=shop.merchant)
    client = signed_in(shop.owner)

    created = client.post("/console/offers/new/", {**OFFER_POST, field: value})
    edited = client.post(f"/console/offers/{offer.public_id}/", {**OFFER_POST, field: value})

    assert created.status_code == edited.status_code == 200
    assert "errorlist" in created.content.decode()
    assert "errorlist" in edited.content.decode()
    assert list(Offer.objects.values_list("pk", flat=True)) == [offer.pk]
    offer.refresh_from_db()
    assert str(getattr(offer, field)) != value


def test_an_owner_pauses_and_resumes_a_live_offer(shop):
    offer = OfferFactory(merchant=shop.merchant)
    client = signed_in(shop.owner)

    client.post(f"/console/offers/{offer.public_id}/pause/")
    offer.refresh_from_db()
    assert offer.status == Offer.Status.PAUSED

    client.post(f"/console/offers/{offer.public_id}/resume/")
    offer.refresh_from_db()
    assert offer.status == Offer.Status.LIVE


def test_editing_a_live_offer_s_price_sends_it_back_to_review(shop):
    offer = OfferFactory(merchant=shop.merchant)
    post = {**OFFER_POST, "price_coins": "80"}

    signed_in(shop.owner).post(f"/console/offers/{offer.public_id}/", post)

    offer.refresh_from_db()
    assert (offer.price_coins, offer.status) == (80, Offer.Status.PENDING_REVIEW)


def test_an_owner_adds_and_removes_a_clerk(shop):
    person = UserFactory(nickname="小王")
    client = signed_in(shop.owner)

    client.post("/console/staff/", {"user_id": str(person.public_id), "role": "clerk"})
    member = MerchantStaff.objects.get(user=person)
    assert (member.merchant, member.role) == (shop.merchant, "clerk")

    client.post(f"/console/staff/{member.public_id}/remove/")
    assert not MerchantStaff.objects.filter(user=person).exists()


def test_an_unknown_person_cannot_be_added(shop):
    response = signed_in(shop.owner).post(
        "/console/staff/", {"user_id": "00000000-0000-0000-0000-000000000000", "role": "clerk"}
    )

    assert "No person with this id was found." in response.content.decode()
    assert MerchantStaff.objects.filter(merchant=shop.merchant).count() == 2


def test_the_report_and_its_csv_count_the_merchant_s_coupons(shop, coupon):
    client = signed_in(shop.owner)

    page = client.get("/console/reports/").content.decode()
    csv = client.get("/console/reports.csv")

    assert "¥5 off" in page
    assert csv["Content-Type"] == "text/csv; charset=utf-8"
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("offer_id,title,status,price_coins,issued,verified")
    assert ",¥5 off,live,10,1,0,0,1,0.0,10" in lines[1]


def test_a_report_in_year_9999_is_a_form_error_not_a_crash(shop):
    client = signed_in(shop.owner)
    client.raise_request_exception = False
    dates = {"date_from": "2026-01-01", "date_to": "9999-12-31"}

    page = client.get("/console/reports/", dates)
    csv = client.get("/console/reports.csv", dates)

    assert page.status_code == 200
    assert "2000-01-01" in page.content.decode()
    assert csv.status_code == 200


def test_clerks_cannot_open_owner_pages(shop):
    client = signed_in(shop.clerk)

    assert client.get("/console/").status_code == 302  # to the verification page
    for path in ("/console/offers/new/", "/console/staff/", "/console/reports/", "/console/reports.csv"):
        response = client.get(path)
        assert response.status_code == 403
        assert 'data-code="owner_role_required"' in response.content.decode()


# --- Clerks -------------------------------------------------------------------------------------


def test_a_clerk_verifies_a_typed_code_and_sees_the_offer_and_a_masked_name(shop, coupon):
    coupon.user.nickname = "林小伟"
    coupon.user.save(update_fields=["nickname"])

    response = signed_in(shop.clerk).post("/console/verify/", {"code": coupon.display_code.lower()})

    page = response.content.decode()
    assert response.status_code == 200
    assert "Verified: ¥5 off" in page
    assert "Redeemed by 林**" in page
    assert "林小伟" not in page
    coupon.refresh_from_db()
    assert (coupon.status, coupon.verified_by) == ("verified", shop.clerk)
    assert coupon.display_code in page.split('id="recent"')[1]  # listed under "used here today"


def test_the_second_attempt_is_refused_as_already_used(shop, coupon):
    client = signed_in(shop.clerk)
    client.post("/console/verify/", {"code": coupon.code})

    response = client.post("/console/verify/", {"code": coupon.code})

    assert response.status_code == 409
    assert 'data-code="coupon_already_used"' in response.content.decode()
    assert "This coupon has already been used." in response.content.decode()


def test_a_clerk_of_another_merchant_is_refused_and_the_coupon_stays_usable(other_shop, coupon):
    response = signed_in(other_shop.clerk).post("/console/verify/", {"code": coupon.code})

    assert response.status_code == 403
    assert 'data-code="coupon_other_merchant"' in response.content.decode()
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.ISSUED


def test_a_scanned_qr_token_verifies(shop, coupon):
    from merchants.coupon_tokens import coupon_token_make

    token = coupon_token_make(coupon_public_id=coupon.public_id).token

    response = signed_in(shop.clerk).post("/console/verify/", {"token": token})

    assert response.status_code == 200
    assert 'data-result="verified"' in response.content.decode()


def test_verification_attempts_are_limited_per_clerk(shop, coupon):
    client = signed_in(shop.clerk)
    for _attempt in range(ratelimit.VERIFY_PER_USER.attempts):
        client.post("/console/verify/", {"code": "AAAA-BBBB-CCCC"})

    response = client.post("/console/verify/", {"code": coupon.code})

    assert response.status_code == 429
    assert "Too many verification attempts" in response.content.decode()
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.ISSUED


def test_a_clerk_s_verification_tries_are_one_budget_for_the_console_and_the_api(shop, coupon):
    console = signed_in(shop.clerk)
    half = ratelimit.VERIFY_PER_USER.attempts // 2
    for _attempt in range(half):
        console.post("/console/verify/", {"code": "AAAA-BBBB-CCCC"})
    for _attempt in range(ratelimit.VERIFY_PER_USER.attempts - half):
        shop.clerk_client.post("/api/v1/merchant/verifications", {"code": "AAAA-BBBB-CCCC"})

    by_console = console.post("/console/verify/", {"code": coupon.code})
    by_api = shop.clerk_client.post("/api/v1/merchant/verifications", {"code": coupon.code})

    assert by_console.status_code == 429
    assert by_api.status_code == 429
    assert by_api.json()["error"]["code"] == "rate_limited"
    assert 0 < by_api.json()["error"]["fields"]["retry_after_seconds"] <= 60
    coupon.refresh_from_db()
    assert coupon.status == Coupon.Status.ISSUED


def test_the_console_speaks_chinese_and_english(shop, coupon):
    client = signed_in(shop.clerk)

    chinese = client.post("/console/verify/", {"code": "AAAA-BBBB-CCCC"}, HTTP_ACCEPT_LANGUAGE="zh-Hans")
    client.post("/console/language/", {"language": "en", "next": "/console/verify/"})
    english = client.post("/console/verify/", {"code": "AAAA-BBBB-CCCC"}, HTTP_ACCEPT_LANGUAGE="zh-Hans")

    assert "核销" in chinese.content.decode()
    assert "No coupon has this code." in english.content.decode()


def test_an_owner_makes_a_clerk_an_owner_but_the_last_owner_stays(shop):
    client = signed_in(shop.owner)
    clerk = MerchantStaff.objects.get(user=shop.clerk)
    owner = MerchantStaff.objects.get(user=shop.owner)

    client.post(f"/console/staff/{owner.public_id}/role/", {"role": "clerk"})
    owner.refresh_from_db()
    assert owner.role == "owner"

    client.post(f"/console/staff/{clerk.public_id}/role/", {"role": "owner"})
    clerk.refresh_from_db()
    assert clerk.role == "owner"
