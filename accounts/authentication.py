"""DRF authentication by the app's session token (`X-Session-Token`), issued by allauth headless."""

from __future__ import annotations

from allauth.headless.contrib.rest_framework.authentication import XSessionTokenAuthentication
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.request import Request

from accounts.sessions import session_prefetched, signed_in_user


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
        prefetch = session_prefetched(request, token=token)
        if not prefetch.session_exists():
            return None
        user = signed_in_user(prefetch.session)
        if user is None or not user.is_active:
            return None
        return (user, prefetch.session)


class SessionTokenScheme(OpenApiAuthenticationExtension):
    """Tells the OpenAPI schema how the app authenticates: the `X-Session-Token` header."""

    target_class = "accounts.authentication.SessionTokenAuthentication"
    name = "SessionToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-Session-Token"}
