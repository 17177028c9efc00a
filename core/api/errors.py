"""The error codes of the API.

Every error a client can see has a stable machine `code` that apps branch on, an HTTP
status, and a message in the request's language. Each app declares its own codes in its
`errors.py` with `ErrorCode(...)`; declaring one registers it, and docs/api-errors.md is
generated from the registry (`manage.py document_errors`) and checked by a test.

Services raise `ApplicationError(SOME_CODE, fields=...)`; the API layer turns it into the
envelope ``{"error": {"code": ..., "message": ..., "fields": {...}}}``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from core.api.serializers import local_datetime_text

REGISTRY: dict[str, ErrorCode] = {}


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    message: Promise | str
    # Who sees it and when: goes into docs/api-errors.md, never to the client.
    description: str = ""
    group: str = "general"

    def __post_init__(self) -> None:
        existing = REGISTRY.get(self.code)
        if existing is not None and existing != self:
            raise ValueError(f"error code {self.code!r} is declared twice with different meanings")
        REGISTRY[self.code] = self


@dataclass
class ApplicationError(Exception):
    """A rule of the domain said no. Raised by services, rendered by the API layer."""

    error: ErrorCode
    fields: dict[str, Any] = field(default_factory=dict)
    message: str | Promise | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.error.code}: {self.message or self.error.message}"


def error_fields_rendered(value: Any) -> Any:
    """`fields` with every moment in it written as the answers write it (`local_datetime_text`: in
    the local time zone), and days as YYYY-MM-DD.

    The envelope passes every error's fields through here, so a service puts the datetime itself
    in `fields` and never formats it (a database datetime is in UTC: `.isoformat()` would say so).
    """
    if isinstance(value, datetime.datetime):
        return local_datetime_text(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: error_fields_rendered(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [error_fields_rendered(item) for item in value]
    return value


G = "general"
VALIDATION_FAILED = ErrorCode(
    "validation_failed",
    400,
    _("Some fields are not valid."),
    "The request body or query failed validation; `fields` maps each field to its messages.",
    G,
)
MALFORMED_REQUEST = ErrorCode(
    "malformed_request",
    400,
    _("The request body could not be read."),
    "The body is not valid JSON (or not the declared content type), a JSON string escapes half of a"
    " surrogate pair (`\\ud800` without its low half; `fields.where` is `body`), or the request has"
    " more query or form fields than the server reads.",
    G,
)
NOT_AUTHENTICATED = ErrorCode(
    "not_authenticated",
    401,
    _("Please sign in first."),
    "No `X-Session-Token` header, or it is unknown or expired: sign in again.",
    G,
)
AUTHENTICATION_FAILED = ErrorCode(
    "authentication_failed",
    401,
    _("The credentials were not accepted."),
    "Credentials were sent but are wrong.",
    G,
)
PERMISSION_DENIED = ErrorCode(
    "permission_denied",
    403,
    _("You are not allowed to do this."),
    "Signed in, but this action is not open to this account.",
    G,
)
NOT_FOUND = ErrorCode(
    "not_found",
    404,
    _("Nothing was found here."),
    "Unknown URL, or an object that does not exist or is not yours.",
    G,
)
METHOD_NOT_ALLOWED = ErrorCode(
    "method_not_allowed",
    405,
    _("This method is not allowed here."),
    "Wrong HTTP method.",
    G,
)
NOT_ACCEPTABLE = ErrorCode(
    "not_acceptable",
    406,
    _("The requested response format is not available."),
    "The Accept header asks for a format the API does not serve (it serves JSON).",
    G,
)
UNSUPPORTED_MEDIA_TYPE = ErrorCode(
    "unsupported_media_type",
    415,
    _("This content type is not supported."),
    "Send JSON (`application/json`) or, for uploads, `multipart/form-data`, in UTF-8: a `charset`"
    " other than UTF-8 (or ASCII) is refused for any request, `fields.charset` naming it.",
    G,
)
REQUEST_TOO_LARGE = ErrorCode(
    "request_too_large",
    413,
    _("The request is too large."),
    "The body or an uploaded file is over the size limit (`fields.max_bytes` when the body as a whole"
    " is: 64 KiB under `/_allauth/`, 1 MiB for JSON, 4 MiB for partner batches, 5.25 MiB for uploads).",
    G,
)
REQUEST_TOO_DEEP = ErrorCode(
    "request_too_deep",
    400,
    _("The request body is nested too deeply."),
    "The JSON body nests arrays and objects deeper than `fields.max_depth` (32) levels; refused before"
    " it is parsed.",
    G,
)
NUL_CHARACTER = ErrorCode(
    "nul_character",
    400,
    _("The request contains a NUL character, which no text may contain."),
    "A NUL character (`\\u0000`, `%00`) in the path, the query, a header, a JSON string or a form"
    " field; `fields.where` says which part (`path`, `query`, `header`, `body`).",
    G,
)
CURSOR_INVALID = ErrorCode(
    "cursor_invalid",
    400,
    _("This page link is not valid. Start again from the first page."),
    "The `cursor` query parameter is not one the API handed out (`next` / `previous`): drop it and"
    " fetch the first page.",
    G,
)
HOST_NOT_ALLOWED = ErrorCode(
    "host_not_allowed",
    400,
    _("This host name is not served here."),
    "The `Host` header names a host the server does not answer for.",
    G,
)
RATE_LIMITED = ErrorCode(
    "rate_limited",
    429,
    _("Too many requests. Please wait a moment and try again."),
    "Throttled; `fields.retry_after_seconds` says when to try again (also the `Retry-After` header).",
    G,
)
IDEMPOTENCY_KEY_REUSED = ErrorCode(
    "idempotency_key_reused",
    422,
    _("This Idempotency-Key was already used for a different request."),
    "The same `Idempotency-Key` came with a different body: use a new key for a new request.",
    G,
)
IDEMPOTENCY_KEY_REQUIRED = ErrorCode(
    "idempotency_key_required",
    428,
    _("Send an Idempotency-Key header with this request, so that a retry does not spend twice."),
    "A write that moves coins (redeeming an offer, donating) came without an `Idempotency-Key` header. "
    "Send a new random key (8 to 64 letters, digits, `-` or `_`, e.g. a UUID) for each new action, and "
    "the same key when retrying it: the retry then answers the first attempt's result.",
    G,
)
IDEMPOTENCY_KEY_INVALID = ErrorCode(
    "idempotency_key_invalid",
    400,
    _("The Idempotency-Key header is not valid."),
    "The `Idempotency-Key` header must be 8 to 64 characters of letters, digits, `-` and `_`.",
    G,
)
SERVER_ERROR = ErrorCode(
    "server_error",
    500,
    _("Something went wrong on our side. Please try again later."),
    "An unexpected error; `fields.request_id` identifies it in our logs.",
    G,
)
SERVICE_UNAVAILABLE = ErrorCode(
    "service_unavailable",
    503,
    _("The service is not ready. Please try again shortly."),
    "A dependency (database, Redis) is unreachable; `fields` names which.",
    G,
)
