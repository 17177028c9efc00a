"""DRF authentication by the app's session token (`X-Session-Token`), issued by allauth headless."""

from __future__ import annotations

from allauth.core.internal.sessionkit import get_session_user
from allauth.headless.contrib.rest_framework.authentication import XSessionTokenAuthentication
from allauth.headless.internal.sessionkit import lookup_session
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.request import Request


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
        session = lookup_session(token)
        if session is None:
            return None
        user = get_session_user(session)
        if user is None or not user.is_active:
            return None
        return (user, session)


class SessionTokenScheme(OpenApiAuthenticationExtension):
    """Tells the OpenAPI schema how the app authenticates: the `X-Session-Token` header."""

    target_class = "accounts.authentication.SessionTokenAuthentication"
    name = "SessionToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-Session-Token"}
