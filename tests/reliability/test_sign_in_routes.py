"""Sign-in routes allauth serves but this platform does not offer answer 404, never a server error
(found by the API fuzz: allauth's phone endpoints raised NotImplementedError for a signed-in person)."""

from __future__ import annotations

import pytest

from tests.reliability.conftest import count_response

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/_allauth/app/v1/account/phone", None),
        ("post", "/_allauth/app/v1/account/phone", {"phone": "+8613800138000"}),
        ("post", "/_allauth/app/v1/auth/phone/verify", {"code": "123456"}),
        ("post", "/_allauth/app/v1/auth/phone/verify/resend", {}),
    ],
)
def test_phone_routes_are_not_offered(person_client, method, path, body):
    response = getattr(person_client, method)(path, body, format="json")

    count_response(response.status_code)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_month_formatted_date_is_documented_as_a_month_not_a_date():
    """Found by the API fuzz: `"2026-11"` answered where the schema promised an RFC 3339 date."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    month = schema["components"]["schemas"]["CreditProfileOutputMonth"]["properties"]["month"]

    assert month == {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"}
