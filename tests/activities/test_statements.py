"""Our signed statements: a month's credited reductions as an Ed25519 JWS for one receiving platform,
under a pairwise subject; the public keys at /.well-known/jwks.json (old keys kept after a rotation);
the public verifier's answer and its codes."""

from __future__ import annotations

import base64
import datetime
import json
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import KeySet, OKPKey
from rest_framework.test import APIClient

from accounts.models import DataSource
from activities.models import Behaviour, StandardCategory
from activities.statements.apis import StatementVerifyThrottle
from activities.statements.schema import schema_errors
from core.local_time import LOCAL_TZ
from tests.accounts.factories import UserFactory
from tests.activities.conftest import ride
from tests.activities.peer_platform import last_month, month_bounds

pytestmark = pytest.mark.django_db

PEER = "https://peer.example.cn"
OTHER_PEER = "https://other-peer.example.cn"
NEW_KEY = "dev-2:" + base64.urlsafe_b64encode(b"\x07" * 32).decode().rstrip("=")


@pytest.fixture(autouse=True)
def _partner_window(settings):
    settings.ACTIVITIES_PARTNER_WINDOW_DAYS = 120


def at(day: datetime.date, hour: int) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=LOCAL_TZ)


@pytest.fixture
def month() -> datetime.date:
    return last_month()


@pytest.fixture
def riding_month(rider, transit, post_batch, authorize, month):
    """Last month: three bus rides (240 g) and a metro ride (80 g); this month a bus ride (not stated)."""
    authorize(rider, DataSource.TRANSIT_CARD)
    records = [
        ride("B1", at=at(month.replace(day=10), 8)),
        ride("B2", at=at(month.replace(day=10), 18)),
        ride("B3", at=at(month.replace(day=11), 8)),
        ride("M1", behaviour="metro", at=at(month.replace(day=12), 9)),
        ride("NOW", at=datetime.datetime.now(tz=LOCAL_TZ) - datetime.timedelta(minutes=5)),
    ]
    assert post_batch(transit, records).json()["accepted"] == 5
    return rider


def issue(client: APIClient, month: datetime.date, audience: str = PEER, **params) -> dict:
    response = client.get(
        "/api/v1/me/statements", {"period": month.strftime("%Y-%m"), "audience": audience, **params}
    )
    assert response.status_code == 200, response.json()
    return response.json()


def published_keys() -> KeySet:
    return KeySet.import_key_set(APIClient().get("/.well-known/jwks.json").json())


def test_a_statement_states_the_months_credited_reductions_signed_with_the_platforms_key(
    riding_month, client_for, month
):
    answer = issue(client_for(riding_month), month, nonce="n-123")

    token = jwt.decode(answer["statement"], published_keys(), algorithms=["Ed25519"])
    assert token.header == {"alg": "Ed25519", "kid": "dev-1", "typ": "carbon-statement+jwt"}
    assert token.claims == answer["claims"]
    claims = token.claims
    assert uuid.UUID(claims.pop("jti"))
    assert claims.pop("exp") - claims.pop("iat") == 30 * 24 * 3600
    assert len(claims.pop("sub")) == 43
    assert claims == {
        "iss": settings.STATEMENTS_ISSUER,
        "aud": PEER,
        "version": 2,
        "nonce": "n-123",
        "period": month_bounds(month),
        "total_carbon_mg": 320_000,
        "reductions": [
            {
                "behaviour": "bus",
                "name": "公交出行",
                "name_en": "Bus ride",
                "unit": "ride",
                "quantity": "3",
                "carbon_mg": 240_000,
                "methodology_versions": [1],
                "standard": {"id": "T/ACEF 031-2022", "category": "travel", "behaviour": "公交出行"},
            },
            {
                "behaviour": "metro",
                "name": "地铁出行",
                "name_en": "Metro ride",
                "unit": "ride",
                "quantity": "1",
                "carbon_mg": 80_000,
                "methodology_versions": [1],
                "standard": {"id": "T/ACEF 031-2022", "category": "travel", "behaviour": "地铁出行"},
            },
        ],
    }
    assert answer["key_id"] == "dev-1"
    assert schema_errors(answer["claims"]) == {}


def test_the_subject_is_pairwise_one_per_person_and_receiving_platform(riding_month, client_for, month):
    me, someone = client_for(riding_month), client_for(UserFactory())

    mine_at_peer = issue(me, month)["claims"]
    again_at_peer = issue(me, month)["claims"]
    mine_elsewhere = issue(me, month, audience=OTHER_PEER)["claims"]
    theirs_at_peer = issue(someone, month)["claims"]

    assert mine_at_peer["sub"] == again_at_peer["sub"]
    assert mine_at_peer["jti"] != again_at_peer["jti"]
    assert len({mine_at_peer["sub"], mine_elsewhere["sub"], theirs_at_peer["sub"]}) == 3
    assert (theirs_at_peer["reductions"], theirs_at_peer["total_carbon_mg"]) == ([], 0)


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ({"period": "running"}, "statement_period_invalid", "period"),
        ({"period": "2026-13"}, "statement_period_invalid", "period"),
        ({"period": "1999-12"}, "statement_period_invalid", "period"),
        ({"audience": "not a url"}, "validation_failed", "audience"),
        ({"audience": None}, "validation_failed", "audience"),
    ],
)
def test_a_month_not_ended_or_a_bad_query_gets_its_code(person, client_for, month, query, code, field):
    params = {"period": month.strftime("%Y-%m"), "audience": PEER, **query}
    if params["period"] == "running":
        params["period"] = timezone.localdate().strftime("%Y-%m")
    response = client_for(person).get("/api/v1/me/statements", {k: v for k, v in params.items() if v})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert field in response.json()["error"]["fields"]


def test_statements_need_a_signed_in_person(month):
    response = APIClient().get("/api/v1/me/statements", {"period": month.strftime("%Y-%m"), "audience": PEER})
    assert response.status_code == 401


def test_the_jwks_publishes_every_listed_key(settings):
    settings.PLATFORM_ED25519_SIGNING_KEYS = [NEW_KEY, *settings.PLATFORM_ED25519_SIGNING_KEYS]

    response = APIClient().get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert [(key["kid"], key["kty"], key["crv"], key["alg"], key["use"]) for key in keys] == [
        ("dev-2", "OKP", "Ed25519", "Ed25519", "sig"),
        ("dev-1", "OKP", "Ed25519", "Ed25519", "sig"),
    ]
    assert keys[0]["x"] == base64.urlsafe_b64encode(
        Ed25519PrivateKey.from_private_bytes(b"\x07" * 32).public_key().public_bytes_raw()
    ).decode().rstrip("=")
    assert all("d" not in key for key in keys)


def verify(token: str):
    return APIClient().post("/api/v1/statements/verify", {"statement": token}, format="json")


def test_the_public_verifier_says_valid_with_the_claims(riding_month, client_for, month):
    answer = issue(client_for(riding_month), month)

    response = verify(answer["statement"])

    assert response.status_code == 200
    assert response.json() == {"valid": True, "key_id": "dev-1", "claims": answer["claims"]}


def _resigned(token: str, **changes) -> str:
    """The token's payload changed, with the original signature kept (a tampered statement)."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def _signed(claims: dict, *, kid: str = "dev-1", alg: str = "Ed25519", key=None) -> str:
    key = key or OKPKey.import_key(Ed25519PrivateKey.generate())
    return jwt.encode({"alg": alg, "kid": kid, "typ": "carbon-statement+jwt"}, claims, key, algorithms=[alg])


def test_the_public_verifier_says_why_not_with_stable_codes(riding_month, client_for, month, settings):
    issued = issue(client_for(riding_month), month)
    claims = issued["claims"]
    settings.STATEMENTS_LIFETIME_SECONDS = -1
    expired = issue(client_for(riding_month), month)["statement"]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey as Key

    cases = {
        "tampered": (
            _resigned(issued["statement"], total_carbon_mg=9_999_999),
            422,
            "statement_signature_invalid",
        ),
        "forged": (_signed(claims), 422, "statement_signature_invalid"),
        "unknown key": (_signed(claims, kid="stolen"), 422, "statement_key_unknown"),
        "another issuer": (_signed({**claims, "iss": PEER}), 422, "statement_issuer_unknown"),
        "expired": (expired, 422, "statement_expired"),
        "not a jws": ("hello.world", 400, "statement_malformed"),
        "no type": (
            jwt.encode(
                {"alg": "Ed25519", "kid": "dev-1"},
                claims,
                OKPKey.import_key(Key.generate()),
                algorithms=["Ed25519"],
            ),
            400,
            "statement_malformed",
        ),
    }
    answers = {name: verify(token) for name, (token, _status, _code) in cases.items()}

    assert {
        name: (response.status_code, response.json()["error"]["code"]) for name, response in answers.items()
    } == {name: (status, code) for name, (_token, status, code) in cases.items()}


@pytest.mark.parametrize(
    ("header", "claims"),
    [
        (b"[" * 5000 + b"]" * 5000, b'{"iss": "x"}'),
        (
            b'{"typ": "carbon-statement+jwt", "kid": "k"}',
            b'{"iss": "x", "a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        ),
        (b'{"typ": "carbon-statement+jwt", "kid": "\\ud800"}', b'{"iss": "x"}'),
        (b'{"typ": "carbon-statement+jwt", "kid": "k"}', b'{"iss": "a\\u0000b"}'),
    ],
    ids=["deep header", "deep claims", "half a surrogate pair", "a NUL"],
)
def test_a_token_s_json_gets_the_checks_a_body_gets(header, claims):
    def segment(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    response = verify(f"{segment(header)}.{segment(claims)}.signature")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "statement_malformed")


def test_a_statement_whose_claims_break_the_schema_says_where(settings):
    from core.crypto import platform_keys

    kid, private = platform_keys.ed25519_current()
    now = int(datetime.datetime.now(tz=datetime.UTC).timestamp())
    claims = {
        "iss": settings.STATEMENTS_ISSUER,
        "sub": "s",
        "aud": PEER,
        "iat": now,
        "exp": now + 60,
        "jti": "j",
    }

    response = verify(_signed({**claims, "period": {"start": "2026-11-01"}}, key=OKPKey.import_key(private)))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "statement_malformed"
    assert set(response.json()["error"]["fields"]) == {"claims", "period"}


def test_after_a_rotation_old_statements_still_verify_and_new_ones_use_the_new_key(
    riding_month, client_for, month, settings
):
    old = issue(client_for(riding_month), month)["statement"]
    settings.PLATFORM_ED25519_SIGNING_KEYS = [NEW_KEY, *settings.PLATFORM_ED25519_SIGNING_KEYS]

    new = issue(client_for(riding_month), month)

    assert new["key_id"] == "dev-2"
    assert verify(old).json()["key_id"] == "dev-1"
    assert verify(new["statement"]).json()["key_id"] == "dev-2"
    settings.PLATFORM_ED25519_SIGNING_KEYS = [NEW_KEY]  # dev-1 retired
    assert verify(old).json()["error"]["code"] == "statement_key_unknown"


def test_the_verifier_is_rate_limited_per_address(monkeypatch):
    monkeypatch.setattr(StatementVerifyThrottle, "rate", "2/min", raising=False)

    statuses = [verify("hello.world").status_code for _ in range(3)]

    assert statuses == [400, 400, 429]


def test_the_behaviours_map_to_the_standard_and_operators_edit_it(
    admin_client, riding_month, client_for, month
):
    assert sorted(Behaviour.objects.values_list("code", "standard_category")) == [
        ("bike_share", "travel"),
        ("bus", "travel"),
        ("e_invoice", "digital_finance"),
        ("metro", "travel"),
        ("nev_km", "travel"),
        ("no_tableware", "food"),
        ("old_clothes", "clothing"),
        ("online_booking", "digital_finance"),
        ("recycling", "housing"),
        ("utility_payment", "digital_finance"),
        ("walk", "travel"),
    ]
    assert set(Behaviour.objects.values_list("standard", flat=True)) == {"T/ACEF 031-2022"}
    metro = Behaviour.objects.get(code="metro")

    response = admin_client.post(
        f"/admin/activities/behaviour/{metro.pk}/change/",
        {
            "name": metro.name,
            "name_en": metro.name_en,
            "is_trip": "on",
            "sort_order": metro.sort_order,
            "standard": "T/ACEF 107-2023",
            "standard_category": StandardCategory.TRAVEL,
            "standard_behaviour": "地铁出行（细则）",
        },
    )

    assert response.status_code == 302
    reductions = issue(client_for(riding_month), month)["claims"]["reductions"]
    assert reductions[1]["standard"] == {
        "id": "T/ACEF 107-2023",
        "category": "travel",
        "behaviour": "地铁出行（细则）",
    }


def _segment(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("crit", [[1], [None], [["b64"]], 7], ids=["int", "null", "list", "not a list"])
def test_a_critical_header_extension_is_refused_in_the_envelope(crit):
    # No JWS extension is understood here (RFC 7515 §4.1.11); joserfc raised a TypeError, a 500, on
    # a `crit` that is not a list of names, before it checked the signature.
    header = {"alg": "Ed25519", "kid": "dev-1", "typ": "carbon-statement+jwt", "crit": crit}
    token = f"{_segment(header)}.{_segment({'iss': settings.STATEMENTS_ISSUER})}.AAAA"
    client = APIClient()
    client.raise_request_exception = False

    response = client.post("/api/v1/statements/verify", {"statement": token}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "statement_malformed"
