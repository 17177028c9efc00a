"""schemathesis over the whole OpenAPI schema (ours and allauth's headless one): no 5xx, responses
conform to the schema, every error of our API uses the envelope, and the invariants hold afterwards.

The schemas are loaded through WSGI at import time (see STACK-NOTES: `from_fixture` breaks on this
pytest). Calls go through the real app, signed in as a real person with a real session token that the
auth provider below hands schemathesis, so its `ignored_auth` check also proves each protected
operation refuses a request without it.

`make test` tries two examples per operation of our API (about a minute on two xdist workers);
`make soak` also fuzzes allauth's API and sets FUZZ_MAX_EXAMPLES for a longer run.
Every check runs, `positive_data_acceptance` (schema-valid data is accepted) and
`negative_data_rejection` (schema-invalid data is refused) included: the schema says what the API
really accepts (patterns of idempotency keys and report labels, enums of report periods). Where a
documented domain rule refuses schema-valid data (a 4xx with the envelope and a registered code),
exactly that operation leaves `positive_data_acceptance` out, with the reason, in DOMAIN_REJECTIONS.

Hostile input (tests/config/hostile_input.py) is sent to every operation of both schemas, one request
per class of fault and place: bodies nested too deeply or too large, a NUL character in every path,
query, header and body string, bad cursors, dates in year 9999 or 1. No answer may be a 5xx, and
every error under /api/ and /_allauth/ is JSON with the envelope (the classes the boundary refuses
with their own code). `make test` sends one value per place, `make soak` every value.
"""

from __future__ import annotations

import json
import os
import zlib
from urllib.parse import urlencode

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import Client
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from core.api.dates import date_bounds
from core.api.errors import REGISTRY
from operations.invariants import invariant_violations, invariants_checked
from tests.accounts.factories import UserFactory
from tests.config.hostile_input import HostileRequest, hostile_requests
from tests.conftest import session_token_for
from tests.merchants.factories import OfferFactory, StaffFactory
from tests.reliability.conftest import FIGURES, count_response
from tests.reliability.world import build_world

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "2"))
# allauth's own API (about 40 operations) is fuzzed in `make soak`, which sets RELIABILITY_SOAK=1.
soak = pytest.mark.skipif(os.environ.get("RELIABILITY_SOAK") != "1", reason="slow: runs in `make soak`")
# allauth's own API is held to no server error only (its spec is its own).
EXCLUDED_CHECKS = [positive_data_acceptance, negative_data_rejection]
# Operation → why schema-valid data is refused there by a documented rule of the domain.
DOMAIN_REJECTIONS = {
    "POST /api/v1/me/merge": (
        "merge_source_invalid: the other account's session token must verify, and no generated one does"
    ),
    "POST /api/v1/merchant/offers": (
        "validation_failed: the sale must end after it starts (one field against another: no schema says it)"
    ),
    "GET /api/v1/reports/{period}/{label}": (
        "report_period_invalid: a label of the other period's shape, or a month or year not begun yet"
    ),
    "GET /api/v1/reports/{period}/{label}.png": (
        "report_period_invalid: a label of the other period's shape, or a month or year not begun yet"
    ),
    "GET /api/v1/me/statements": "statement_period_invalid: a month that has not ended, or month 00 or 13",
    "POST /api/v1/statements/verify": (
        "statement_*: only a statement signed with our key is valid, and no generated one is"
    ),
    "POST /api/v1/me/statements/imports": (
        "statement_*: only a statement a registered platform signed with our nonce is taken, and none is"
    ),
}
# Error code → why schema-valid data may get it on any operation: the rule is the domain's, no schema
# can state it.
DOMAIN_REJECTED_CODES = {
    "cursor_invalid": "a cursor is only one a `next` or `previous` link carried: opaque to any schema",
}


def checks_excluded(operation: str, response) -> list:
    """`positive_data_acceptance` is left out where a documented rule refuses schema-valid data."""
    if operation in DOMAIN_REJECTIONS:
        return [positive_data_acceptance]
    try:
        body = response.json() if response.status_code == 400 else None
    except ValueError:  # schemathesis's and Django's responses alike raise it for a body not JSON
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("code") in DOMAIN_REJECTED_CODES:
        return [positive_data_acceptance]
    if (
        isinstance(error, dict)
        and error.get("code") == "validation_failed"
        and _only_dates_out_of_range(error)
    ):
        return [positive_data_acceptance]
    return []


def _only_dates_out_of_range(error: dict) -> bool:
    """Every field refused names the API's range of dates (core/api/dates.py): a date any schema
    allows (year 0472, say) that the platform's range does not, a rule OpenAPI 3.0 cannot state."""
    earliest, latest = date_bounds()
    range_message = f"Give a date from {earliest.isoformat()} to {latest.isoformat()}."
    messages = [
        message
        for value in (error.get("fields") or {}).values()
        for message in (value if isinstance(value, list) else [value])
    ]
    return bool(messages) and all(message == range_message for message in messages)


application = get_wsgi_application()


def schema_loaded(path: str):
    """A schema served by the app, to fuzz. A NUL character is refused at the boundary by a documented
    rule (400 `nul_character`, core/api/boundary.py) whatever the schema says of the string, so
    schemathesis generates none; test_every_operation_refuses_hostile_input_in_the_envelope sends one
    to every place instead."""
    loaded = schemathesis.openapi.from_wsgi(path, application)
    loaded.config.generation.update(allow_x00=False)
    return loaded


schema = schema_loaded("/api/schema/")
allauth = schema_loaded("/_allauth/openapi.json")
# A missing Idempotency-Key is a precondition the request lacks: 428 (core/api/idempotency.py).
_missing_header = schema.config.checks.missing_required_header
_missing_header.expected_statuses = [*_missing_header.expected_statuses, "428"]


@schemathesis.auth(refresh_interval=None)
class SessionToken:
    """A fresh person and session token per call: transactional tests flush the database between them."""

    def get(self, case, context) -> str:
        try:
            return session_token_for(UserFactory())
        except RuntimeError:
            # schemathesis also asks at collection time, when the database is not open yet.
            return "collection-time-placeholder"

    def set(self, case, data: str, context) -> None:
        case.headers = {**(case.headers or {}), "X-Session-Token": data}


@schemathesis.check
def error_responses_use_the_envelope(ctx, response, case) -> None:
    if response.status_code < 400 or not case.path.startswith("/api/"):
        return
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str), body
    assert isinstance(body["error"]["message"], str), body
    assert isinstance(body["error"]["fields"], dict), body


@schemathesis.check
def errors_are_json_with_the_envelope(ctx, response, case) -> None:
    """Under /_allauth/ too: allauth's own keys may come along, but never HTML or an empty body."""
    if response.status_code < 400:
        return
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), response.text[:200]
    error = response.json().get("error")
    assert isinstance(error, dict), response.text[:200]
    assert error.get("code") in REGISTRY, error


@pytest.fixture
def database_kept_open(db):
    """Each operation's examples run in the test's transaction, rolled back at its end (fast), and
    the invariants are checked once they have all run.

    Calls through WSGI would close the connection at the end of each request (and with it the
    test's transaction); Django's own test client avoids it the same way.
    """
    from accounts.models import AgreementKind
    from accounts.services import agreement_publish

    # A platform in service has its agreements published (without them, sign-up answers 503).
    for kind in (AgreementKind.USER_AGREEMENT, AgreementKind.PRIVACY_POLICY):
        agreement_publish(kind=kind, version="2026-01", title=kind, url=f"https://example.test/{kind}")
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    assert invariant_violations() == []


FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_of_our_api_survives_generated_input(case, database_kept_open):
    response = case.call()

    operation = f"{case.method.upper()} {case.operation.path}"
    case.validate_response(response, excluded_checks=checks_excluded(operation, response))
    count_response(response.status_code)


@soak
@allauth.parametrize()
@FUZZ_SETTINGS
def test_every_sign_in_operation_survives_generated_input(case, database_kept_open):
    case.path_parameters = {**(case.path_parameters or {}), "client": "app"}
    response = case.call()

    # allauth's own error shape is documented in its spec; we hold it to no server error and to it,
    # and every error to our envelope alongside.
    case.validate_response(
        response,
        checks=[not_a_server_error, errors_are_json_with_the_envelope],
        excluded_checks=EXCLUDED_CHECKS,
    )
    count_response(response.status_code)


soak_run = os.environ.get("RELIABILITY_SOAK") == "1"
# Stateful: schemathesis walks the schema's links (core/api/schema.py CHAINS), feeding each step
# an id the previous response returned. `make test` runs a few short scenarios; `make soak` scales
# them with FUZZ_MAX_EXAMPLES.
STATEFUL_SETTINGS = settings(
    max_examples=MAX_EXAMPLES * 3 if MAX_EXAMPLES > 2 else 4,
    stateful_step_count=10 if MAX_EXAMPLES > 2 else 5,
    deadline=None,
    derandomize=True,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def stateful_world() -> str:
    """The caller of every scenario: coins, rides, a coupon and a donation (the reliability world),
    offers on sale to redeem, and a merchant they own with a clerk, for the merchant routes."""
    world = build_world()
    OfferFactory.create_batch(2, price_coins=5, total_stock=50, limit_per_person=20)
    owner = StaffFactory(user=world.person)
    StaffFactory(merchant=owner.merchant, role=type(owner).Role.CLERK)
    OfferFactory(merchant=owner.merchant, status=OfferFactory._meta.model.Status.DRAFT, is_reviewed=False)
    # Django's test client (the partner batch above) connects close_old_connections again.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    return session_token_for(world.person)


def test_linked_operations_of_our_api_survive_generated_scenarios(database_kept_open):
    caller = stateful_world()
    # Its own copy of the schema, so its auth (one caller for every step) leaves the other tests' alone.
    linked = schema_loaded("/api/schema/")

    @linked.auth(refresh_interval=None)
    class Caller:
        def get(self, case, context) -> str:
            return caller

        def set(self, case, data: str, context) -> None:
            case.headers = {**(case.headers or {}), "X-Session-Token": data}

    class Scenario(linked.as_state_machine()):
        def setup(self) -> None:
            # Each scenario starts from the same world: hypothesis replays scenarios and expects it.
            self.savepoint = transaction.savepoint()
            cache.clear()

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            count_response(response.status_code)
            if case.meta is not None and case.meta.generation.mode.is_negative:
                FIGURES["bad inputs tried"] += 1
            operation = f"{case.method.upper()} {case.operation.path}"
            case.validate_response(
                response,
                excluded_checks=checks_excluded(operation, response),
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

        def teardown(self) -> None:
            violations = invariant_violations()
            transaction.savepoint_rollback(self.savepoint)
            assert violations == [], "\n".join(violations)
            FIGURES["invariant checks passed"] += invariants_checked()

    Scenario.run(settings=STATEFUL_SETTINGS)


# --- Hostile input, every operation ------------------------------------------------------------


def hostile_caller() -> tuple[str, dict[str, str]]:
    """A person who can reach every operation's fields: coins, a coupon and a donation (the
    reliability world), the owner of a merchant with a clerk and a draft offer, and an operator."""
    world = build_world()
    world.person.is_staff = True
    world.person.save(update_fields=["is_staff"])
    owner = StaffFactory(user=world.person)
    clerk = StaffFactory(merchant=owner.merchant, role=type(owner).Role.CLERK)
    draft = OfferFactory(
        merchant=owner.merchant, status=OfferFactory._meta.model.Status.DRAFT, is_reviewed=False
    )
    path_values = {
        "client": "app",
        "offer_id": str(draft.public_id),
        "coupon_id": str(world.coupon.public_id),
        "staff_id": str(clerk.public_id),
        "month": "2026-11",
        "period": "week",
        "source": "phone_steps",
    }
    return session_token_for(world.person), path_values


def send(client: Client, request: HostileRequest, token: str):
    headers = {"HTTP_X_SESSION_TOKEN": token}
    headers.update({f"HTTP_{key.upper().replace('-', '_')}": value for key, value in request.headers.items()})
    path = request.path + (f"?{urlencode(request.query)}" if request.query else "")
    return client.generic(
        request.method.upper(), path, data=request.body or b"", content_type=request.content_type, **headers
    )


def answer_problem(request: HostileRequest, response) -> str | None:
    """What is wrong with the answer to a hostile request, if anything."""
    if response.status_code >= 500:
        return f"{response.status_code}: {response.content[:200]!r}"
    if response.status_code < 400:
        return None if request.expected_code is None else f"accepted ({response.status_code})"
    if not response.get("Content-Type", "").startswith("application/json") or not response.content:
        FIGURES["non-JSON answers seen"] += 1
        return f"{response.status_code} {response.get('Content-Type')}: {response.content[:100]!r}"
    body = json.loads(response.content)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or error.get("code") not in REGISTRY:
        return f"{response.status_code} without the envelope: {body!r:.200}"
    if request.path.startswith("/api/") and set(body) != {"error"}:
        return f"{response.status_code} with more than the envelope: {sorted(body)}"
    if request.expected_code and error["code"] != request.expected_code:
        return f"{error['code']} instead of {request.expected_code}"
    return None


@pytest.mark.parametrize("api", ["ours", "allauth"])
def test_every_operation_refuses_hostile_input_in_the_envelope(api, db):
    token, path_values = hostile_caller()
    raw = (schema if api == "ours" else allauth).raw_schema
    client = Client(raise_request_exception=False)
    problems = []
    operations = set()
    for request in hostile_requests(raw, path_values=path_values, every_value=MAX_EXAMPLES > 2):
        # Each request starts with an empty cache: no throttle counts across hundreds of them.
        cache.clear()
        response = send(client, request, token)
        operations.add(request.operation)
        count_response(response.status_code)
        FIGURES["bad inputs tried"] += 1
        FIGURES["hostile inputs tried"] += 1
        problem = answer_problem(request, response)
        if problem:
            problems.append(f"{request.operation} — {request.fault}: {problem}")

    every_operation = {
        f"{method.upper()} {path}"
        for path, item in raw["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert operations == every_operation
    assert problems == []


# --- Spoofed forwarding headers and missing Idempotency-Keys, on every operation ----------------
# Every operation is called as generated but with a forged X-Forwarded-For (which the peer, not a
# trusted proxy, sent: it must change nothing) and without its Idempotency-Key: where the schema
# declares the key required (writes that move coins), the answer is 428 `idempotency_key_required`
# and nothing is spent; elsewhere, no server error and the envelope as always.
SPOOFED_FORWARDED_FOR = (
    "198.51.100.7",
    "203.0.113.1, 198.51.100.7, 10.0.0.1",
    "2001:db8::1, ::ffff:10.0.0.2",
    "unknown, , not-an-address,",
    "999.999.999.999",
    ", ".join(f"10.{n // 256}.{n % 256}.1" for n in range(500)),
)


def _names_a_route(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def _requires_idempotency_key(case) -> bool:
    parameter = case.operation.headers.get("Idempotency-Key")
    return parameter is not None and parameter.is_required


def _caller_who_accepted_the_agreements() -> str:
    """A session token of a person who accepted the agreements in force: a write is judged on its key."""
    from accounts.services import agreements_accept_current

    person = UserFactory()
    agreements_accept_current(user=person)
    return session_token_for(person)


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=1, phases=[Phase.generate])
def test_every_operation_with_a_spoofed_forwarded_for_and_no_idempotency_key(
    case, database_kept_open, settings
):
    from rewards.models import Donation, LedgerTransaction

    cache.clear()
    pick = zlib.crc32(case.operation.label.encode())
    # Half the operations behind a trusted proxy (the test client's peer), so the header is parsed.
    settings.TRUSTED_PROXIES = ["127.0.0.0/8"] if pick % 2 else []
    headers = {
        name: value for name, value in (case.headers or {}).items() if name.lower() != "idempotency-key"
    }
    spoofed = SPOOFED_FORWARDED_FOR[pick % len(SPOOFED_FORWARDED_FOR)]
    if "X-Session-Token" in headers:
        headers["X-Session-Token"] = _caller_who_accepted_the_agreements()
    case.headers = {**headers, "X-Forwarded-For": spoofed}
    spent_before = (LedgerTransaction.objects.count(), Donation.objects.count())

    response = case.call()

    count_response(response.status_code)
    FIGURES["bad inputs tried"] += 1
    case.validate_response(response, excluded_checks=EXCLUDED_CHECKS)
    # Whatever else is wrong with the request (negative cases too), a route that requires the key
    # asks for it first; only a path that names no route (a generated id of the wrong shape) is a 404.
    if _requires_idempotency_key(case) and _names_a_route(case.formatted_path):
        assert response.status_code == 428, (case.operation.label, response.status_code, response.text[:300])
        assert response.json()["error"]["code"] == "idempotency_key_required"
        assert (LedgerTransaction.objects.count(), Donation.objects.count()) == spent_before


def test_the_writes_that_move_coins_require_an_idempotency_key_in_the_schema():
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, item in schema.raw_schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict)
    ]
    requiring = {
        label: operation
        for label, operation in operations
        if any(
            parameter.get("in") == "header"
            and parameter["name"] == "Idempotency-Key"
            and parameter.get("required")
            for parameter in operation.get("parameters", [])
        )
    }

    assert sorted(requiring) == [
        "POST /api/v1/catalog/offers/{offer_id}/redeem",
        "POST /api/v1/welfare/projects/{project_id}/donations",
    ]
    assert all("428" in operation["responses"] for operation in requiring.values())
    assert not any(
        "428" in operation["responses"] for label, operation in operations if label not in requiring
    )
