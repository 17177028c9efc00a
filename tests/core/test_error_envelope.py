"""One error envelope for every 4xx and 5xx under /api/."""

import pytest
from django.urls import include, path
from django.utils import translation
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from config.urls import urlpatterns as project_urlpatterns
from core.api import errors
from core.api.exceptions import error_response_rendered


class ExplodingView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = []

    def get(self, request):
        raise RuntimeError("forced failure for the test")


class EchoInputSerializer(serializers.Serializer):
    steps = serializers.IntegerField(min_value=0)


class EchoView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = []

    def post(self, request):
        serializer = EchoInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class RefusingView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = []

    def post(self, request):
        raise errors.ApplicationError(errors.IDEMPOTENCY_KEY_REUSED, fields={"key": "abc"})


class DenyingView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = []

    def post(self, request):
        raise errors.ApplicationError(errors.PERMISSION_DENIED)


class PrivateView(APIView):
    def get(self, request):
        return Response({"ok": True})


test_views = [
    path("explode", ExplodingView.as_view()),
    path("echo", EchoView.as_view()),
    path("refuse", RefusingView.as_view()),
    path("deny", DenyingView.as_view()),
    path("private", PrivateView.as_view()),
]
urlpatterns = [path("api/v1/test/", include(test_views)), *project_urlpatterns]

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)
    return body["error"]


def test_unknown_url_under_the_api_is_a_404_envelope(client):
    assert_envelope(client.get("/api/v1/no-such-thing/"), 404, "not_found")


def test_malformed_json_is_a_400_envelope(client):
    response = client.post("/api/v1/test/echo", data="{not json", content_type="application/json")
    assert_envelope(response, 400, "malformed_request")


def test_validation_errors_name_their_fields(client):
    response = client.post("/api/v1/test/echo", data={"steps": -5}, content_type="application/json")
    error = assert_envelope(response, 400, "validation_failed")
    assert list(error["fields"]) == ["steps"]


def test_an_unexpected_exception_is_a_500_envelope_with_the_request_id(client):
    response = client.get("/api/v1/test/explode", HTTP_X_REQUEST_ID="req-0123456789")
    error = assert_envelope(response, 500, "server_error")
    assert error["fields"]["request_id"] == "req-0123456789"
    assert response["X-Request-ID"] == "req-0123456789"


def test_application_errors_keep_their_code_and_fields(client):
    response = client.post("/api/v1/test/refuse", data={}, content_type="application/json")
    error = assert_envelope(response, 422, "idempotency_key_reused")
    assert error["fields"] == {"key": "abc"}


def test_missing_session_token_is_a_401_envelope(client):
    response = client.get("/api/v1/test/private")
    assert_envelope(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"]


def test_unknown_session_token_is_a_401_envelope(client):
    response = client.get("/api/v1/test/private", HTTP_X_SESSION_TOKEN="not-a-real-token")
    assert_envelope(response, 401, "not_authenticated")


def test_a_real_session_token_is_accepted(person_client):
    response = person_client.get("/api/v1/test/private")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_wrong_method_is_a_405_envelope(client):
    assert_envelope(client.get("/api/v1/test/echo"), 405, "method_not_allowed")


def test_messages_follow_accept_language(client):
    english = client.get("/api/v1/no-such-thing/", HTTP_ACCEPT_LANGUAGE="en").json()
    chinese = client.get("/api/v1/no-such-thing/", HTTP_ACCEPT_LANGUAGE="zh-Hans").json()
    assert english["error"]["message"] == "Nothing was found here."
    assert chinese["error"]["message"] == "这里什么也没有找到。"
    assert english["error"]["code"] == chinese["error"]["code"] == "not_found"


def test_a_request_id_is_made_when_the_caller_sends_none(client):
    response = client.get("/healthz")
    assert len(response["X-Request-ID"]) == 32


def test_a_malicious_request_id_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


class OncePerMinute(AnonRateThrottle):
    rate = "1/min"
    scope = "test-once"


class ThrottledView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [OncePerMinute]

    def get(self, request):
        return Response({"ok": True})


test_views.append(path("throttled", ThrottledView.as_view()))


def test_throttling_is_a_429_envelope_with_retry_after(client):
    assert client.get("/api/v1/test/throttled").status_code == 200
    response = client.get("/api/v1/test/throttled")
    error = assert_envelope(response, 429, "rate_limited")
    assert error["fields"]["retry_after_seconds"] >= 1
    assert int(response["Retry-After"]) == error["fields"]["retry_after_seconds"]


def test_an_envelope_rendered_once_is_what_a_view_renders_in_each_language(client):
    """`error_response_rendered` keeps one body per language: the bytes a DRF view answers."""
    bodies = set()
    for accept_language in ["en", "zh-Hans", "en", "zh-Hans"]:
        rendered = client.post("/api/v1/test/deny", HTTP_ACCEPT_LANGUAGE=accept_language)
        with translation.override(accept_language.lower()):
            once = error_response_rendered(errors.PERMISSION_DENIED)

        assert_envelope(rendered, 403, "permission_denied")
        assert (once.status_code, once["Content-Type"], once.content) == (
            rendered.status_code,
            rendered["Content-Type"],
            rendered.content,
        )
        bodies.add(once.content)
    assert len(bodies) == 2
