"""Each class of hostile input an outside tester found, refused where it enters, in the envelope.

Bodies nested too deeply or too large, NUL characters, cursors that decode to nonsense, dates out of
any sane range, and whatever Django or allauth answered as HTML or with an empty body.
"""

from __future__ import annotations

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponse
from django.test import Client
from django.urls import path

from accounts.models import User
from config.urls import urlpatterns as project_urlpatterns
from core.api.boundary import json_depth_exceeds
from rewards.models import LedgerEntry
from tests.accounts.factories import UserFactory
from tests.merchants.factories import OfferFactory, StaffFactory
from tests.rewards.factories import WelfareProjectFactory, fund_wallet

DEEP = "[" * 5000 + "]" * 5000


def exploding_view(request):
    raise RuntimeError("forced failure for the test")


def html_refusal_view(request):
    return HttpResponse("<h1>no</h1>", status=400, content_type="text/html")


urlpatterns = [
    path("_allauth/test/explode", exploding_view),
    path("api/v1/test/html", html_refusal_view),
    *project_urlpatterns,
]

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return body


def api_envelope(response, status: int, code: str) -> dict:
    body = envelope(response, status, code)
    assert set(body) == {"error"}
    return body["error"]


# --- 1. Bodies too deep or too large --------------------------------------------------------------


def test_a_deeply_nested_body_is_refused_before_guest_creation_parses_it(client):
    response = client.post("/api/v1/guests", DEEP, content_type="application/json")

    error = api_envelope(response, 400, "request_too_deep")
    assert error["fields"] == {"max_depth": 32}
    assert User.objects.count() == 0


def test_a_deeply_nested_body_is_refused_before_allauth_parses_it(client):
    response = client.post("/_allauth/app/v1/auth/login", DEEP, content_type="application/json")

    body = envelope(response, 400, "request_too_deep")
    assert body["status"] == 400
    assert body["errors"] == [
        {"code": "request_too_deep", "message": "The request body is nested too deeply."}
    ]


def test_nesting_within_the_limit_reaches_the_view(person_client):
    nested = "[" * 31 + "]" * 31

    response = person_client.patch("/api/v1/me", f'{{"nickname": {nested}}}', content_type="application/json")

    assert response.json()["error"]["code"] == "validation_failed"


@pytest.mark.parametrize(
    ("text", "too_deep"),
    [
        (b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', False),
        (b'{"a": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', False),
        (b"[" * 33 + b"]" * 33, True),
        (b"[" * 32 + b"]" * 32, False),
        (b'[{"a": [{"b": ' * 9 + b"1" + b"}]}]" * 9, True),
        (b"[]" * 1000, False),
    ],
    ids=["brackets in a string", "an escaped quote", "33 levels", "32 levels", "objects and arrays", "wide"],
)
def test_nesting_is_counted_outside_strings(text, too_deep):
    assert json_depth_exceeds(text, 32) is too_deep


def test_a_json_body_over_a_mebibyte_is_refused_unread(person, person_client):
    body = json.dumps({"nickname": "a" * (1024 * 1024)})

    response = person_client.patch("/api/v1/me", body, content_type="application/json")

    assert api_envelope(response, 413, "request_too_large")["fields"] == {"max_bytes": 1024 * 1024}
    person.refresh_from_db()
    assert person.nickname != "a" * (1024 * 1024)


def test_a_sign_in_body_over_64_kib_is_413_in_the_envelope_not_an_html_400(client):
    body = json.dumps({"username": "a" * (64 * 1024), "password": "x"})

    response = client.post("/_allauth/app/v1/auth/login", body, content_type="application/json")

    assert envelope(response, 413, "request_too_large")["status"] == 413


def test_an_upload_over_its_limit_is_refused_before_the_view(person, person_client):
    upload = SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (6 * 1024 * 1024), "image/png")

    response = person_client.put("/api/v1/me/avatar", {"avatar": upload}, format="multipart")

    assert api_envelope(response, 413, "request_too_large")["fields"] == {
        "max_bytes": 5 * 1024 * 1024 + 256 * 1024
    }
    person.refresh_from_db()
    assert not person.avatar


def test_a_content_length_that_is_not_a_number_is_a_malformed_request(client):
    response = client.generic(
        "POST", "/api/v1/guests", b"{}", content_type="application/json", CONTENT_LENGTH="many"
    )

    api_envelope(response, 400, "malformed_request")


# --- 2. NUL characters --------------------------------------------------------------------------


def test_a_nul_in_a_path_parameter_never_reaches_the_database(person_client):
    response = person_client.get("/api/v1/friends/invitations/AB%00CD")

    assert api_envelope(response, 400, "nul_character")["fields"] == {"where": "path"}


def test_a_nul_in_a_query_parameter_never_reaches_the_database(person_client):
    response = person_client.get("/api/v1/leaderboards/week", {"scope": "district", "district": "a\x00b"})

    assert api_envelope(response, 400, "nul_character")["fields"] == {"where": "query"}


def test_a_nul_in_a_header_is_refused(client):
    response = client.get("/api/v1/me", HTTP_X_SESSION_TOKEN="abc\x00def")

    assert api_envelope(response, 400, "nul_character")["fields"] == {"where": "header"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"device_id": "a\\u0000b"}', "application/json"),
        ('{"device_id": "a\\\\\\u0000b"}', "application/json"),
        ("device_id=a%00b", "application/x-www-form-urlencoded"),
    ],
    ids=["json escape", "json escape after an escaped backslash", "form field"],
)
def test_a_nul_in_a_body_string_is_refused(client, body, content_type):
    response = client.post("/api/v1/guests", body, content_type=content_type)

    assert api_envelope(response, 400, "nul_character")["fields"] == {"where": "body"}
    assert User.objects.count() == 0


def test_a_nul_in_a_multipart_text_field_is_refused_but_not_in_a_file(person, person_client):
    picture = SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "image/png")

    with_text = person_client.put(
        "/api/v1/me/avatar", {"avatar": picture, "note": "a\x00b"}, format="multipart"
    )
    picture.seek(0)
    file_only = person_client.put("/api/v1/me/avatar", {"avatar": picture}, format="multipart")

    assert api_envelope(with_text, 400, "nul_character")["fields"] == {"where": "body"}
    assert file_only.json()["error"]["code"] == "avatar_invalid"


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(person, person_client):
    response = person_client.patch(
        "/api/v1/me", '{"nickname": "a\\\\u0000b"}', content_type="application/json"
    )

    assert response.status_code == 200, response.content
    person.refresh_from_db()
    assert person.nickname == "a\\u0000b"


# --- 3. Cursors ---------------------------------------------------------------------------------


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("p=abc"),
        _cursor("p=" + "9" * 30),
        _cursor("o=-1"),
        _cursor("r=2"),
        _cursor("x=1&p=1"),
        "!!not-base64!!",
        _cursor("nonsense"),
    ],
    ids=[
        "text position",
        "position past bigint",
        "negative offset",
        "bad direction",
        "unknown key",
        "not base64",
        "not a query",
    ],
)
def test_a_cursor_that_decodes_to_nonsense_is_a_400(person_client, cursor):
    response = person_client.get("/api/v1/wallet/history", {"cursor": cursor})

    api_envelope(response, 400, "cursor_invalid")


def test_a_cursor_over_moments_refuses_a_position_that_is_not_one(person_client):
    WelfareProjectFactory()

    for position in ("yesterday", "2026-11-20 10:00:00"):
        response = person_client.get("/api/v1/welfare/projects", {"cursor": _cursor(f"p={position}")})

        api_envelope(response, 400, "cursor_invalid")


def test_the_cursors_the_api_hands_out_still_page(person, person_client):
    fund_wallet(person, 10)
    fund_wallet(person, 20)
    fund_wallet(person, 30)
    first = person_client.get("/api/v1/wallet/history", {"page_size": 2}).json()

    second = person_client.get(first["next"])

    assert second.status_code == 200, second.content
    assert (
        len(first["results"]) + len(second.json()["results"])
        == LedgerEntry.objects.filter(account__owner_id=person.pk, account__kind="wallet").count()
    )


# --- 4. Dates -----------------------------------------------------------------------------------


@pytest.fixture
def owner_client(client_for):
    owner = StaffFactory().user
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    return client_for(owner)


RANGE_MESSAGE = "Give a date from 2000-01-01 to {last}-12-31."


def _range_message() -> str:
    from django.utils import timezone

    return RANGE_MESSAGE.format(last=timezone.localdate().year + 10)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/merchant/reports/offers?date_from=9999-12-31", "date_from"),
        ("/api/v1/merchant/reports/offers?date_to=9999-12-31", "date_to"),
        ("/api/v1/merchant/reports/offers.csv?date_from=0001-01-01", "date_from"),
        ("/api/v1/merchant/statements/9999-12", "month"),
        ("/api/v1/platform/merchant-statements/9999-12", "month"),
        ("/api/v1/ratings/ambassadors?month=9999-12", "month"),
    ],
)
def test_a_date_or_month_out_of_range_is_a_clear_400(owner_client, url, field):
    response = owner_client.get(url)

    assert api_envelope(response, 400, "validation_failed")["fields"] == {field: [_range_message()]}


@pytest.mark.parametrize(
    ("starts", "ends", "field"),
    [
        ("2026-01-01T00:00:00+08:00", "9999-12-31T23:59:59+08:00", "sale_ends_at"),
        # A naive moment in year 1 overflowed on its way into the time zone (a 500).
        ("0001-01-01", "2026-12-31T23:59:59+08:00", "sale_starts_at"),
        ("0001-01-01T00:00:00", "2026-12-31T23:59:59+08:00", "sale_starts_at"),
        ("0001-01-01T08:00:00", "2026-12-31T23:59:59+08:00", "sale_starts_at"),
    ],
)
def test_an_offer_sale_in_year_9999_or_year_1_is_refused(owner_client, starts, ends, field):
    response = owner_client.post(
        "/api/v1/merchant/offers",
        {
            "title": "Tea",
            "category": "food_and_drink",
            "price_coins": 10,
            "total_stock": 10,
            "sale_starts_at": starts,
            "sale_ends_at": ends,
        },
        content_type="application/json",
    )

    assert api_envelope(response, 400, "validation_failed")["fields"] == {field: [_range_message()]}


def test_a_step_day_in_year_9999_is_refused(person_client):
    response = person_client.post(
        "/api/v1/activities/steps",
        {"days": [{"day": "9999-12-31", "steps": 100}]},
        content_type="application/json",
    )

    assert api_envelope(response, 400, "validation_failed")["fields"] == {
        "days": {"0": {"day": [_range_message()]}}
    }


@pytest.mark.parametrize("label", ["month/9999-12", "month/0000-01", "year/9999", "year/1999"])
def test_a_report_out_of_range_keeps_its_own_code(person_client, label):
    api_envelope(person_client.get(f"/api/v1/reports/{label}"), 400, "report_period_invalid")


def test_a_month_within_range_still_answers(owner_client):
    assert owner_client.get("/api/v1/merchant/statements/2026-11").status_code == 200


# --- 5. Django's and allauth's own answers ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [("{not json", "malformed_request"), ("[1, 2]", "malformed_request")],
    ids=["not json", "not an object"],
)
def test_allauth_answers_a_body_it_cannot_read_in_the_envelope(client, body, code):
    response = client.post("/_allauth/app/v1/auth/login", body, content_type="application/json")

    body = envelope(response, 400, code)
    assert body["status"] == 400
    assert body["errors"][0]["code"] == code


def test_allauth_validation_answers_keep_their_own_shape(client):
    response = client.post(
        "/_allauth/app/v1/auth/login", {"username": 5, "password": []}, content_type="application/json"
    )

    body = envelope(response, 400, "validation_failed")
    assert body["status"] == 400
    assert body["errors"] == [{"message": "This field is required.", "code": "required", "param": "password"}]


@pytest.mark.parametrize(
    "url", ["/_allauth/app/v1/no-such-thing", "/_allauth/nothing", "/api/v1/no-such-thing"]
)
def test_an_unknown_route_is_a_json_404(client, url):
    envelope(client.get(url), 404, "not_found")


def test_a_method_allauth_does_not_take_is_a_json_405_with_allow(client):
    response = client.put("/_allauth/app/v1/config")

    envelope(response, 405, "method_not_allowed")
    assert response["Allow"]


@pytest.mark.parametrize("url", ["/api/v1/agreements", "/_allauth/app/v1/config"])
def test_a_host_not_allowed_is_a_json_400(client, url):
    envelope(client.get(url, HTTP_HOST="evil.example"), 400, "host_not_allowed")


def test_a_host_not_allowed_outside_the_api_keeps_djangos_page(client):
    response = client.get("/admin/login/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.urls(__name__)
def test_a_crash_under_allauth_is_a_500_envelope_with_the_request_id(client):
    response = client.get("/_allauth/test/explode", HTTP_X_REQUEST_ID="req-0123456789")

    body = envelope(response, 500, "server_error")
    assert body["error"]["fields"] == {"request_id": "req-0123456789"}


@pytest.mark.urls(__name__)
def test_an_html_error_from_a_plain_django_view_under_the_api_becomes_the_envelope(client):
    api_envelope(client.get("/api/v1/test/html"), 400, "malformed_request")


def test_the_envelope_speaks_the_callers_language_at_the_boundary(client):
    response = client.post(
        "/api/v1/guests", DEEP, content_type="application/json", HTTP_ACCEPT_LANGUAGE="zh-Hans"
    )

    assert api_envelope(response, 400, "request_too_deep")["message"] == "请求内容的嵌套层级过深。"


# --- 6. A session token that is gone -------------------------------------------------------------


def test_after_erasure_the_old_token_on_allauths_session_route_is_401_not_authenticated(client_for):
    from importlib import import_module

    from django.conf import settings

    from tests.conftest import session_token_for

    user = UserFactory()
    token = session_token_for(user)
    erased = client_for(user)
    erased.credentials(HTTP_X_SESSION_TOKEN=token)
    assert erased.post("/api/v1/me/erasure", {"confirm": "ERASE"}, format="json").status_code == 204

    while_the_session_is_kept = Client().get("/_allauth/app/v1/auth/session", HTTP_X_SESSION_TOKEN=token)
    # Once the session itself is gone (cleared, expired), allauth no longer knows the token at all.
    import_module(settings.SESSION_ENGINE).SessionStore(session_key=token).delete()
    once_it_is_gone = Client().get("/_allauth/app/v1/auth/session", HTTP_X_SESSION_TOKEN=token)

    for response in (while_the_session_is_kept, once_it_is_gone):
        body = envelope(response, 401, "not_authenticated")
        assert body["status"] == 401
        assert body["meta"]["is_authenticated"] is False


def test_an_unknown_token_on_allauths_session_route_is_401_not_authenticated(client):
    response = client.get("/_allauth/app/v1/auth/session", HTTP_X_SESSION_TOKEN="no-such-token")

    envelope(response, 401, "not_authenticated")


def test_a_redemption_and_an_offer_are_untouched_by_the_boundary(person, person_client):
    fund_wallet(person, 100)
    offer = OfferFactory(price_coins=10)

    response = person_client.post(
        f"/api/v1/catalog/offers/{offer.public_id}/redeem",
        {},
        format="json",
        HTTP_IDEMPOTENCY_KEY="key-0123456789",
    )

    assert response.status_code == 201, response.content


# --- 7. Text that is not Unicode, and what Django refuses to read ------------------------------------


@pytest.mark.parametrize("charset", ["utf-7", "cp037", "utf-16"])
def test_a_body_in_another_character_set_is_415_before_anything_decodes_it(client, charset):
    # In UTF-7 a body's brackets hide from the depth check: "+AFs-" is "[".
    response = client.post(
        "/api/v1/guests", b"+AFs-" * 5000, content_type=f"application/json; charset={charset}"
    )

    assert api_envelope(response, 415, "unsupported_media_type")["fields"] == {"charset": charset}


def test_a_query_in_another_character_set_is_415(person_client):
    # Django decodes the query string in the request's character set: "+2AA-" is half a character.
    response = person_client.generic(
        "GET", "/api/v1/coupons?status=%2B2AA-", content_type="text/plain; charset=utf-7"
    )

    api_envelope(response, 415, "unsupported_media_type")


def test_utf_8_named_as_such_still_reads(client):
    response = client.post("/api/v1/guests", b"{}", content_type="application/json; charset=UTF-8")

    assert response.json()["error"]["code"] == "validation_failed"


@pytest.mark.parametrize(
    "text",
    [r'"\ud800"', r'"x\udc00"', r'"\ud83d\u0041"', r'"\\\ud800"'],
    ids=["high alone", "low alone", "high then other", "after an escaped backslash"],
)
def test_half_a_surrogate_pair_in_a_json_string_is_refused(person_client, text):
    # DRF quotes a choice it refuses in its message: half a character cannot be written back.
    response = person_client.post(
        "/api/v1/groups", f'{{"kind": {text}, "name": "x"}}', content_type="application/json"
    )

    assert api_envelope(response, 400, "malformed_request")["fields"] == {"where": "body"}


def test_a_whole_surrogate_pair_is_a_character_like_any_other(person_client):
    response = person_client.patch(
        "/api/v1/me", r'{"nickname": "\ud83c\udf33\\ud800"}', content_type="application/json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["nickname"] == "🌳\\ud800"


def test_half_a_surrogate_pair_in_a_sign_in_body_is_refused(client):
    response = client.post(
        "/_allauth/app/v1/auth/login",
        r'{"username": "\ud800", "password": "x"}',
        content_type="application/json",
    )

    envelope(response, 400, "malformed_request")


def test_the_renderer_writes_half_a_surrogate_pair_as_its_escape():
    from core.api.renderers import JSONRenderer

    # An integer past 64 bits sends the renderer to DRF's encoder, which wrote UTF-8 and failed.
    rendered = JSONRenderer().render({"detail": "\ud800 is not a valid choice.", "big": 2**70})

    assert json.loads(rendered) == {"detail": "\ud800 is not a valid choice.", "big": 2**70}


def test_more_query_fields_than_django_reads_is_a_malformed_request(person_client):
    query = "&".join(f"field{number}=1" for number in range(1100))

    response = person_client.get(f"/api/v1/me?{query}")

    api_envelope(response, 400, "malformed_request")


def test_a_picture_named_the_rfc_5987_way_is_a_file_not_text(person, person_client):
    from io import BytesIO

    from PIL import Image

    picture = BytesIO()
    Image.new("RGB", (300, 300), "green").save(picture, "PNG")
    png = picture.getvalue()
    assert b"\x00" in png
    body = (
        b"--boundary\r\nContent-Disposition: form-data; name=\"avatar\"; filename*=UTF-8''avatar.png\r\n"
        b"Content-Type: image/png\r\n\r\n" + png + b"\r\n--boundary--\r\n"
    )

    response = person_client.generic(
        "PUT", "/api/v1/me/avatar", body, content_type="multipart/form-data; boundary=boundary"
    )

    assert response.status_code == 200, response.content[:300]


@pytest.mark.parametrize(
    "url",
    [
        "/_allauth/app/v1/auth/provider/redirect",
        "/_allauth/app/v1/auth/password/request",
        "/_allauth/app/v1/auth/password/reset",
    ],
)
def test_sign_in_ways_the_platform_does_not_offer_are_a_json_404(client, url):
    response = client.post(url, {"key": "-0", "provider": "x", "process": "login", "callback_url": "/"})

    envelope(response, 404, "not_found")


def test_a_challenge_in_year_1_is_refused(person, person_client):
    from rewards.groups.models import GroupKind
    from rewards.groups.services import group_create

    group = group_create(user=person, kind=GroupKind.TEAM, name="team")

    response = person_client.post(
        f"/api/v1/groups/{group.public_id}/challenges",
        {
            "title": "t",
            "target_kind": "carbon",
            "target_value": 1,
            "starts_on": "0001-01-01",
            "ends_on": "9999-12-31",
        },
        content_type="application/json",
    )

    assert set(api_envelope(response, 400, "validation_failed")["fields"]) == {"starts_on", "ends_on"}
