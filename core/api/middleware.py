"""Request ids, and the error envelope for what happens outside DRF views under /api/ and /_allauth/."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core.api import errors
from core.api.exceptions import API_PREFIXES, error_for_status, error_response_for
from core.logging import reset_request_id, set_request_id

logger = logging.getLogger("core.api")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
API_PREFIX = "/api/"


class RequestIdMiddleware:
    """Takes the caller's X-Request-ID when it looks sane, else makes one; echoes it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response["X-Request-ID"] = request_id
        return response


class ErrorEnvelopeMiddleware:
    """Under /api/ and /_allauth/, an error answer that is not JSON becomes the envelope of its status.

    Whatever made it: a middleware's own refusal (CSRF's 403 page), allauth's empty 400 for a body
    it cannot read and its empty 405, Django's 404 for a path no route matches. Answers that carry
    JSON already (our envelope, allauth's errors) pass as they are. Close to the outside of the
    stack, so that it sees what every other middleware answered.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith(API_PREFIXES)
            or (
                response.get("Content-Type", "").startswith("application/json")
                and (response.streaming or response.content)
            )
        ):
            return response
        replaced = error_response_for(
            request, error_for_status(response.status_code), status=response.status_code
        )
        for header, value in response.items():
            if header.lower() not in {"content-type", "content-length", "content-language"}:
                replaced[header] = value
        return replaced


class ApiErrorMiddleware:
    """Under /api/, an exception outside DRF still leaves as the envelope (and is logged).

    Not under /_allauth/: allauth answers from exceptions of its own (`ImmediateHttpResponse`, in its
    middleware's `process_exception`, which runs after this one's); a crash there reaches Django's
    handler500, which answers the envelope too (core/api/handlers.py).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        logger.exception("unexpected error under the API", exc_info=exception)
        return error_response_for(request, errors.SERVER_ERROR)
