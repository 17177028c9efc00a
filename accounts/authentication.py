"""DRF authentication by the app's session token (`X-Session-Token`), issued by allauth headless."""

from __future__ import annotations

from allauth.headless.contrib.rest_framework.authentication import XSessionTokenAuthentication
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.request import Request


class SessionTokenAuthentication(XSessionTokenAuthentication):
    """allauth's token authentication, answering 401 (not 403) when the token is missing."""

    def authenticate_header(self, request: Request) -> str:
        return 'SessionToken realm="api"'

    def authenticate(self, request: Request):
        result = super().authenticate(request)
        if result is not None and not result[0].is_active:
            return None
        return result


class SessionTokenScheme(OpenApiAuthenticationExtension):
    """Tells the OpenAPI schema how the app authenticates: the `X-Session-Token` header."""

    target_class = "accounts.authentication.SessionTokenAuthentication"
    name = "SessionToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-Session-Token"}
