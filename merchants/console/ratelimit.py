"""Attempt counters in the shared cache: sign-in and verification are refused past a limit.

A fixed window per key (`cache.add` starts it, `cache.incr` counts atomically in Redis), so every
web process sees the same count. Keys are per person and per client address: one guesser can't
lock a clerk out by address alone, and many accounts from one address are slowed down too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.core.cache import cache
from django.http import HttpRequest

from core.api.client_address import client_address as resolved_client_address


@dataclass(frozen=True)
class Limit:
    name: str
    attempts: int
    window_seconds: int


# Sign-in: failures only; a correct password clears the person's counter.
SIGN_IN_PER_USERNAME = Limit("sign-in:user", attempts=5, window_seconds=15 * 60)
SIGN_IN_PER_ADDRESS = Limit("sign-in:ip", attempts=20, window_seconds=15 * 60)
# Verification: every attempt counts; a busy counter verifies far fewer than this.
VERIFY_PER_USER = Limit("verify:user", attempts=30, window_seconds=60)
VERIFY_PER_ADDRESS = Limit("verify:ip", attempts=60, window_seconds=60)


def client_address(request: HttpRequest) -> str:
    """The client's address as the API's throttles see it (`core.api.client_address`: what the
    trusted proxies forwarded, never a header as the client sent it), so the console and the API
    count alike."""
    return resolved_client_address(request) or "unknown"


def _key(limit: Limit, subject: str) -> str:
    digest = hashlib.sha256(subject.strip().lower().encode()).hexdigest()[:32]
    return f"console:{limit.name}:{digest}"


def is_exceeded(limit: Limit, subject: str) -> bool:
    return int(cache.get(_key(limit, subject)) or 0) >= limit.attempts


def count(limit: Limit, subject: str) -> int:
    """Counts one attempt and returns the count in the current window."""
    key = _key(limit, subject)
    if cache.add(key, 1, timeout=limit.window_seconds):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # the window ended between add and incr
        cache.add(key, 1, timeout=limit.window_seconds)
        return 1


def reset(limit: Limit, subject: str) -> None:
    cache.delete(_key(limit, subject))
