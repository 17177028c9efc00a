"""DRF authentication by the app's session token (`X-Session-Token`), issued by allauth headless."""

from __future__ import annotations

from allauth.headless.contrib.rest_framework.authentication import XSessionTokenAuthentication
from allauth.headless.internal.sessionkit import lookup_session
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.request import Request

from accounts.selectors import user_by_id


class SessionTokenAuthentication(XSessionTokenAuthentication):
    """allauth's token authentication, answering 401 (not 403) when the token is missing."""

    def authenticate_header(self, request: Request) -> str:
        return 'SessionToken realm="api"'

    def authenticate(self, request: Request):
        token = self.get_session_token(request)
        if not token:
            return None
        # One read of the session: allauth's session-token strategy first asks the store whether the
        # session exists, then reads it (two cache round trips on every request). A missing or
        # expired session loads without a key, and the user check is Django's own (session hash).
        # Not read at all when the view read it already for this request (`session_token_session_read`).
        session = _session_read_for(request, token) or lookup_session(token)
        if session is None:
            return None
        user = session_user(session)
        if user is None or not user.is_active:
            return None
        return (user, session)


_SESSION_READ_ATTRIBUTE = "session_token_session"
_AGREEMENTS_READ_ATTRIBUTE = "agreements_in_force_read"


def session_token_session_read(
    request: HttpRequest, *, token: str, session: SessionBase, agreements_in_force: dict | None = None
) -> None:
    """Hands the token's session, loaded from the session store for this request, to sign-in.

    For a view that reads the session before DRF signs the person in (the sold-out check of a
    redemption reads it with the offer's flag in one Redis round trip): sign-in then checks that
    session as it checks any, instead of reading it from Redis a second time. The same read may
    bring the cached agreements in force (`accounts.selectors.AGREEMENTS_CACHE_KEY`), which the
    agreements permission then uses instead of reading them again.
    """
    setattr(request, _SESSION_READ_ATTRIBUTE, (token, session))
    if agreements_in_force is not None:
        setattr(request, _AGREEMENTS_READ_ATTRIBUTE, agreements_in_force)


def agreements_in_force_read_for(request: Request | HttpRequest) -> dict | None:
    """The cached agreements in force this request already read, if it did (else None)."""
    return getattr(getattr(request, "_request", request), _AGREEMENTS_READ_ATTRIBUTE, None)


def _session_read_for(request: Request | HttpRequest, token: str) -> SessionBase | None:
    read = getattr(getattr(request, "_request", request), _SESSION_READ_ATTRIBUTE, None)
    if read is None or read[0] != token or read[1].session_key is None:
        return None
    return read[1]


def session_user(session):
    """The person a session signs in, checked as `django.contrib.auth.get_user` checks it.

    The same rules (the session's backend is still configured; its hash of the password matches,
    or matches under a fallback secret and is then renewed), with the person loaded by one
    precompiled statement (`accounts.selectors.user_by_id`) instead of the ORM compiling the same
    SELECT on every request: this runs on every signed-in request.
    """
    try:
        user_id = session[SESSION_KEY]
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = user_by_id(user_id)
    if user is None:
        return None
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


class SessionTokenScheme(OpenApiAuthenticationExtension):
    """Tells the OpenAPI schema how the app authenticates: the `X-Session-Token` header."""

    target_class = "accounts.authentication.SessionTokenAuthentication"
    name = "SessionToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-Session-Token"}
