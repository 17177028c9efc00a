"""A small world where every kind of state the invariants cover exists: rides credited through a
signed partner batch, a settled day, a coupon redeemed with an Idempotency-Key, a donation."""

from __future__ import annotations

import datetime
import json
import uuid
from dataclasses import dataclass

from rest_framework.test import APIClient

from accounts.models import DataSource, User
from activities import services as activities_services
from activities.services import PartnerWithSecret
from merchants.models import Coupon, Offer
from merchants.services import offer_redeem
from rewards.services import donation_make
from tests.accounts.factories import UserFactory, authorization_granted
from tests.activities.conftest import ride, signed_headers, yesterday_at
from tests.merchants.factories import OfferFactory
from tests.rewards.factories import WelfareProjectFactory, carbon_credit, fund_wallet


@dataclass
class World:
    person: User
    other: User
    transit: PartnerWithSecret
    offer: Offer
    coupon: Coupon


def partner_batch(partner: PartnerWithSecret, records: list[dict], **header_options) -> object:
    body = json.dumps({"records": records}).encode()
    return APIClient().post(
        "/api/v1/partner/records",
        data=body,
        content_type="application/json",
        **signed_headers(partner, body, **header_options),
    )


def transit_partner(code: str = "city-transit") -> PartnerWithSecret:
    return activities_services.partner_create(
        code=code, name="City Transit Card", source=DataSource.TRANSIT_CARD, behaviour_codes=["bus", "metro"]
    )


def rider(partner: PartnerWithSecret, reference: str) -> User:
    user = UserFactory()
    authorization_granted(user, DataSource.TRANSIT_CARD)
    activities_services.partner_customer_link(
        partner=partner.partner, customer_reference=reference, user=user
    )
    return user


def build_world() -> World:
    """Everything committed through the services (call from a test that may commit: settlement does)."""
    transit = transit_partner()
    person, other = rider(transit, "T-100"), rider(transit, "T-200")
    response = partner_batch(
        transit,
        [ride(f"r-{n}", at=yesterday_at(8 + n), minutes=20) for n in range(3)]
        + [ride("o-1", reference="T-200", at=yesterday_at(9), minutes=20)],
    )
    assert response.status_code == 200, response.content
    carbon_credit(person, datetime.date(2026, 11, 1), 30_000)
    fund_wallet(person, 500)
    offer = OfferFactory(price_coins=40, total_stock=5, stock_left=5, limit_per_person=2)
    coupon = offer_redeem(
        user=person, offer_public_id=offer.public_id, idempotency_key=uuid.uuid4().hex
    ).coupon
    donation_make(user=person, project=WelfareProjectFactory(), amount=7, idempotency_key="donation-key-1")
    return World(person=person, other=other, transit=transit, offer=offer, coupon=coupon)
