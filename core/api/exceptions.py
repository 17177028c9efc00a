"""Turns every exception raised under the API into the one error envelope."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import translation
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core.api import errors
from core.api.renderers import JSONRenderer
from core.logging import current_request_id

logger = logging.getLogger("core.api")

_DRF_CODES: list[tuple[type[Exception], errors.ErrorCode]] = [
    (drf_exceptions.ParseError, errors.MALFORMED_REQUEST),
    (drf_exceptions.NotAuthenticated, errors.NOT_AUTHENTICATED),
    (drf_exceptions.AuthenticationFailed, errors.AUTHENTICATION_FAILED),
    (drf_exceptions.PermissionDenied, errors.PERMISSION_DENIED),
    (drf_exceptions.NotFound, errors.NOT_FOUND),
    (drf_exceptions.MethodNotAllowed, errors.METHOD_NOT_ALLOWED),
    (drf_exceptions.NotAcceptable, errors.NOT_ACCEPTABLE),
    (drf_exceptions.UnsupportedMediaType, errors.UNSUPPORTED_MEDIA_TYPE),
    (drf_exceptions.Throttled, errors.RATE_LIMITED),
    (drf_exceptions.ValidationError, errors.VALIDATION_FAILED),
]


def envelope(
    error: errors.ErrorCode,
    *,
    message: Any = None,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "error": {
            "code": error.code,
            "message": str(message if message is not None else error.message),
            "fields": errors.error_fields_rendered(fields) if fields else {},
        }
    }


def error_json_response(
    error: errors.ErrorCode,
    *,
    message: Any = None,
    fields: dict[str, Any] | None = None,
    status: int | None = None,
) -> JsonResponse:
    """The envelope as a plain Django response, for code outside DRF views."""
    return JsonResponse(
        envelope(error, message=message, fields=fields),
        status=status or error.status,
        json_dumps_params={"ensure_ascii": False},
    )


ALLAUTH_PREFIX = "/_allauth/"
# Every answer under these is JSON, and every error the envelope.
# /.well-known/ holds the public keys of signed statements: an API route like the others.
API_PREFIXES = ("/api/", ALLAUTH_PREFIX, "/.well-known/")
# The code of an error answer that carries no code of its own (Django's, or allauth's empty ones).
ERROR_FOR_STATUS: dict[int, errors.ErrorCode] = {
    400: errors.MALFORMED_REQUEST,
    401: errors.NOT_AUTHENTICATED,
    403: errors.PERMISSION_DENIED,
    404: errors.NOT_FOUND,
    405: errors.METHOD_NOT_ALLOWED,
    406: errors.NOT_ACCEPTABLE,
    413: errors.REQUEST_TOO_LARGE,
    415: errors.UNSUPPORTED_MEDIA_TYPE,
    429: errors.RATE_LIMITED,
    503: errors.SERVICE_UNAVAILABLE,
}


def error_for_status(status: int) -> errors.ErrorCode:
    fallback = errors.SERVER_ERROR if status >= 500 else errors.VALIDATION_FAILED
    return ERROR_FOR_STATUS.get(status, fallback)


def error_response_for(
    request: HttpRequest,
    error: errors.ErrorCode,
    *,
    fields: dict[str, Any] | None = None,
    status: int | None = None,
) -> JsonResponse:
    """The envelope for code outside the views; under /_allauth/ it also carries allauth's own
    `status` and `errors` keys, so that allauth's client code reads it as one of its errors."""
    if error is errors.SERVER_ERROR and not fields:
        fields = server_error_fields()
    status = status or error.status
    body = envelope(error, fields=fields)
    if request.path.startswith(ALLAUTH_PREFIX):
        body = {
            "status": status,
            "errors": [{"code": error.code, "message": body["error"]["message"]}],
            **body,
        }
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


# (code, language) → the envelope as JSONRenderer renders it: a handful of entries, one per fixed
# error answered this way and language served.
_RENDERED_ENVELOPES: dict[tuple[str, str | None], bytes] = {}


def error_response_rendered(error: errors.ErrorCode) -> HttpResponse:
    """The envelope of an error without fields, in the active language, byte for byte as a DRF view
    answers it (JSONRenderer's compact JSON), rendered once per language.

    For an answer given many times a second (an offer sold out, to a flash crowd): no `Response`,
    content negotiation or JSON encoding each time. The view still adds its own headers
    (`finalize_response`), and the middleware theirs. This is DRF's answer to an error raised
    before content negotiation, whatever the Accept header (after it, `Accept: …; indent=4`
    would be honoured).
    """
    key = (error.code, translation.get_language())
    body = _RENDERED_ENVELOPES.get(key)
    if body is None:
        body = JSONRenderer().render(envelope(error))
        _RENDERED_ENVELOPES[key] = body
    return HttpResponse(body, status=error.status, content_type=JSONRenderer.media_type)


def server_error_fields() -> dict[str, Any]:
    return {"request_id": current_request_id()}


def _validation_fields(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {key: _validation_fields(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_validation_fields(item) for item in detail]
    return str(detail)


def _drf_error_response(exc: drf_exceptions.APIException) -> Response:
    error = next(
        (code for exc_type, code in _DRF_CODES if isinstance(exc, exc_type)),
        None,
    )
    headers: dict[str, str] = {}
    fields: dict[str, Any] = {}
    message: Any = None
    status = exc.status_code
    if isinstance(exc, drf_exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            non_field = detail.pop("non_field_errors", None) if "non_field_errors" in detail else None
            fields = _validation_fields(detail)
            if non_field:
                message = " ".join(str(item) for item in non_field)
        elif isinstance(detail, list):
            message = " ".join(str(item) for item in detail) or None
    elif isinstance(exc, drf_exceptions.Throttled):
        if exc.wait is not None:
            retry_after = max(1, int(exc.wait + 0.999))
            fields = {"retry_after_seconds": retry_after}
            headers["Retry-After"] = str(retry_after)
    elif error is None:
        # Another APIException subclass (from a library): keep its status, name it generically.
        error = errors.SERVER_ERROR if status >= 500 else errors.VALIDATION_FAILED
        message = str(exc.detail)
    if error is None:
        error = errors.VALIDATION_FAILED
    if isinstance(exc, drf_exceptions.AuthenticationFailed | drf_exceptions.NotAuthenticated):
        headers["WWW-Authenticate"] = 'SessionToken realm="api"'
    return Response(envelope(error, message=message, fields=fields), status=status, headers=headers)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every error, expected or not, leaves as the envelope."""
    if isinstance(exc, errors.ApplicationError):
        set_rollback()
        return Response(
            envelope(exc.error, message=exc.message, fields=exc.fields),
            status=exc.error.status,
            headers=exc.headers,
        )
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = drf_exceptions.ValidationError(detail=detail)
    elif isinstance(exc, RequestDataTooBig):
        set_rollback()
        return Response(envelope(errors.REQUEST_TOO_LARGE), status=413)
    elif isinstance(exc, SuspiciousOperation | RecursionError):
        # More query or form fields or files than Django reads, or a text nested past the
        # interpreter's stack that the boundary could not see: a request that cannot be read.
        set_rollback()
        return Response(envelope(errors.MALFORMED_REQUEST), status=400)

    if isinstance(exc, drf_exceptions.APIException):
        set_rollback()
        return _drf_error_response(exc)

    set_rollback()
    logger.exception("unexpected error in an API view", exc_info=exc)
    return Response(
        envelope(errors.SERVER_ERROR, fields=server_error_fields()),
        status=500,
    )
