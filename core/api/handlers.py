"""Django's error views (handler400/403/404/500): under /api/ and /_allauth/, the envelope.

Django answers with these when something fails outside a view's own handling: a Host header not in
ALLOWED_HOSTS (`DisallowedHost`), a body over Django's own limits, a path no route matches, a crash
in a view that is not DRF's (allauth's). Elsewhere (the admin, the merchant console) Django's pages
stay as they are.
"""

from __future__ import annotations

from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views import defaults

from core.api import errors
from core.api.exceptions import API_PREFIXES, error_response_for


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not request.path.startswith(API_PREFIXES):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        return error_response_for(request, errors.HOST_NOT_ALLOWED)
    if isinstance(exception, RequestDataTooBig):
        return error_response_for(request, errors.REQUEST_TOO_LARGE)
    return error_response_for(request, errors.MALFORMED_REQUEST)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not request.path.startswith(API_PREFIXES):
        return defaults.permission_denied(request, exception)
    return error_response_for(request, errors.PERMISSION_DENIED)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not request.path.startswith(API_PREFIXES):
        return defaults.page_not_found(request, exception)
    return error_response_for(request, errors.NOT_FOUND)


def server_error(request: HttpRequest) -> HttpResponse:
    if not request.path.startswith(API_PREFIXES):
        return defaults.server_error(request)
    return error_response_for(request, errors.SERVER_ERROR)
