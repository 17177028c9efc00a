"""The API's general rate limits (per person, and per address for the signed-out), counted cheaply.

DRF's `SimpleRateThrottle` keeps the timestamp of every request of the window in a pickled list
that each request reads and writes back: two cache round trips and a list of up to 600 floats to
(un)pickle on every signed-in request, and two workers can overwrite each other's count. These
throttles count requests in fixed windows instead: one atomic increment a request (one Redis round
trip: INCR and EXPIRE pipelined), exact across workers. A fixed window lets a client send up to
twice the rate across a window's edge, which is fine for the general limits here (600 a minute
signed in). The ways in keep their own sliding-window throttles (accounts/throttles.py).

Like the rest of the cache, the count fails open while Redis is unreachable (sign-in fails closed
instead, `core.api.fail_closed`).

A signed-in request's per-person count can ride along in a round trip of its own: sign-in reads
the session in one Redis pipeline and adds the INCR/EXPIRE of `person_window(user_id)` to it
(`accounts.sessions`), then hands the count over with `window_counted`; the throttle uses it
instead of counting again.
"""

from __future__ import annotations

import contextlib
import logging

from django.core.cache import caches
from rest_framework import throttling

from core.api.client_address import client_address

logger = logging.getLogger(__name__)

try:
    from django_redis.cache import RedisCache
except ImportError:  # pragma: no cover - django-redis is in requirements.txt
    RedisCache = None


def window_increment(key: str, seconds: int) -> int:
    """Adds one to the counter `key`, which lives `seconds` from its first increment; returns it."""
    cache = caches["default"]
    if RedisCache is not None and isinstance(cache, RedisCache):
        import redis

        full_key = cache.client.make_key(key)
        try:
            pipeline = cache.client.get_client(write=True).pipeline(transaction=False)
            pipeline.incr(full_key)
            pipeline.expire(full_key, seconds, nx=True)
            count, _ = pipeline.execute()
        except (redis.RedisError, OSError):
            logger.warning("rate limit not counted: redis unreachable")
            return 0
        return int(count)
    cache.add(key, 0, timeout=seconds)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between the two calls: this request opens the next window
        cache.add(key, 1, timeout=seconds)
        return 1
    return count or 0  # a cache that ignores its errors answers None


def window_give_back(key: str) -> None:
    """Uncounts one increment of the counter `key` (an attempt that turned out not to count)."""
    with contextlib.suppress(ValueError):  # the window ended meanwhile: nothing to give back
        caches["default"].decr(key)


# Where a request keeps the windows already counted for it (window key → count).
_COUNTED_ATTRIBUTE = "core_throttle_windows_counted"


def person_window(user_id: int, *, now: float | None = None) -> tuple[str, int] | None:
    """The per-person limit's counter for this moment: (its cache key, the seconds it lives), as
    `UserRateThrottle` counts it; None when there is no per-person limit."""
    throttle = UserRateThrottle()
    if throttle.rate is None:
        return None
    now = throttle.timer() if now is None else now
    window = int(now // throttle.duration)
    key = throttle.cache_format % {"scope": throttle.scope, "ident": user_id}
    return f"{key}:{window}", int(throttle.duration) + 1


def window_counted(request, *, key: str, count: int) -> None:
    """Records that the window `key` was counted for this request (its count after the increment)."""
    counted = getattr(request, _COUNTED_ATTRIBUTE, None)
    if counted is None:
        counted = {}
        setattr(request, _COUNTED_ATTRIBUTE, counted)
    counted[key] = count


class FixedWindowRateThrottle(throttling.SimpleRateThrottle):
    """`SimpleRateThrottle`'s rates, scopes and cache keys, counted in fixed windows."""

    def get_ident(self, request) -> str:
        return client_address(request)

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        self.wait_seconds = (window + 1) * self.duration - now
        window_key = f"{self.key}:{window}"
        count = (getattr(request, _COUNTED_ATTRIBUTE, None) or {}).get(window_key)
        if count is None:
            count = window_increment(window_key, int(self.duration) + 1)
        return count <= self.num_requests

    def wait(self) -> float:
        return self.wait_seconds


class AnonRateThrottle(FixedWindowRateThrottle, throttling.AnonRateThrottle):
    """Per client address, for requests without a session token."""


class UserRateThrottle(FixedWindowRateThrottle, throttling.UserRateThrottle):
    """Per person when signed in (else per address)."""
