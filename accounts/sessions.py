"""The app's sessions, and the one read of what a signed-in request needs before its view runs.

Every signed-in request starts by reading its session token's session from Redis, and a few hot
paths need other small Redis values at the same moment (a redemption: the offer's sold-out flag
and the agreements in force). `session_prefetch` reads them all in one round trip (`MGET`) and
remembers what it read for the rest of the request; sign-in (`accounts.authentication`) and the
agreements permission take it from there (`session_prefetched`) instead of reading again.
Nothing else reads or writes the session's cache entry.

Sign-in also puts the person's rate-limit count in that round trip (`count_window`: the INCR and
EXPIRE of `core.api.throttles.person_window`): a token names one person for its whole life (a new
sign-in or a key cycle makes a new token), so once a token has signed someone in, this process
remembers whom (`remember_signed_in`), and the next request with it is counted in the same
pipeline as its session is read. The count is handed to the throttle only once the session is
checked and names that same person.

    prefetch = sessions.session_prefetch(request, token=token, keys=[flag_key], agreements=True)
    prefetch.values[flag_key]        # the caller's keys, as read (a missing key is absent)
    prefetch.signed_in_user_id()     # who the session says it is (not yet checked)
    # ... later, in the same request:
    sessions.session_prefetched(request, token=token)  # the same read, or one of its own

`SessionStore` is the session engine (`SESSION_ENGINE = "accounts.sessions"`): Django's
database-backed store cached in Redis, whose `load()` can start from the data a prefetch already
read from its cache entry (the same entry, the same data: the store's own `load()` would have read
exactly that). The person is then checked as `django.contrib.auth.get_user` checks a session
(`signed_in_user`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends import cached_db
from django.core.cache import cache, caches
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django_redis.cache import RedisCache
from redis.exceptions import RedisError

from accounts.models import Agreement, PersonSession, User
from accounts.selectors import AGREEMENTS_CACHE_KEY, user_by_id
from core.local_time import local_day_of
from core.person_cache import Reading, renew

logger = logging.getLogger(__name__)

# Where the request keeps its prefetch; written and read only by this module.
_REQUEST_ATTRIBUTE = "accounts_session_prefetch"
# Whom each token signed in, in this process (token → user id; emptied when it grows past the bound).
_SIGNED_IN: dict[str, int] = {}
_SIGNED_IN_BOUND = 100_000


def remember_signed_in(token: str, user_id: int) -> None:
    """Remembers, in this process, that `token` signed in `user_id` (a token never names another)."""
    if len(_SIGNED_IN) >= _SIGNED_IN_BOUND:
        _SIGNED_IN.clear()
    _SIGNED_IN[token] = user_id


def signed_in_before(token: str) -> int | None:
    """Whom `token` signed in when this process last checked it, or None (unchecked: a guess)."""
    return _SIGNED_IN.get(token)


class SessionStore(cached_db.SessionStore):
    """Django's cached database session store, optionally started from its cache entry's data.

    `cached_data`: what the store's cache entry (`cache_key`) held when the caller read it, in a
    round trip of its own; `load()` then returns it instead of reading the entry again. None: the
    store loads as Django's does (the cache, else the database, refilling the cache).
    """

    def __init__(self, session_key: str | None = None, *, cached_data: dict | None = None) -> None:
        super().__init__(session_key)
        self._cached_data = cached_data

    def start_from(self, cached_data: dict) -> None:
        """Loads, when first accessed, what its cache entry held when the caller read it."""
        self._cached_data = cached_data

    def load(self) -> dict:
        if self._cached_data is not None:
            data, self._cached_data = self._cached_data, None
            return data
        return super().load()

    @classmethod
    def get_model_class(cls):
        return PersonSession

    def create_model_instance(self, data: dict) -> PersonSession:
        """The row, with whom the session signed in (`sessions_end` finds a person's by it)."""
        instance = super().create_model_instance(data)
        instance.user_id = session_user_id(data)
        return instance


def session_user_id(data: Mapping[str, Any] | SessionStore) -> int | None:
    """Whom a session (or its data) says it signed in, or None."""
    try:
        return int(data[SESSION_KEY])
    except (KeyError, TypeError, ValueError):
        return None


def sessions_end(*, user_id: int) -> int:
    """Ends every session of a person: their rows now, their cached copies once the caller's
    transaction commits (before, a request could put a row back in the cache from the database)."""
    keys = list(PersonSession.objects.filter(user_id=user_id).values_list("session_key", flat=True))
    PersonSession.objects.filter(session_key__in=keys).delete()
    cached = [SessionStore.cache_key_prefix + key for key in keys]
    transaction.on_commit(lambda: caches[settings.SESSION_CACHE_ALIAS].delete_many(cached))
    return len(keys)


@dataclass(frozen=True)
class SessionPrefetch:
    """What one round trip read for a request signed in by `token`."""

    token: str
    # The token's session; None when the token is not even shaped like a session key. Loaded from
    # what was read when its cache entry was there, else lazily (the database) on first access.
    session: SessionStore | None
    # The cached agreements in force (kind → Agreement) when asked for and cached, else None.
    agreements_in_force: dict[str, Agreement] | None = None
    # The caller's own keys, as read: a key that was not there is absent.
    values: Mapping[str, Any] = field(default_factory=dict)
    # Every key the round trip asked for (those absent from `values` were not there).
    keys_read: frozenset[str] = frozenset()
    # With `count_window`: the window's count after this request's increment (None: not counted).
    window_count: int | None = None

    def signed_in_user_id(self) -> int | None:
        """The person the session names (unchecked: `signed_in_user` checks), or None."""
        return None if self.session is None else session_user_id(self.session)

    def session_exists(self) -> bool:
        """Whether the token names a live session (a missing or expired one clears the key)."""
        if self.session is None:
            return False
        self.session.get(SESSION_KEY)  # loads it, from the prefetch or the store
        return self.session.session_key is not None


def session_prefetch(
    request: HttpRequest | None,
    *,
    token: str,
    keys: Iterable[str] = (),
    agreements: bool = False,
    count_window: tuple[str, int] | None = None,
) -> SessionPrefetch:
    """Reads the token's session, and the cache `keys` (and the agreements in force) beside it,
    in one round trip; remembers the read for the rest of `request` (when given).

    `count_window`: a rate-limit counter (key, seconds) to increment in the same round trip.
    """
    session = SessionStore(session_key=token) if token else None
    if session is not None and session.session_key is None:
        session = None  # not shaped like a session key: nothing to read
    asked = list(keys)
    # The person the token signed in before, cached (`USER_READING`): read beside the session.
    guess = signed_in_before(token) if token else None
    if guess is not None:
        asked += USER_READING.keys(guess)
    wanted = list(asked)
    if agreements:
        wanted.append(AGREEMENTS_CACHE_KEY)
    # The session's own entry is in the same cache only when sessions use the default one.
    same_cache = settings.SESSION_CACHE_ALIAS == "default"
    session_key = session.cache_key if session is not None and same_cache else None
    if session_key is not None:
        wanted.append(session_key)
    window_count = None
    if count_window is not None and isinstance(caches["default"], RedisCache):
        found, window_count = _read_and_count(wanted, count_window)
    else:
        found = cache.get_many(wanted) if wanted else {}
    if session is not None and session_key is not None and found.get(session_key) is not None:
        session.start_from(found.pop(session_key))
    prefetch = SessionPrefetch(
        token=token,
        session=session,
        agreements_in_force=found.pop(AGREEMENTS_CACHE_KEY, None) if agreements else None,
        values=found,
        keys_read=frozenset(asked),
        window_count=window_count,
    )
    if request is not None:
        setattr(request, _REQUEST_ATTRIBUTE, prefetch)
    return prefetch


def _read_and_count(keys: list[str], window: tuple[str, int]) -> tuple[dict[str, Any], int | None]:
    """MGET of `keys` and the window's INCR/EXPIRE in one pipeline; fails open as the cache does."""
    client = caches["default"].client
    window_key, seconds = window
    made_window = client.make_key(window_key)
    try:
        pipeline = client.get_client(write=True).pipeline(transaction=False)
        if keys:
            # The cache's own key function: what django-redis' `make_key` makes, without its wrapper.
            make_key = caches["default"].make_key
            pipeline.mget([make_key(key) for key in keys])
        pipeline.incr(made_window)
        pipeline.expire(made_window, seconds, nx=True)
        answers = pipeline.execute()
    except (RedisError, OSError):
        logger.warning("session prefetch failed: redis unreachable")
        return {}, None
    values = answers[0] if keys else []
    found = {key: client.decode(value) for key, value in zip(keys, values, strict=True) if value is not None}
    return found, int(answers[-2])


def session_prefetched(
    request: HttpRequest,
    *,
    token: str,
    keys: Iterable[str] = (),
    count_window: tuple[str, int] | None = None,
) -> SessionPrefetch:
    """This request's prefetch for `token` (a DRF request too), else a prefetch of the session and
    `keys` (with `count_window` counted in the same round trip)."""
    prefetch = getattr(request, _REQUEST_ATTRIBUTE, None)
    if prefetch is not None and prefetch.token == token:
        return prefetch
    return session_prefetch(request, token=token, keys=keys, count_window=count_window)


def prefetch_extended(request: HttpRequest, prefetch: SessionPrefetch, keys: list[str]) -> SessionPrefetch:
    """`prefetch` with the cache `keys` it had not read, read in one round trip; remembered for the
    rest of `request` in its place."""
    missing = [key for key in keys if key not in prefetch.keys_read]
    if not missing:
        return prefetch
    found = cache.get_many(missing)
    extended = replace(
        prefetch, values={**prefetch.values, **found}, keys_read=prefetch.keys_read | frozenset(missing)
    )
    setattr(request, _REQUEST_ATTRIBUTE, extended)
    return extended


def prefetched_values(request: HttpRequest) -> tuple[Mapping[str, Any], frozenset[str]]:
    """The cache values this request read beside its session, and every key it asked for."""
    prefetch = getattr(request, _REQUEST_ATTRIBUTE, None)
    if prefetch is None:
        return {}, frozenset()
    return prefetch.values, prefetch.keys_read


def agreements_in_force_prefetched(request: HttpRequest) -> dict[str, Agreement] | None:
    """The cached agreements in force this request already read with its session, else None."""
    prefetch = getattr(request, _REQUEST_ATTRIBUTE, None)
    return prefetch.agreements_in_force if prefetch is not None else None


# The signed-in person as cached (`core.person_cache`): renewed whenever their row changes.
USER_READING = Reading("user", sources=("user",))


def user_changed(*, user_ids: Iterable[int]) -> None:
    """Retires the cached rows of these people: called wherever a person's row is written (the
    model's save and delete through signals, each `update()` of people beside it)."""
    renew("user", user_ids)


def on_user_saved(sender, instance: User, **kwargs) -> None:
    user_changed(user_ids=[instance.pk])


def signed_in_user(
    session: SessionStore, *, found: Mapping[str, Any] | None = None, keys_read: Collection[str] = ()
) -> User | None:
    """The person a session signs in, checked as `django.contrib.auth.get_user` checks it.

    The same rules (the session's backend is still configured; its hash of the password matches,
    or matches under a fallback secret and is then renewed). The person comes from the cache when
    the request's prefetch read their `USER_READING` (`found`, `keys_read`) and it is current, else
    by one prepared statement (`accounts.selectors.user_by_id`), then cached: this runs on every
    signed-in request.
    """
    try:
        user_id = session[SESSION_KEY]
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    try:
        person_id = int(user_id)
    except (TypeError, ValueError):
        return None
    cached = USER_READING.lookup(person_id, found or {}, keys_read)
    if cached.hit:
        user = cached.value
    else:
        user = user_by_id(person_id)
        if user is None:
            return None
        cached.store(user)
    session_hash = session.get(HASH_SESSION_KEY)
    current_hash = user.get_session_auth_hash()
    if session_hash and constant_time_compare(session_hash, current_hash):
        return user
    if session_hash and any(
        constant_time_compare(session_hash, fallback) for fallback in user.get_session_auth_fallback_hash()
    ):
        session.cycle_key()
        session[HASH_SESSION_KEY] = current_hash
        return user
    session.flush()
    return None


def person_cached(request: HttpRequest, reading: Reading, read: Callable[[], Any], *, part: str = "") -> Any:
    """What `read()` returns for the signed-in person, from the cache while it is current.

    From the keys this request's prefetch read beside its session (a view asks for them with
    `person_cache_keys(request, person_id)`), else with a round trip of its own. A value never
    outlives the local day it was read on (what a person sees of "today" changes at midnight).
    """
    person_id = request.user.pk
    found, keys_read = prefetched_values(request)
    cached = reading.lookup(person_id, found, keys_read, part)
    today = local_day_of(timezone.now())
    if cached.hit and cached.value[0] == today:
        return cached.value[1]
    value = read()
    cached.store((today, value))
    return value
