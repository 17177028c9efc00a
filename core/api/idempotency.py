"""Writes that move money carry an Idempotency-Key, or are refused before they start.

A phone on a flaky network retries: without a key, the retry of a redemption or a donation whose
answer was lost spends the coins a second time. With one, the service finds the effect the key
already made (the unique `(person, idempotency_key)` of a coupon or a donation) and answers it
again. So a view that moves money declares it by inheriting `IdempotentWrite`: its writes are
refused with 428 `idempotency_key_required` when the header is missing and 400
`idempotency_key_invalid` when it is malformed, before the body is read; the OpenAPI schema
declares the header required on those operations (`core.api.schema.AutoSchema`). The view
takes the checked key from `request.idempotency_key`.
"""

from __future__ import annotations

import re

from django.http import HttpRequest
from drf_spectacular.utils import OpenApiParameter

from core.api.errors import IDEMPOTENCY_KEY_INVALID, IDEMPOTENCY_KEY_REQUIRED, ApplicationError, ErrorCode

HEADER = "Idempotency-Key"
PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
_KEY = re.compile(PATTERN)


def idempotency_key_error(request: HttpRequest) -> ErrorCode | None:
    """What is wrong with the request's Idempotency-Key: missing, malformed, or nothing (None)."""
    key = request.headers.get(HEADER)
    if not key:
        return IDEMPOTENCY_KEY_REQUIRED
    if not _KEY.match(key):
        return IDEMPOTENCY_KEY_INVALID
    return None


def idempotency_key_of(request: HttpRequest) -> str:
    """The request's Idempotency-Key, checked; refuses the request without a valid one."""
    error = idempotency_key_error(request)
    if error is not None:
        raise ApplicationError(error)
    return request.headers[HEADER]


def schema_parameter() -> OpenApiParameter:
    return OpenApiParameter(
        HEADER,
        {"type": "string", "pattern": PATTERN},
        OpenApiParameter.HEADER,
        required=True,
        description=(
            "Required. 8–64 letters, digits, - or _ (a UUID will do): a new key for each new action, "
            "the same key for its retries, which return the first attempt's result."
        ),
    )


class IdempotentWrite:
    """Mixin for a DRF view whose writes move money: they need a valid Idempotency-Key.

    Checked in `initial`, after sign-in, permissions and throttling (a stranger still gets 401),
    before the handler reads the body; only for the methods the view serves.
    """

    idempotent_methods: frozenset[str] = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        # A method the view does not serve is answered 405 by the dispatch, key or not.
        if request.method in self.idempotent_methods and hasattr(self, request.method.lower()):
            request.idempotency_key = idempotency_key_of(request)
