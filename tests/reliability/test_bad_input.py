"""Bad input on every write path that moves money-like state: each answer is a 4xx carrying a
documented error code in the envelope, nothing changes, and the invariants hold afterwards.

Amounts negative, zero, fractional, huge, non-numeric; timestamps in the future, far past, without a
zone; step counts decreasing and superhuman; unicode and 1 MB strings; uploads that are not images,
too big, or decompression bombs; partner requests with a bad signature, a stale timestamp, a replayed
request id or someone else's customer; and mass assignment of balances, statuses, stock, staff flags,
ratings and merchant ids through every write endpoint.
"""

from __future__ import annotations

import datetime
import io
import json
import struct
import uuid
import zlib

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from activities.models import ActivityRecord, DailyCarbon, StepDay
from core.api.errors import REGISTRY
from merchants.models import Coupon, Merchant, MerchantStaff, Offer
from rewards.models import Donation, LedgerAccount, LedgerTransaction
from tests.accounts.factories import UserFactory
from tests.activities.conftest import LOCAL_TZ, ride, signed_headers, yesterday_at
from tests.merchants.factories import MerchantFactory, OfferFactory, StaffFactory
from tests.reliability.conftest import FIGURES, count_response
from tests.reliability.world import partner_batch, rider, transit_partner
from tests.rewards.factories import WelfareProjectFactory, fund_wallet

pytestmark = pytest.mark.django_db

ONE_MEGABYTE = "碳" * (1024 * 1024 // 3 + 1)
BAD_AMOUNTS = [-5, 0, 1.5, "1.5", 10**30, "ten", None, [], {"amount": 1}, True, "", "1e3", "NaN"]


def state() -> dict:
    """Everything a refused request must leave as it was."""
    return {
        "balances": sorted(LedgerAccount.objects.values_list("kind", "owner_id", "balance")),
        "transactions": LedgerTransaction.objects.count(),
        "coupons": Coupon.objects.count(),
        "donations": Donation.objects.count(),
        "stock": sorted(Offer.objects.values_list("id", "stock_left", "total_stock", "status")),
        "records": ActivityRecord.objects.count(),
        "daily": sorted(DailyCarbon.objects.values_list("user_id", "day", "credited_carbon_mg")),
        "steps": sorted(StepDay.objects.values_list("user_id", "day", "steps")),
        "merchants": sorted(Merchant.objects.values_list("id", "status")),
    }


def assert_refused(response, *codes: str) -> None:
    """A 4xx in the envelope with a documented code (one of `codes` when given)."""
    count_response(response.status_code)
    FIGURES["bad inputs tried"] += 1
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"error"}, body
    code = body["error"]["code"]
    assert code in REGISTRY, f"undocumented code {code}"
    assert REGISTRY[code].status == response.status_code, (code, response.status_code)
    if codes:
        assert code in codes, body


@pytest.fixture
def citizen(client_for):
    user = UserFactory()
    fund_wallet(user, 1000)
    return user, client_for(user)


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=[repr(amount)[:12] for amount in BAD_AMOUNTS])
def test_a_donation_of_a_bad_amount_is_refused(citizen, amount):
    user, client = citizen
    project = WelfareProjectFactory()
    before = state()

    response = client.post(
        f"/api/v1/welfare/projects/{project.public_id}/donations",
        {"amount": amount},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )

    assert_refused(response, "validation_failed", "malformed_request")
    assert state() == before


def test_more_than_the_wallet_holds_is_refused(citizen):
    user, client = citizen
    project = WelfareProjectFactory()
    before = state()

    response = client.post(
        f"/api/v1/welfare/projects/{project.public_id}/donations",
        {"amount": 1001},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )

    assert_refused(response)
    assert state() == before


@pytest.mark.parametrize(
    "key", ["short", "x" * 65, "has space", "ключ-ключ-ключ", "a/b/c/d/e/f", "'; DROP TABLE x;--"]
)
def test_a_malformed_idempotency_key_is_refused(citizen, key):
    user, client = citizen
    offer = OfferFactory()
    before = state()

    response = client.post(
        f"/api/v1/catalog/offers/{offer.public_id}/redeem", {}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )

    assert_refused(response, "validation_failed", "idempotency_key_invalid")
    assert state() == before


def _steps(client, days, device_id="device-0123456789abcdef"):
    return client.post("/api/v1/activities/steps", {"days": days, "device_id": device_id}, format="json")


@pytest.fixture
def walker(client_for, authorize_steps):
    user = UserFactory()
    authorize_steps(user)
    return user, client_for(user)


@pytest.fixture
def authorize_steps():
    from accounts.models import DataSource
    from accounts.services import data_source_authorize

    return lambda user: data_source_authorize(user=user, source=DataSource.PHONE_STEPS)


def _today() -> datetime.date:
    return datetime.datetime.now(tz=LOCAL_TZ).date()


BAD_STEP_DAYS = {
    "negative": [{"day": "{today}", "steps": -1}],
    "fractional": [{"day": "{today}", "steps": 10.5}],
    "huge": [{"day": "{today}", "steps": 10**12}],
    "text": [{"day": "{today}", "steps": "many"}],
    "not a day": [{"day": "yesterday", "steps": 100}],
    "a timestamp without zone": [{"day": "2026-11-20T10:00:00", "steps": 100}],
    "empty": [],
    # Outside the dates any request may name (core/api/dates.py).
    "before the platform": [{"day": "1970-01-01", "steps": 100}],
    "year 9999": [{"day": "9999-12-31", "steps": 100}],
}
# Refused day by day inside a 200 answer: each day carries its own documented code.
REJECTED_STEP_DAYS = {
    "future day": [{"day": "{tomorrow}", "steps": 100}],
    "far past": [{"day": "2001-01-01", "steps": 100}],
}


@pytest.mark.parametrize("case", list(BAD_STEP_DAYS))
def test_bad_step_counts_are_refused(walker, case):
    user, client = walker
    before = state()

    response = _steps(client, _days(BAD_STEP_DAYS[case]))

    assert_refused(response)
    assert state() == before


def _days(template: list[dict]) -> list[dict]:
    today = _today()
    return json.loads(
        json.dumps(template)
        .replace("{today}", today.isoformat())
        .replace("{tomorrow}", (today + datetime.timedelta(days=1)).isoformat())
    )


@pytest.mark.parametrize("case", list(REJECTED_STEP_DAYS))
def test_step_days_out_of_the_window_are_rejected_day_by_day(walker, case):
    user, client = walker
    before = state()

    response = _steps(client, _days(REJECTED_STEP_DAYS[case]))

    count_response(response.status_code)
    FIGURES["bad inputs tried"] += 1
    assert response.status_code == 200
    (day,) = response.json()["days"]
    assert day["status"] == "rejected"
    assert day["code"] in REGISTRY
    assert state() == before


def test_a_decreasing_step_count_credits_nothing_more(walker):
    user, client = walker
    today = _today().isoformat()
    assert _steps(client, [{"day": today, "steps": 8000}]).status_code == 200
    before = state()

    response = _steps(client, [{"day": today, "steps": 3000}])

    count_response(response.status_code)
    FIGURES["bad inputs tried"] += 1
    assert response.status_code < 500
    assert state() == before


def test_superhuman_steps_are_held_not_credited(walker):
    user, client = walker
    today = _today().isoformat()

    response = _steps(client, [{"day": today, "steps": 9_000_000}])

    count_response(response.status_code)
    FIGURES["bad inputs tried"] += 1
    assert response.status_code in {200, 400, 422}
    credited = sum(DailyCarbon.objects.filter(user=user).values_list("credited_carbon_mg", flat=True))
    assert credited == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nickname", ONE_MEGABYTE),
        ("nickname", "\x00null"),
        ("nickname", "\ud83d"),
        ("district", ONE_MEGABYTE),
    ],
    ids=["1MB-nickname", "nul-byte", "lone-surrogate", "1MB-district"],
)
def test_huge_and_broken_strings_in_a_profile_are_refused(citizen, field, value):
    user, client = citizen
    nickname = user.nickname

    response = client.patch(
        "/api/v1/me",
        json.dumps({field: value}, ensure_ascii=False).encode("utf-8", "surrogatepass"),
        content_type="application/json",
    )

    assert_refused(response)
    user.refresh_from_db()
    assert user.nickname == nickname


def test_unicode_that_fits_is_accepted_as_is(citizen):
    user, client = citizen

    response = client.patch("/api/v1/me", {"nickname": "绿色出行 🚲 Zoë"}, format="json")

    count_response(response.status_code)
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.nickname == "绿色出行 🚲 Zoë"


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def _png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A PNG header claiming 3.6 gigapixels, with a tiny compressed body: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width * 3 + 1) * 8, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


BAD_IMAGES = {
    "not an image": (b"%PDF-1.4 definitely not a picture", "offer.png"),
    "a script named .jpg": (b"<script>alert(1)</script>", "offer.jpg"),
    "too small": (_png(20, 20), "offer.png"),
    "decompression bomb": (_png_bomb(), "offer.png"),
    "huge file": (b"\x89PNG\r\n\x1a\n" + b"\x00" * (6 * 1024 * 1024), "offer.png"),
    "empty": (b"", "offer.png"),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_offer_pictures_are_refused(client_for, case):
    merchant = MerchantFactory()
    owner = StaffFactory(merchant=merchant, role=MerchantStaff.Role.OWNER).user
    offer = OfferFactory(merchant=merchant)
    content, name = BAD_IMAGES[case]

    response = client_for(owner).put(
        f"/api/v1/merchant/offers/{offer.public_id}/image",
        {"image": SimpleUploadedFile(name, content, content_type="image/png")},
        format="multipart",
    )

    assert_refused(response)
    offer.refresh_from_db()
    assert not offer.image


@pytest.mark.parametrize("case", ["not an image", "decompression bomb", "huge file"])
def test_bad_avatars_are_refused(citizen, case):
    user, client = citizen
    content, name = BAD_IMAGES[case]

    response = client.put(
        "/api/v1/me/avatar",
        {"avatar": SimpleUploadedFile(name, content, content_type="image/png")},
        format="multipart",
    )

    assert_refused(response)
    user.refresh_from_db()
    assert not user.avatar


# --- Hostile bodies on the paths that move coins -----------------------------------------------

HOSTILE_BODIES = {
    "nested 5,000 deep": ("[" * 5000 + "]" * 5000, "application/json", "request_too_deep"),
    "a NUL in a JSON string": ('{"amount": 1, "note": "a\\u0000b"}', "application/json", "nul_character"),
    "a NUL in a form field": ("amount=1&note=a%00b", "application/x-www-form-urlencoded", "nul_character"),
    "over a mebibyte": (
        '{"amount": 1, "note": "' + "a" * (1024 * 1024) + '"}',
        "application/json",
        "request_too_large",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_BODIES))
def test_hostile_bodies_on_the_coin_paths_are_refused_unread(citizen, case):
    user, client = citizen
    project = WelfareProjectFactory()
    offer = OfferFactory(price_coins=10)
    body, content_type, code = HOSTILE_BODIES[case]
    before = state()

    for path, headers in [
        (f"/api/v1/welfare/projects/{project.public_id}/donations", {}),
        (f"/api/v1/catalog/offers/{offer.public_id}/redeem", {"HTTP_IDEMPOTENCY_KEY": "key-0123456789"}),
        ("/api/v1/activities/steps", {}),
    ]:
        assert_refused(client.generic("POST", path, body, content_type=content_type, **headers), code)
        FIGURES["hostile inputs tried"] += 1
    assert state() == before


# --- Partners ------------------------------------------------------------------------------------


@pytest.fixture
def transit():
    partner = transit_partner()
    rider(partner, "T-100")
    return partner


def _partner_post(partner, body: bytes, headers: dict):
    from rest_framework.test import APIClient

    return APIClient().post("/api/v1/partner/records", data=body, content_type="application/json", **headers)


def test_a_partner_batch_with_a_bad_signature_is_refused(transit):
    body = json.dumps({"records": [ride("r-1", at=yesterday_at(9))]}).encode()
    headers = signed_headers(transit, body)
    headers["HTTP_X_SIGNATURE"] = "0" * 64
    before = state()

    assert_refused(_partner_post(transit, body, headers))
    assert state() == before


def test_a_partner_batch_signed_for_another_body_is_refused(transit):
    body = json.dumps({"records": [ride("r-1", at=yesterday_at(9))]}).encode()
    headers = signed_headers(transit, b'{"records": []}')
    before = state()

    assert_refused(_partner_post(transit, body, headers))
    assert state() == before


@pytest.mark.parametrize("age_seconds", [3600, -3600, 10**9])
def test_a_stale_or_future_partner_timestamp_is_refused(transit, age_seconds):
    import time

    body = json.dumps({"records": [ride("r-1", at=yesterday_at(9))]}).encode()
    headers = signed_headers(transit, body, timestamp=int(time.time()) - age_seconds)
    before = state()

    assert_refused(_partner_post(transit, body, headers))
    assert state() == before


def test_a_replayed_partner_request_id_is_refused(transit):
    body = json.dumps({"records": [ride("r-1", at=yesterday_at(9))]}).encode()
    request_id = uuid.uuid4().hex
    first = _partner_post(transit, body, signed_headers(transit, body, request_id=request_id))
    count_response(first.status_code)
    assert first.status_code == 200, first.content
    before = state()

    assert_refused(_partner_post(transit, body, signed_headers(transit, body, request_id=request_id)))
    assert state() == before


def test_the_same_record_sent_twice_is_credited_once(transit):
    records = [ride("r-1", at=yesterday_at(9))]
    assert partner_batch(transit, records).status_code == 200
    before = state()

    again = partner_batch(transit, records)

    count_response(again.status_code)
    FIGURES["bad inputs tried"] += 1
    assert again.status_code == 200
    assert state() == before


def test_someone_elses_customer_credits_nobody(transit):
    other_bank = transit_partner(code="other-bank")
    rider(other_bank, "B-900")
    before = state()

    response = partner_batch(transit, [ride("r-1", reference="B-900", at=yesterday_at(9))])

    count_response(response.status_code)
    FIGURES["bad inputs tried"] += 1
    assert response.status_code in {200, 400, 422}
    if response.status_code == 200:
        outcome = response.json()["records"][0]
        assert outcome["status"] == "rejected", outcome
        assert outcome["code"] in REGISTRY
    assert {key: value for key, value in state().items() if key != "records"} == {
        key: value for key, value in before.items() if key != "records"
    }
    assert ActivityRecord.objects.count() == before["records"]


@pytest.mark.parametrize(
    "record",
    [
        {"quantity": "-1"},
        {"quantity": "0"},
        {"quantity": "1e400"},
        {"quantity": "lots"},
        {"occurred_at": "2026-11-20T09:00:00"},
        {"occurred_at": "2999-01-01T00:00:00+08:00"},
        {"occurred_at": "1900-01-01T00:00:00+08:00"},
        {"behaviour": "teleport"},
        {"id": ONE_MEGABYTE[:4000]},
    ],
    ids=["negative", "zero", "huge", "text", "no-zone", "future", "far-past", "unknown-behaviour", "long-id"],
)
def test_bad_partner_records_are_rejected_one_by_one(transit, record):
    before = state()

    response = partner_batch(transit, [{**ride("r-1", at=yesterday_at(9)), **record}])

    count_response(response.status_code)
    FIGURES["bad inputs tried"] += 1
    if response.status_code == 200:
        outcome = response.json()["records"][0]
        assert outcome["status"] == "rejected", outcome
        assert outcome["code"] in REGISTRY, outcome
    else:
        assert_refused(response)
    assert state() == before


# --- Mass assignment -------------------------------------------------------------------------------

FORBIDDEN = {
    "balance": 10**9,
    "coin_balance": 10**9,
    "status": "approved",
    "stock_left": 10**6,
    "is_staff": True,
    "is_superuser": True,
    "is_guest": False,
    "rating": "AAA",
    "green_rating": "AAA",
    "merchant": "{merchant}",
    "merchant_id": 1,
    "user": "{user}",
    "user_id": 1,
    "public_id": "00000000-0000-0000-0000-000000000001",
    "is_reviewed": True,
    "price_coins": 1,
    "credited_carbon_mg": 10**9,
}


def _with_forbidden(body: dict, merchant, user) -> dict:
    extra = {
        key: value.format(merchant=merchant.public_id, user=user.public_id)
        if isinstance(value, str)
        else value
        for key, value in FORBIDDEN.items()
        if key not in body
    }
    return {**body, **extra}


def test_no_write_endpoint_lets_a_caller_set_protected_fields(client_for):
    user = UserFactory()
    fund_wallet(user, 1000)
    client = client_for(user)
    merchant = MerchantFactory()
    owner = StaffFactory(merchant=merchant, role=MerchantStaff.Role.OWNER).user
    owner_client = client_for(owner)
    offer = OfferFactory(
        merchant=merchant,
        price_coins=50,
        total_stock=10,
        stock_left=10,
        status=Offer.Status.DRAFT,
        is_reviewed=False,
    )
    live = OfferFactory(merchant=merchant, price_coins=50, total_stock=10, stock_left=10)
    project = WelfareProjectFactory()
    other = MerchantFactory()
    calls = [
        (client.patch, "/api/v1/me", {"nickname": "Mass"}),
        (client.post, f"/api/v1/welfare/projects/{project.public_id}/donations", {"amount": 1}),
        (client.post, f"/api/v1/catalog/offers/{live.public_id}/redeem", {}),
        (owner_client.patch, f"/api/v1/merchant/offers/{offer.public_id}", {"title": "Mass"}),
        (
            owner_client.post,
            "/api/v1/merchant/offers",
            {
                "title": "Tea",
                "category": "food_and_drink",
                "price_coins": 10,
                "total_stock": 10,
                "sale_starts_at": "2026-01-01T00:00:00+08:00",
                "sale_ends_at": "2027-01-01T00:00:00+08:00",
            },
        ),
        (
            client_for(UserFactory()).post,
            "/api/v1/merchant-applications",
            {
                "name": "Mass Tea",
                "category": "food_and_drink",
                "district": merchant.district.code,
                "licence_number": "91330800MA99999999",
                "contact_name": "Li",
                "contact_phone": "0570-8000002",
            },
        ),
    ]
    for method, path, body in calls:
        response = method(
            path, _with_forbidden(body, other, owner), format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
        )
        count_response(response.status_code)
        FIGURES["bad inputs tried"] += 1
        assert response.status_code < 500, (path, response.content[:300])

    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser, user.is_guest) == (False, False, False)
    wallet = LedgerAccount.objects.get(kind="wallet", owner_id=user.pk)
    live.refresh_from_db()
    donated = 1 if Donation.objects.filter(user=user).exists() else 0
    redeemed = Coupon.objects.filter(user=user).count()
    assert wallet.balance == 1000 - donated - 50 * redeemed
    assert (live.stock_left, live.total_stock, live.price_coins) == (10 - redeemed, 10, 50)
    offer.refresh_from_db()
    assert (offer.stock_left, offer.total_stock, offer.status, offer.is_reviewed, offer.merchant_id) == (
        10,
        10,
        Offer.Status.DRAFT,
        False,
        merchant.pk,
    )
    assert not Offer.objects.filter(merchant=other).exists()
    assert not Offer.objects.filter(stock_left__gt=10).exists()
    assert not Merchant.objects.filter(status=Merchant.Status.APPROVED, name="Mass Tea").exists()
    owner.refresh_from_db()
    assert (owner.is_staff, owner.is_superuser) == (False, False)


# --- Missing idempotency keys and forged forwarding headers --------------------------------------


@pytest.mark.parametrize("key", [None, ""])
@pytest.mark.parametrize("route", ["redeem", "donate"])
def test_a_coin_moving_write_without_an_idempotency_key_is_refused_and_changes_nothing(citizen, route, key):
    user, client = citizen
    path = {
        "redeem": lambda: f"/api/v1/catalog/offers/{OfferFactory(price_coins=5).public_id}/redeem",
        "donate": lambda: f"/api/v1/welfare/projects/{WelfareProjectFactory().public_id}/donations",
    }[route]()
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    before = state()

    response = client.post(path, {"amount": 5}, format="json", **headers)

    assert response.status_code == 428
    assert_refused(response, "idempotency_key_required")
    assert state() == before


FORGED_FORWARDED_FOR = [
    "198.51.100.1",
    "198.51.100.2, 10.0.0.1",
    "2001:db8::2",
    "unknown",
    ",,,",
    " ",
    "999.999.999.999, 256.1.1.1",
    "1.2.3.4:5678",
    "[2001:db8::3]:443",
    "碳, 碳碳",
    "1.1.1.1, " * 2000,
]


@pytest.mark.parametrize("trusted_proxies", [[], ["127.0.0.0/8"]], ids=["untrusted peer", "trusted peer"])
def test_forged_forwarding_headers_are_answered_without_a_server_error(db, settings, trusted_proxies):
    settings.TRUSTED_PROXIES = trusted_proxies
    for forwarded_for in FORGED_FORWARDED_FOR:
        cache.clear()
        for path in ("/api/v1/agreements", "/_allauth/app/v1/auth/session", "/api/v1/me"):
            response = APIClient().get(path, HTTP_X_FORWARDED_FOR=forwarded_for)
            count_response(response.status_code)
            FIGURES["bad inputs tried"] += 1
            assert response.status_code < 500, (path, forwarded_for[:40], response.content[:300])


def test_forged_forwarding_headers_from_an_untrusted_peer_share_its_sign_in_limit(db, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "sign_in_ip": "3/minute"}
    cache.clear()
    answers = []
    for forwarded_for in FORGED_FORWARDED_FOR:
        response = APIClient().post(
            "/_allauth/app/v1/auth/login",
            {"username": "nobody", "password": "wrong-password"},
            format="json",
            HTTP_X_FORWARDED_FOR=forwarded_for,
        )
        count_response(response.status_code)
        answers.append(response.status_code)

    assert answers == [400] * 3 + [429] * (len(FORGED_FORWARDED_FOR) - 3)
