"""allauth's headless endpoints (/_allauth/) speak our error envelope too, and are rate limited.

allauth answers errors as ``{"status": 400, "errors": [{"code", "message", "param"}]}``. The app
branches on one envelope everywhere, so this middleware adds ``"error": {"code", "message",
"fields"}`` to every allauth error response, keeping allauth's own keys for its client library.
Codes raised by our providers (e.g. `wechat_rate_limited`) keep their own HTTP status. allauth's
410 for a session token it no longer knows becomes 401 `not_authenticated`, as for our API.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

from accounts import errors as account_errors
from core.api import errors
from core.api.client_address import client_address
from core.api.exceptions import envelope

logger = logging.getLogger(__name__)

ALLAUTH_PREFIX = "/_allauth/"
# POSTs to these (under /_allauth/<client>/v1/) count against the per-IP sign-in limit.
RATE_LIMITED_SUFFIXES = ("/auth/provider/token", "/auth/login", "/auth/signup")

ALLAUTH_CODES: dict[str, errors.ErrorCode] = {
    "invalid_token": account_errors.IDENTITY_TOKEN_INVALID,
    "token_required": account_errors.IDENTITY_TOKEN_INVALID,
    "client_id_required": account_errors.IDENTITY_PROVIDER_UNKNOWN,
    "client_id_mismatch": account_errors.IDENTITY_PROVIDER_UNKNOWN,
    "token_authentication_not_supported": account_errors.IDENTITY_PROVIDER_UNKNOWN,
    "connected_other": account_errors.IDENTITY_LINKED_ELSEWHERE,
    "no_password": account_errors.IDENTITY_LAST_WAY_IN,
    "disconnect_last": account_errors.IDENTITY_LAST_WAY_IN,
    "account_not_found": account_errors.IDENTITY_NOT_FOUND,
    "too_many_login_attempts": errors.RATE_LIMITED,
    "rate_limited": errors.RATE_LIMITED,
}
STATUS_CODES: dict[int, errors.ErrorCode] = {
    400: errors.VALIDATION_FAILED,
    401: errors.NOT_AUTHENTICATED,
    403: errors.PERMISSION_DENIED,
    404: errors.NOT_FOUND,
    405: errors.METHOD_NOT_ALLOWED,
    429: errors.RATE_LIMITED,
}


def sign_in_rate_limited(request: HttpRequest) -> int | None:
    """Counts a sign-in attempt from the request's IP; returns seconds to wait when over the limit."""
    rate = settings.ACCOUNTS_RATE_LIMITS["sign_in_ip"]
    count_text, period_text = rate.split("/")
    period = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period_text[0]]
    key = f"accounts:sign_in:{client_address(request)}"
    cache.add(key, 0, timeout=period)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=period)
        count = 1
    if count <= int(count_text):
        return None
    ttl = cache.ttl(key) if hasattr(cache, "ttl") else None
    return max(1, int(ttl or period))


def _error_from_allauth(body: dict[str, Any], status: int) -> tuple[errors.ErrorCode, dict, str | None]:
    fields: dict[str, list[str]] = {}
    error: errors.ErrorCode | None = None
    message: str | None = None
    for item in body.get("errors") or []:
        if not isinstance(item, dict):
            continue
        code = item.get("code") or ""
        if error is None:
            error = errors.REGISTRY.get(code) if code in errors.REGISTRY else ALLAUTH_CODES.get(code)
            if error is None:
                message = item.get("message")
        if item.get("param"):
            fields.setdefault(item["param"], []).append(str(item.get("message", "")))
    if error is None:
        error = STATUS_CODES.get(status, errors.SERVER_ERROR if status >= 500 else errors.VALIDATION_FAILED)
    else:
        message = None
    return error, fields, message


class AllauthErrorEnvelopeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(ALLAUTH_PREFIX):
            return self.get_response(request)
        if request.method == "POST" and request.path.rstrip("/").endswith(RATE_LIMITED_SUFFIXES):
            retry_after = sign_in_rate_limited(request)
            if retry_after is not None:
                return self._rate_limited(retry_after)
        response = self.get_response(request)
        if response.status_code < 400 or not response.get("Content-Type", "").startswith("application/json"):
            return response
        try:
            body = json.loads(response.content)
        except ValueError:
            return response
        if not isinstance(body, dict) or "error" in body:
            return response
        if response.status_code == 410:
            return self._session_gone(body, response)
        error, fields, message = _error_from_allauth(body, response.status_code)
        status = response.status_code
        if error.group == account_errors.G and error.status != status:
            status = error.status
            body["status"] = status
        body.update(envelope(error, message=message, fields=fields))
        rewritten = JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})
        for header, value in response.items():
            if header.lower() not in {"content-type", "content-length"}:
                rewritten[header] = value
        if status == 429:
            rewritten.setdefault("Retry-After", "60")
        return rewritten

    @staticmethod
    def _session_gone(body: dict[str, Any], response: HttpResponse) -> JsonResponse:
        """allauth answers 410 to a session token it no longer knows (signed out, expired, the
        account closed or merged); the app is promised one answer for a token that is gone:
        401 `not_authenticated`, drop it and sign in again (docs/mobile-integration.md)."""
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        body.update(
            status=401,
            meta={**meta, "is_authenticated": False},
            **envelope(errors.NOT_AUTHENTICATED),
        )
        rewritten = JsonResponse(body, status=401, json_dumps_params={"ensure_ascii": False})
        for header, value in response.items():
            if header.lower() not in {"content-type", "content-length"}:
                rewritten[header] = value
        return rewritten

    @staticmethod
    def _rate_limited(retry_after: int) -> JsonResponse:
        body = {
            "status": 429,
            "errors": [{"code": "rate_limited", "message": str(errors.RATE_LIMITED.message)}],
            **envelope(errors.RATE_LIMITED, fields={"retry_after_seconds": retry_after}),
        }
        response = JsonResponse(body, status=429, json_dumps_params={"ensure_ascii": False})
        response["Retry-After"] = str(retry_after)
        return response
