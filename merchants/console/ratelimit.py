"""Attempt counters in the shared cache: sign-in and verification are refused past a limit.

A fixed window per key (opened by its first attempt), counted by one atomic increment in Redis
(`core.api.throttles.window_increment`, as the API's general limits count), so every web process
sees the same count and attempts sent at the same moment are each counted before any of them is
let through. Keys are per person and per client address: one guesser can't lock a clerk out by
address alone, and many accounts from one address are slowed down too. A clerk's verification
limit is one budget for the console and the API (`merchants.apis.common.VerifyThrottle`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.core.cache import cache
from django.http import HttpRequest

from core.api.client_address import client_address as resolved_client_address
from core.api.throttles import window_give_back, window_increment


@dataclass(frozen=True)
class Limit:
    name: str
    attempts: int
    window_seconds: int


# Sign-in: every attempt is counted before the password is checked; a correct one clears the
# person's counter and gives the address its attempt back, so in effect failures count.
SIGN_IN_PER_USERNAME = Limit("sign-in:user", attempts=5, window_seconds=15 * 60)
SIGN_IN_PER_ADDRESS = Limit("sign-in:ip", attempts=20, window_seconds=15 * 60)
# Verification: every attempt counts; a busy counter verifies far fewer than this. Typed codes are
# 60 bits: a clerk's 60 tries a minute, through the console and the API together, guess nothing.
VERIFY_PER_USER = Limit("verify:user", attempts=60, window_seconds=60)
VERIFY_PER_ADDRESS = Limit("verify:ip", attempts=60, window_seconds=60)


def client_address(request: HttpRequest) -> str:
    """The client's address as the API's throttles see it (`core.api.client_address`: what the
    trusted proxies forwarded, never a header as the client sent it), so the console and the API
    count alike."""
    return resolved_client_address(request) or "unknown"


def _key(limit: Limit, subject: str) -> str:
    """The counter of `subject`. The subject comes as the caller normalized it (a username as
    authentication sees it: `SignInForm.username_for_limits`)."""
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return f"console:{limit.name}:{digest}"


def attempt(limit: Limit, subject: str) -> bool:
    """Counts one attempt (an atomic increment; the first opens the window, which lasts
    `window_seconds` from then); True while the window's count is within the limit."""
    return window_increment(_key(limit, subject), limit.window_seconds) <= limit.attempts


def seconds_left(limit: Limit, subject: str) -> int:
    """How long until the subject's window ends and its attempts are counted afresh."""
    left = cache.ttl(_key(limit, subject))
    return left if left and left > 0 else limit.window_seconds


def give_back(limit: Limit, subject: str) -> None:
    """Uncounts one attempt of the current window (one that turned out not to count)."""
    window_give_back(_key(limit, subject))


def reset(limit: Limit, subject: str) -> None:
    cache.delete(_key(limit, subject))
