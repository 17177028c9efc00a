"""Fixtures of the rewards tests: the data migrations' rows, put back after transactional tests
flush them (the methodology's behaviours, the default rating thresholds and badges)."""

from __future__ import annotations

import importlib

import pytest

# The activities app's capture fixtures, for the tests of what rewards makes of captured carbon.
from tests.activities.conftest import authorize, post_batch, rider, transit  # noqa: F401


@pytest.fixture(autouse=True)
def seeded_rows(request) -> None:
    if "django_db_setup" not in request.fixturenames and not request.node.get_closest_marker("django_db"):
        return
    request.getfixturevalue("django_db_blocker")
    from django.apps import apps

    from activities.models import Behaviour
    from rewards.models import Badge

    if not Behaviour.objects.exists():
        importlib.import_module("activities.migrations.0003_default_methodology_v1").create_v1(apps, None)
    if not Badge.objects.exists():
        importlib.import_module("rewards.migrations.0007_default_thresholds_and_badges").create(apps, None)


@pytest.fixture(autouse=True)
def _leaderboards_local_cache() -> None:
    """Each test starts without this process's copies of boards (the shared cache is cleared too)."""
    from rewards.gamification.leaderboards import local_cache_clear

    local_cache_clear()
