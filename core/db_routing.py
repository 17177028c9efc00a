"""Reads that may lag go to a streaming replica; the person who just wrote reads their own writes.

With `DATABASE_REPLICA_URL` set, settings add a `replica` database alias and install
`ReplicaRouter`. It sends a read to the replica only when all of these hold:

- the model is declared lag-tolerant in `settings.DATABASE_REPLICA_READS`, by app label
  (`"registry"`) or model label (`"merchants.offer"`): core imports no app, so the apps are named
  in settings, not here;
- the read happens while a request with a safe method (GET, HEAD, OPTIONS) is being answered
  (`ReplicaRoutingMiddleware` marks it): a Celery task, a command or a request that writes reads
  the primary, so nothing computes a write from a lagging copy;
- no transaction is open on the primary (every service is `@transaction.atomic`, so whatever a
  service reads, it reads from the primary);
- the person is not pinned: a request with an unsafe method by a signed-in person leaves a marker in
  the cache (Redis) for `DATABASE_REPLICA_PIN_SECONDS`, and while it lives that person's reads go to
  the primary, so what they just did shows on their next screens however far the replica lags;
- the read is not inside `primary_reads()`: what fills a cache shared by everyone on a miss reads
  the primary, since a page built from a lagging copy would be served, to everyone and for the
  cache's lifetime, under a key (a version, a build) that says it is current.

Only the ORM is routed: raw SQL (`connection.cursor()`, `core.db.prepared_cursor()`) names its
connection and stays on the primary. Writes and migrations always go to the primary.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse

REPLICA = "replica"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# The request being answered on this thread (None outside requests) and, once looked up, whether
# its person is pinned to the primary.
_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("replica_request", default=None)
_pinned: contextvars.ContextVar[bool | None] = contextvars.ContextVar("replica_pinned", default=None)
_primary_only: contextvars.ContextVar[bool] = contextvars.ContextVar("replica_primary_only", default=False)


def replica_configured() -> bool:
    return REPLICA in connections.settings


def pin_key(user_id: int) -> str:
    return f"db:primary-pin:{user_id}"


def person_pin(*, user_id: int) -> None:
    """Sends this person's lag-tolerant reads to the primary for the next few seconds."""
    cache.set(pin_key(user_id), 1, timeout=settings.DATABASE_REPLICA_PIN_SECONDS)


@contextlib.contextmanager
def primary_reads() -> Iterator[None]:
    """Within it, every read is the primary's, even while a safe request is answered: for building
    what is then cached for everyone (a catalog page, a board's top), never from a lagging copy."""
    token = _primary_only.set(True)
    try:
        yield
    finally:
        _primary_only.reset(token)


def _lag_tolerant(model: type) -> bool:
    declared = settings.DATABASE_REPLICA_READS
    meta = model._meta
    return meta.app_label in declared or meta.label_lower in declared


def _person_pinned(request: HttpRequest) -> bool:
    pinned = _pinned.get()
    if pinned is None:
        # The user as authentication left it on the request (DRF sets it on the HttpRequest too);
        # the User model is not lag-tolerant, so resolving it here never comes back to the replica.
        user = getattr(request, "user", None)
        user_id = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
        pinned = user_id is not None and cache.get(pin_key(user_id)) is not None
        _pinned.set(pinned)
    return pinned


class ReplicaRouter:
    def db_for_read(self, model: type, **hints) -> str | None:
        request = _request.get()
        if (
            request is None
            or _primary_only.get()
            or request.method not in SAFE_METHODS
            or not _lag_tolerant(model)
            or not replica_configured()
            or connections[DEFAULT_DB_ALIAS].in_atomic_block
            or _person_pinned(request)
        ):
            return DEFAULT_DB_ALIAS
        return REPLICA

    def db_for_write(self, model: type, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, first, second, **hints) -> bool:
        # The replica holds the primary's rows: an object read from either relates to the other.
        return True

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints) -> bool:
        return db != REPLICA


class ReplicaRoutingMiddleware:
    """Tells the router which request it serves; after an unsafe request by a signed-in person,
    pins that person to the primary (whether it succeeded or not: part of it may have committed)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_token, pinned_token = _request.set(request), _pinned.set(None)
        try:
            return self.get_response(request)
        finally:
            _request.reset(request_token)
            _pinned.reset(pinned_token)
            if request.method not in SAFE_METHODS and replica_configured():
                user = getattr(request, "user", None)
                if getattr(user, "is_authenticated", False):
                    person_pin(user_id=user.pk)
