"""DRF authentication by the app's session token (`X-Session-Token`), issued by allauth headless."""

from __future__ import annotations

from allauth.headless.contrib.rest_framework.authentication import XSessionTokenAuthentication
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.request import Request

from accounts.sessions import (
    USER_READING,
    prefetch_extended,
    remember_signed_in,
    session_prefetched,
    signed_in_before,
    signed_in_user,
)
from core.api.throttles import UserRateThrottle, person_window, window_counted


class SessionTokenAuthentication(XSessionTokenAuthentication):
    """allauth's token authentication, answering 401 (not 403) when the token is missing."""

    def authenticate_header(self, request: Request) -> str:
        return 'SessionToken realm="api"'

    def authenticate(self, request: Request):
        token = self.get_session_token(request)
        if not token:
            return None
        # One read of the session (allauth's session-token strategy asks the store whether the
        # session exists, then reads it: two round trips), or none when this request already
        # read it with what its path needed (`accounts.sessions.session_prefetch`).
        # A token this process signed someone in with before: their rate-limit count rides along.
        # So are the person's cached readings: who they are, and what the view will show them
        # (a view's `person_cache_keys(request, person_id)`, `core.person_cache`).
        guess = signed_in_before(token)
        view = _view_of(request)
        window = person_window(guess) if guess is not None and _limits_per_person(view) else None
        keys = _person_cache_keys(view, request, guess) if guess is not None else []
        prefetch = session_prefetched(request, token=token, keys=keys, count_window=window)
        if not prefetch.session_exists():
            return None
        person_id = prefetch.signed_in_user_id()
        if person_id is not None and person_id != guess:
            # Not seen in this process yet (or another path read the session first): the readings
            # in one more round trip, not one each.
            prefetch = prefetch_extended(
                request, prefetch, USER_READING.keys(person_id) + _person_cache_keys(view, request, person_id)
            )
        user = signed_in_user(prefetch.session, found=prefetch.values, keys_read=prefetch.keys_read)
        if user is None or not user.is_active:
            return None
        remember_signed_in(token, user.pk)
        if window is not None and prefetch.window_count is not None and user.pk == guess:
            window_counted(request, key=window[0], count=prefetch.window_count)
        return (user, prefetch.session)


def _view_of(request: Request):
    """The DRF view being served (None outside one)."""
    return (getattr(request, "parser_context", None) or {}).get("view")


def _person_cache_keys(view, request: Request, person_id: int) -> list[str]:
    """The cached readings' keys the view will want (the person's own are always read)."""
    view_keys = getattr(view, "person_cache_keys", None)
    return view_keys(request, person_id) if view_keys is not None else []


def _limits_per_person(view) -> bool:
    """Whether the view being served counts the general per-person limit (`UserRateThrottle`)."""
    if view is None:
        return False
    return any(
        isinstance(throttle, UserRateThrottle) and throttle.scope == UserRateThrottle.scope
        for throttle in view.get_throttles()
    )


class SessionTokenScheme(OpenApiAuthenticationExtension):
    """Tells the OpenAPI schema how the app authenticates: the `X-Session-Token` header."""

    target_class = "accounts.authentication.SessionTokenAuthentication"
    name = "SessionToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-Session-Token"}
