"""The API's resolver by first segment resolves every path exactly as Django's own would."""

from __future__ import annotations

import pytest
from django.urls import Resolver404, get_resolver, include, path
from django.urls.resolvers import URLResolver

from config import urls
from core.api.routing import FirstSegmentResolver

PATHS = [
    "/api/v1/wallet",
    "/api/v1/wallet/history",
    "/api/v1/wallet/history/12",
    "/api/v1/activities/today",
    "/api/v1/leaderboards/today",
    "/api/v1/leaderboards/week",
    "/api/v1/me",
    "/api/v1/me/statements",
    "/api/v1/me/statements/imports",
    "/api/v1/merchant/offers/4b1f7a3e-8a6c-4f0e-9d1e-2c7b9a0e5f11/submit",
    "/api/v1/catalog/offers",
    "/api/v1/groups/4b1f7a3e-8a6c-4f0e-9d1e-2c7b9a0e5f11/members",
    "/api/v1/reports/month/2026-11.png",
    "/api/v1/registry/my-lots",
    "/api/v1/partner/records",
    "/api/v1/statements/verify",
    "/healthz",
]
NOT_FOUND = ["/api/v1/nothing-here", "/api/v1/", "/api/v1/wallets", "/api/v1/me/", "/api/v1/leaderboards"]


def _django_s_own() -> URLResolver:
    """The same routes under a plain `path(…, include(…))`."""
    patterns = [path("api/v1/", include((urls.api_v1, "api"), namespace="v1"))] + [
        entry for entry in urls.urlpatterns if not isinstance(entry, FirstSegmentResolver)
    ]
    return URLResolver(get_resolver().pattern, patterns)


@pytest.mark.parametrize("url", PATHS)
def test_a_path_resolves_to_what_django_s_own_resolver_finds(url):
    ours, theirs = get_resolver().resolve(url), _django_s_own().resolve(url)

    assert (ours.func, ours.args, ours.kwargs, ours.url_name, ours.namespaces, ours.route) == (
        theirs.func,
        theirs.args,
        theirs.kwargs,
        theirs.url_name,
        theirs.namespaces,
        theirs.route,
    )


@pytest.mark.parametrize("url", NOT_FOUND)
def test_a_path_no_route_matches_is_not_found_by_either(url):
    with pytest.raises(Resolver404):
        _django_s_own().resolve(url)
    with pytest.raises(Resolver404):
        get_resolver().resolve(url)


@pytest.mark.parametrize("url", ["/api/v1/wallet", "/api/v1/leaderboards/today", "/api/v1/activities/today"])
def test_a_read_tries_only_the_routes_of_its_first_segment(url):
    """Inside an app's routes too: the board, deep in the rewards app's list, tries only its own."""
    match = get_resolver().resolve(url)

    assert len(match.tried) <= 2  # the routes tried, its own included


def test_the_api_s_resolver_is_the_one_serving_api_v1():
    assert any(isinstance(entry, FirstSegmentResolver) for entry in urls.urlpatterns)
