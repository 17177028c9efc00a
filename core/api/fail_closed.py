"""Sign-in fails closed without Redis.

The cache ignores Redis errors (base settings: sessions fall back to the database, cached reads to
their source), so everything that does not need Redis keeps working through an outage. Rate limits
would then silently stop counting, and the ways in are what rate limits protect against password
spraying, guest farming and token replays (allauth keeps used bank `jti`s in the cache). So while
Redis is unreachable, the ways in answer 503 `service_unavailable` instead of running unthrottled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from core.api import errors
from core.api.exceptions import error_json_response

logger = logging.getLogger(__name__)

# POSTs to these paths sign someone in, create an account, or merge accounts.
SIGN_IN_PREFIXES = ("/_allauth/", "/api/v1/guests", "/api/v1/me/merge")


def redis_is_reachable() -> bool:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class SignInNeedsRedisMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            settings.REDIS_URL
            and request.method == "POST"
            and request.path.startswith(SIGN_IN_PREFIXES)
            and not redis_is_reachable()
        ):
            logger.error("sign-in refused: redis unreachable, rate limits cannot count")
            # LocaleMiddleware has not run yet: the language is picked the way it picks it.
            with translation.override(translation.get_language_from_request(request)):
                return error_json_response(errors.SERVICE_UNAVAILABLE)
        return self.get_response(request)
