"""Fixtures shared by every app's tests. Tests talk to the real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.core.cache import cache
from django.utils import translation
from rest_framework.test import APIClient

from accounts.models import User
from tests.accounts.factories import UserFactory

pytest_plugins = ["tests.browser", "tests.schema_conformance"]


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    """Each test starts with an empty cache (this worker's own Redis database)."""
    cache.clear()


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the default language: one that activates another (a request in Chinese
    through the test client, say) must not leave it to the next test on this worker."""
    translation.deactivate()
    yield
    translation.deactivate()


def session_token_for(user: User) -> str:
    """A real app session token, as allauth headless issues one at sign-in."""
    from allauth.headless.internal.sessionkit import new_session

    session = new_session()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return session.session_key


@pytest.fixture(autouse=True)
def methodology_v1(request) -> None:
    """The default methodology of the data migration; transactional tests flush it, so it is put back."""
    if request.node.get_closest_marker("django_db"):
        request.getfixturevalue("django_db_blocker")
    elif "transactional_db" in request.fixturenames:
        request.getfixturevalue("transactional_db")
    elif "db" in request.fixturenames:
        request.getfixturevalue("db")
    else:
        return
    from django.apps import apps

    from activities.models import Behaviour

    if not Behaviour.objects.exists():
        import importlib

        importlib.import_module("activities.migrations.0003_default_methodology_v1").create_v1(apps, None)
        importlib.import_module("activities.migrations.0007_factor_minimum_payment").set_minimum_payments(
            apps, None
        )
        importlib.import_module("activities.migrations.0011_one_credit_per_instance").declare_instances(
            apps, None
        )
        importlib.import_module(
            "activities.migrations.0012_statements_and_standard_references"
        ).fill_standard_references(apps, None)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    """Returns an API client signed in as the given person through a real session token."""

    def make(user: User) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_X_SESSION_TOKEN=session_token_for(user))
        return client

    return make


@pytest.fixture
def person(db) -> User:
    return UserFactory()


@pytest.fixture
def person_client(person: User, client_for) -> APIClient:
    return client_for(person)
