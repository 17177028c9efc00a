"""Fixtures of the activities tests: consent, partners with real signing secrets, signed requests."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Callable
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.models import DataSource, User
from activities import services, signing
from activities.models import ActivityRecord, BehaviourDay, DailyCarbon, RejectionTally
from activities.services import PartnerWithSecret
from core.local_time import LOCAL_TZ
from tests.accounts.factories import authorization_granted


@pytest.fixture
def authorize() -> Callable[..., None]:
    """Grants sources as a person who signed up a year ago did (partners' records count from then)."""

    def grant(user: User, *sources: str) -> None:
        for source in sources or (DataSource.PHONE_STEPS,):
            authorization_granted(user, source)

    return grant


@pytest.fixture
def transit(db) -> PartnerWithSecret:
    """The city's transit card company: reports bus and metro rides."""
    return services.partner_create(
        code="city-transit",
        name="City Transit Card",
        source=DataSource.TRANSIT_CARD,
        behaviour_codes=["bus", "metro"],
    )


@pytest.fixture
def rider(db, transit, authorize) -> User:
    """A person who linked transit card T-100 and authorized transit card rides."""
    from tests.accounts.factories import UserFactory

    user = UserFactory()
    authorize(user, DataSource.TRANSIT_CARD)
    services.partner_customer_link(partner=transit.partner, customer_reference="T-100", user=user)
    return user


def signed_headers(
    partner: PartnerWithSecret,
    body: bytes,
    *,
    path: str = "/api/v1/partner/records",
    method: str = "POST",
    timestamp: int | None = None,
    request_id: str | None = None,
) -> dict[str, str]:
    """The headers of a partner request to `method path` with `body`, signed as a partner signs."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    request_id = request_id or uuid.uuid4().hex
    message = signing.request_message(method, path, stamp, request_id, body)
    return {
        "HTTP_X_PARTNER_KEY": partner.partner.api_key,
        "HTTP_X_TIMESTAMP": stamp,
        "HTTP_X_PARTNER_REQUEST_ID": request_id,
        "HTTP_X_SIGNATURE": signing.signature_of(partner.signing_secret, message),
    }


@pytest.fixture
def post_batch() -> Callable[..., object]:
    def post(partner: PartnerWithSecret, records: list[dict], **header_options):
        body = json.dumps({"records": records}).encode()
        return APIClient().post(
            "/api/v1/partner/records",
            data=body,
            content_type="application/json",
            **signed_headers(partner, body, **header_options),
        )

    return post


def ago(**delta) -> datetime.datetime:
    return datetime.datetime.now(tz=LOCAL_TZ) - datetime.timedelta(**delta)


def yesterday_at(hour: int, minute: int = 0) -> datetime.datetime:
    """A fixed time of yesterday (local): always in the past, and a run of records stays on one day."""
    today = datetime.datetime.now(tz=LOCAL_TZ).date()
    return datetime.datetime.combine(
        today - datetime.timedelta(days=1), datetime.time(hour, minute), tzinfo=LOCAL_TZ
    )


def earlier_today() -> datetime.datetime:
    """A moment earlier today (local), however soon after midnight the test runs."""
    now = datetime.datetime.now(tz=LOCAL_TZ)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now - min(datetime.timedelta(minutes=30), (now - midnight) / 2)


def ride(
    record_id: str, *, reference: str = "T-100", behaviour: str = "bus", at=None, minutes: int | None = None
):
    at = at or ago(hours=1)
    record = {
        "id": record_id,
        "customer_reference": reference,
        "behaviour": behaviour,
        "quantity": "1",
        "occurred_at": at.isoformat(),
    }
    if minutes is not None:
        record["ended_at"] = (at + datetime.timedelta(minutes=minutes)).isoformat()
    return record


def credited_mg(user: User) -> int:
    return sum(DailyCarbon.objects.filter(user=user).values_list("credited_carbon_mg", flat=True))


def snapshot(user: User | None = None) -> dict:
    """Everything capture can change, to assert that a refused request changed nothing."""
    records = ActivityRecord.objects.all()
    return {
        "records": records.count(),
        "days": list(BehaviourDay.objects.values_list("quantity", "credited_carbon_mg", "held_count")),
        "daily": list(DailyCarbon.objects.values_list("user_id", "day", "credited_carbon_mg")),
    }


def tally(code: str) -> int:
    return sum(RejectionTally.objects.filter(code=code).values_list("count", flat=True))


__all__ = [
    "Decimal",
    "ago",
    "credited_mg",
    "earlier_today",
    "ride",
    "signed_headers",
    "snapshot",
    "tally",
    "yesterday_at",
]
