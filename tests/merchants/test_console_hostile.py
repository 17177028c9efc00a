"""Every form and page of the merchant console answers hostile values without a server error: numbers
past any column, dates at the ends of the calendar, empty and over-long text, in every field of an
offer and of the other forms, and in the pages' queries."""

from __future__ import annotations

import pytest

from tests.merchants.factories import OfferFactory
from tests.merchants.test_console import OFFER_POST, signed_in

pytestmark = pytest.mark.django_db

HOSTILE_VALUES = [
    "99999999999999999999",
    "-99999999999999999999",
    "2147483648",
    "9223372036854775808",
    "1e400",
    "NaN",
    "0",
    "-1",
    "9999-12-31T23:59",
    "0001-01-01T00:00",
    "a" * 20000,
    "🙂",
    "",
    " ",
]


def test_every_console_form_and_page_answers_hostile_values_without_a_server_error(shop):
    client = signed_in(shop.owner)
    client.raise_request_exception = False
    offer = OfferFactory(merchant=shop.merchant)
    problems = []

    def check(method: str, url: str, data: dict) -> None:
        status = getattr(client, method)(url, data).status_code
        if status >= 500:
            problems.append(f"{method.upper()} {url} {str(data)[:80]}: {status}")

    for field in OFFER_POST:
        for value in HOSTILE_VALUES:
            check("post", "/console/offers/new/", {**OFFER_POST, field: value})
            check("post", f"/console/offers/{offer.public_id}/", {**OFFER_POST, field: value})
    for value in HOSTILE_VALUES:
        check("post", "/console/verify/", {"code": value})
        check("post", "/console/staff/", {"username": value, "role": value})
        check("post", "/console/language/", {"language": value, "next": value})
        check("get", "/console/reports/", {"date_from": value, "date_to": value})
        check("get", "/console/reports.csv", {"date_from": value, "date_to": value})
        check("get", "/console/", {"page": value, "status": value})
        check("get", "/registry/", {"page": value})
    for action in ("pause", "resume", "submit", "archive", "x" * 40):
        check("post", f"/console/offers/{offer.public_id}/{action}/", {})

    assert problems == []
