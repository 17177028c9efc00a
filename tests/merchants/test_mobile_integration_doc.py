"""The catalog, redemption and coupon examples in docs/mobile-integration.md come from the running API.

This test walks what the app does with coins (browse what the wallet affords, redeem with an
Idempotency-Key, retry, the refusals, show the coupon's QR token, the coupon once used) and compares
each exchange with the document's example (`tests.mobile_doc`; `UPDATE_DOCS=1` rewrites them).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from merchants.models import MerchantStaff, Offer
from merchants.services import coupon_verify
from tests.accounts.factories import DistrictFactory, UserFactory
from tests.merchants.factories import MerchantFactory, OfferFactory, StaffFactory
from tests.mobile_doc import Recorder, examples_check, is_redemption_example
from tests.rewards.factories import fund_wallet

pytestmark = pytest.mark.django_db

FIRST_TAP = "7d0c5a3e-2b1f-4e8a-9c6d-5f4e3a2b1c0d"


def test_the_documented_redemption_examples_are_what_the_api_answers(client_for):
    district = DistrictFactory(code="kecheng", name="柯城区")
    cafe = MerchantFactory(name="衢州绿叶咖啡", district=district)
    clerk = StaffFactory(merchant=cafe, role=MerchantStaff.Role.CLERK)
    now = timezone.now()
    on_sale = {"sale_starts_at": now - timedelta(days=1), "sale_ends_at": now + timedelta(days=30)}

    def offer(title: str, description: str, price: int, stock: int, **fields) -> Offer:
        return OfferFactory(
            merchant=cafe,
            title=title,
            description=description,
            price_coins=price,
            total_stock=stock,
            limit_per_person=1,
            **on_sale,
            **fields,
        )

    coffee = offer("美式咖啡一杯", "到店出示券码，限本店使用。", 50, 200, stock_left=120, coupon_valid_days=7)
    coffee.districts.set([district])
    bike_card = offer("共享单车月卡", "30 天内不限次骑行。", 100, 50)
    sold_out = offer("限量帆布袋", "环保帆布袋一个。", 20, 30, stock_left=0)
    # Not for sale yet: the catalog does not list it.
    OfferFactory(merchant=cafe, title="下月新品", status=Offer.Status.PENDING_REVIEW, **on_sale)
    person = UserFactory(nickname="小绿")
    fund_wallet(person, 120)
    app = client_for(person)
    rec = Recorder()
    redeem = "/api/v1/catalog/offers/{}/redeem".format

    rec.call("coins-catalog", app, "get", "/api/v1/catalog/offers?affordable=true&sort=price")
    redeemed = rec.call(
        "coins-redeem", app, "post", redeem(coffee.public_id), headers={"Idempotency-Key": FIRST_TAP}
    )
    rec.call(
        "coins-redeem-retried", app, "post", redeem(coffee.public_id), headers={"Idempotency-Key": FIRST_TAP}
    )
    rec.call("coins-redeem-no-key", app, "post", redeem(bike_card.public_id))
    rec.call(
        "coins-redeem-key-reused",
        app,
        "post",
        redeem(bike_card.public_id),
        headers={"Idempotency-Key": FIRST_TAP},
    )
    rec.call(
        "coins-redeem-limit",
        app,
        "post",
        redeem(coffee.public_id),
        headers={"Idempotency-Key": "0b6e2d4f-8a1c-4f3e-b5d7-9c2a1e0f3b4d"},
    )
    rec.call(
        "coins-redeem-not-enough",
        app,
        "post",
        redeem(bike_card.public_id),
        headers={"Idempotency-Key": "5e3a1c9b-7d2f-4b6e-8a0c-1f4d3b2e5a6c"},
    )
    rec.call(
        "coins-redeem-sold-out",
        app,
        "post",
        redeem(sold_out.public_id),
        headers={"Idempotency-Key": "c4b2a0e8-6f1d-4a3c-9e7b-2d5f8a1c0b3e"},
    )
    coupon_id = redeemed.json()["id"]
    token = rec.call(
        "coins-coupon-token", app, "get", f"/api/v1/coupons/{coupon_id}/token", show=("Cache-Control",)
    )
    coupon_verify(staff=clerk, token=token.json()["token"])
    rec.call("coins-coupon-used", app, "get", f"/api/v1/coupons/{coupon_id}/token")

    examples_check(rec, owns=is_redemption_example)
