"""The API's general rate limits: fixed windows counted in Redis, shared by every worker."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from config.urls import urlpatterns as project_urlpatterns
from core.api.throttles import AnonRateThrottle, UserRateThrottle, window_increment
from tests.accounts.factories import UserFactory


class ThreePerMinute(UserRateThrottle):
    rate = "3/min"
    scope = "test-three"


class TwicePerMinuteSignedOut(AnonRateThrottle):
    rate = "2/min"
    scope = "test-two"


class CountedView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [TwicePerMinuteSignedOut, ThreePerMinute]

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [path("api/v1/test/", include([path("counted", CountedView.as_view())])), *project_urlpatterns]
pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _fresh_counts():
    cache.clear()


def test_a_person_gets_the_rate_then_a_429_with_the_seconds_to_wait():
    user = UserFactory()
    client = APIClient()
    client.force_authenticate(user)
    assert [client.get("/api/v1/test/counted").status_code for _ in range(3)] == [200, 200, 200]
    response = client.get("/api/v1/test/counted")
    assert response.status_code == 429
    body = response.json()["error"]
    assert body["code"] == "rate_limited"
    assert 1 <= body["fields"]["retry_after_seconds"] <= 60
    assert int(response["Retry-After"]) == body["fields"]["retry_after_seconds"]


def test_the_count_is_per_person_and_shared_by_every_client_of_that_person():
    first, second = UserFactory(), UserFactory()
    clients = []
    for user in (first, first, second):
        client = APIClient()
        client.force_authenticate(user)
        clients.append(client)
    assert [clients[i % 2].get("/api/v1/test/counted").status_code for i in range(3)] == [200] * 3
    assert clients[0].get("/api/v1/test/counted").status_code == 429
    assert clients[1].get("/api/v1/test/counted").status_code == 429
    assert clients[2].get("/api/v1/test/counted").status_code == 200


def test_signed_out_requests_are_counted_per_address():
    client = APIClient()
    assert [client.get("/api/v1/test/counted").status_code for _ in range(3)] == [200, 200, 429]
    assert APIClient(REMOTE_ADDR="10.0.0.9").get("/api/v1/test/counted").status_code == 200


def test_a_window_counts_atomically_in_redis_and_expires():
    key = "throttle_test_window:1"
    assert [window_increment(key, 60) for _ in range(5)] == [1, 2, 3, 4, 5]
    client = cache.client.get_client()
    assert 0 < client.ttl(cache.client.make_key(key)) <= 60
