"""The OpenAPI documents are a contract a generator nobody here wrote can use: valid OpenAPI, one
request content type per body (what the route really parses), file routes answering the type they
declare, every response of the suite checked against them (tests/schema_conformance.py), and the
sign-in API described too."""

from __future__ import annotations

import io
import json

import pytest
from django.http import HttpResponse, JsonResponse
from django.test import Client, override_settings
from django.urls import path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings
from openapi_spec_validator import validate
from PIL import Image
from rest_framework import serializers
from rest_framework.views import APIView

from merchants.services import offer_redeem
from rewards.groups.models import GroupKind
from rewards.groups.services import group_create
from rewards.services import donation_make
from tests.merchants.factories import OfferFactory
from tests.rewards.factories import WelfareProjectFactory, fund_wallet
from tests.rewards.gamification import today
from tests.schema_conformance import SchemaConformanceError, api_contract

pytestmark = pytest.mark.django_db

UPLOADS = {
    ("put", "/api/v1/me/avatar"): "multipart/form-data",
    ("put", "/api/v1/merchant/offers/{offer_id}/image"): "multipart/form-data",
}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        return json.loads(
            Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
        )


def operations(schema: dict):
    for route, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method, route, operation


def test_our_schema_is_valid_openapi(schema):
    validate(schema)


def test_the_sign_in_specification_is_served_valid_and_true_of_this_platform(client):
    response = client.get("/_allauth/openapi.json")

    assert response.status_code == 200
    spec = json.loads(response.content)
    validate(spec)
    assert client.get("/_allauth/openapi.yaml").status_code == 200
    # The person as our adapter shows them, not allauth's integer id and username.
    user = spec["components"]["schemas"]["User"]
    assert user["required"] == ["id", "display", "is_guest", "has_usable_password"]
    assert (user["properties"]["id"]["type"], user["properties"]["is_guest"]["type"]) == ("string", "boolean")
    # The app client only, and not the phone routes this platform does not offer.
    assert all(route.startswith("/_allauth/app/v1/") for route in spec["paths"])
    assert "/_allauth/app/v1/auth/provider/token" in spec["paths"]
    assert not [route for route in spec["paths"] if "/phone" in route]
    # Every error carries our envelope beside allauth's keys, and our stack's statuses are declared.
    login = spec["paths"]["/_allauth/app/v1/auth/login"]["post"]["responses"]
    assert {"$ref": "#/components/schemas/ErrorEnvelope"} in login["400"]["content"]["application/json"][
        "schema"
    ]["allOf"]
    assert {"429", "503"} <= set(login)


def test_the_api_docs_offer_both_specifications(client):
    page = client.get("/api/docs/").content.decode()

    assert '"url": "/api/schema/"' in page
    assert '"url": "/_allauth/openapi.json"' in page


def test_each_body_is_declared_in_the_one_content_type_its_route_parses(schema):
    declared = {
        (method, route): list(operation["requestBody"]["content"])
        for method, route, operation in operations(schema)
        if "requestBody" in operation
    }

    assert {key: types for key, types in declared.items() if types != ["application/json"]} == {
        key: [media_type] for key, media_type in UPLOADS.items()
    }
    assert declared[("post", "/api/v1/partner/links")] == ["application/json"]
    assert declared[("post", "/api/v1/partner/records")] == ["application/json"]


def test_a_form_body_is_refused_where_json_is_declared(person_client):
    response = person_client.patch(
        "/api/v1/me", "nickname=Leaf", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_an_upload_route_takes_multipart_only(person_client):
    response = person_client.put("/api/v1/me/avatar", {"avatar": "not a file"}, format="json")

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def _certificate(person) -> str:
    fund_wallet(person, 5)
    donation = donation_make(user=person, project=WelfareProjectFactory(), amount=5)
    return f"/api/v1/welfare/donations/{donation.public_id}/certificate.png"


def _report_card(person) -> str:
    return f"/api/v1/reports/year/{today().year}.png"


def _coupon_qr(person) -> str:
    fund_wallet(person, 10)
    offer = OfferFactory(price_coins=10)
    coupon = offer_redeem(user=person, offer_public_id=offer.public_id).coupon
    return f"/api/v1/coupons/{coupon.public_id}/qr.png"


def _group_invite_qr(person) -> str:
    group = group_create(user=person, kind=GroupKind.TEAM, name="Morning walkers")
    return f"/api/v1/groups/{group.public_id}/invite.png"


# Each route whose success the schema declares as a PNG: how to get one, and a URL that is refused.
PNG_ROUTES = {
    "/api/v1/welfare/donations/{donation_id}/certificate.png": (
        _certificate,
        "/api/v1/welfare/donations/00000000-0000-0000-0000-000000000000/certificate.png",
    ),
    "/api/v1/reports/{period}/{label}.png": (_report_card, "/api/v1/reports/month/2999-01.png"),
    "/api/v1/coupons/{coupon_id}/qr.png": (
        _coupon_qr,
        "/api/v1/coupons/00000000-0000-0000-0000-000000000000/qr.png",
    ),
    "/api/v1/groups/{group_id}/invite.png": (
        _group_invite_qr,
        "/api/v1/groups/00000000-0000-0000-0000-000000000000/invite.png",
    ),
}


def test_every_route_declared_as_png_is_listed_here(schema):
    declared = {
        route
        for method, route, operation in operations(schema)
        if "image/png" in operation["responses"].get("200", {}).get("content", {})
    }

    assert declared == set(PNG_ROUTES)


@pytest.mark.parametrize("route", PNG_ROUTES)
@pytest.mark.parametrize("accept", ["image/png", "application/json", "*/*"])
def test_a_png_route_answers_its_png_to_the_accept_the_schema_declares(route, accept, person, person_client):
    make_url, _ = PNG_ROUTES[route]

    response = person_client.get(make_url(person), HTTP_ACCEPT=accept)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).format == "PNG"


@pytest.mark.parametrize("route", PNG_ROUTES)
def test_a_png_routes_errors_are_the_json_envelope_even_to_accept_png(route, person_client):
    _, refused_url = PNG_ROUTES[route]

    response = person_client.get(refused_url, HTTP_ACCEPT="image/png")

    assert response.status_code in {400, 404}
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"error"}


# --- The schema's own rules ----------------------------------------------------------------------


class _BlankDefaultApi(APIView):
    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=20, required=False, default="")

    def get_serializer(self, *args, **kwargs):
        return self.InputSerializer(*args, **kwargs)

    def post(self, request):  # pragma: no cover - only its schema is built
        return None


def test_a_default_that_breaks_its_own_field_fails_the_schema_build():
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/blank", _BlankDefaultApi.as_view())])

    with patched_settings({"POSTPROCESSING_HOOKS": []}):  # the link table names our real routes
        generator.get_schema(request=None, public=True)

    errors = [message for message in GENERATOR_STATS._error_cache if "breaks its own schema" in message]
    GENERATOR_STATS.reset()
    assert len(errors) == 1
    assert "field 'note': its default breaks its own schema ('' should be non-empty)" in errors[0]


def test_a_field_reached_through_an_empty_relation_is_nullable(schema):
    record = schema["components"]["schemas"]["RecordOutput"]

    assert record["properties"]["partner"] == {"type": "string", "nullable": True}


# --- The response check every API test goes through ----------------------------------------------


def _wallet_with_a_string_balance(request):
    return JsonResponse({"balance": "many"})


def _wallet_as_html(request):
    return HttpResponse("<p>wallet</p>", content_type="text/html")


def _wallet_teapot(request):
    return JsonResponse({}, status=418)


urlpatterns = [
    path("api/v1/wallet", _wallet_with_a_string_balance),
    path("api/v1/wallet/history", _wallet_as_html),
    path("api/v1/activities/today", _wallet_teapot),
]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("/api/v1/wallet", "GET /api/v1/wallet 200: at /balance: 'many' is not of type 'integer'"),
        ("/api/v1/wallet", "GET /api/v1/wallet 200: at /: 'carbon_mg_per_coin' is a required property"),
        (
            "/api/v1/wallet/history",
            "GET /api/v1/wallet/history 200: content type 'text/html' is not declared",
        ),
        ("/api/v1/activities/today", "GET /api/v1/activities/today: status 418 is not declared"),
    ],
)
def test_a_response_that_breaks_the_schema_fails_the_test_that_received_it(client, url, problem):
    with override_settings(ROOT_URLCONF=__name__), pytest.raises(SchemaConformanceError) as failure:
        client.get(url)

    assert problem in str(failure.value)


def test_a_conforming_response_passes_and_an_undescribed_path_is_not_checked():
    assert api_contract().problems("GET", "/api/v1/agreements", JsonResponse([], safe=False)) == []
    assert api_contract().problems("GET", "/api/v1/nowhere", HttpResponse("x")) == []
