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
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from allauth.headless.spec.internal.schema import get_schema as allauth_schema
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from config.invariants import invariant_violations, invariants_checked
from tests.accounts.factories import UserFactory
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

application = get_wsgi_application()
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
allauth = schemathesis.openapi.from_dict(allauth_schema())
allauth.app = application


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
    excluded = [positive_data_acceptance] if operation in DOMAIN_REJECTIONS else []
    case.validate_response(response, excluded_checks=excluded)
    count_response(response.status_code)


@soak
@allauth.parametrize()
@FUZZ_SETTINGS
def test_every_sign_in_operation_survives_generated_input(case, database_kept_open):
    case.path_parameters = {**(case.path_parameters or {}), "client": "app"}
    response = case.call()

    # allauth's own error shape is documented in its spec; we hold it to no server error and to it.
    case.validate_response(response, checks=[not_a_server_error], excluded_checks=EXCLUDED_CHECKS)


soak_run = os.environ.get("RELIABILITY_SOAK") == "1"
# Stateful: schemathesis walks the schema's links (config/api/schema.py CHAINS), feeding each step
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
    linked = schemathesis.openapi.from_wsgi("/api/schema/", application)

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
                excluded_checks=[positive_data_acceptance] if operation in DOMAIN_REJECTIONS else [],
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

        def teardown(self) -> None:
            violations = invariant_violations()
            transaction.savepoint_rollback(self.savepoint)
            assert violations == [], "\n".join(violations)
            FIGURES["invariant checks passed"] += invariants_checked()

    Scenario.run(settings=STATEFUL_SETTINGS)
