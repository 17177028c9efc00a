"""The partner API's signed requests, for every app's partner routes (`core.api.views.SignedRequestApi`):
who signed, the headers the schema documents, and our signature of an answer.

    X-Partner-Key:         the partner's API key
    X-Timestamp:           Unix seconds, within five minutes of the server clock
    X-Partner-Request-Id:  unique per request (a replayed id is refused)
    X-Signature:           method + "\\n" + path + "\\n" + timestamp + "\\n" + request id + "\\n"
                           + body, signed in the partner's scheme: HMAC-SHA256 or HMAC-SM3 (hex,
                           under its signing secret) or SM2 with SM3 (hex DER, its key pair) —
                           docs/partner-integration.md
"""

from __future__ import annotations

import datetime
import functools

from django.utils.http import http_date
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from activities import services, signing
from activities.models import Partner
from core.api.views import SignedRequestApi


def partner_signed_in(view: SignedRequestApi, request: Request) -> services.PartnerSignedIn:
    """Who signed this request and in which form (`services.partner_authenticate`), or the refusal.

    A route whose answer discloses something (`signs_answers`) signs it with our SM2 key for a
    partner of an SM scheme, errors after sign-in included (activities/signing.py). A request signed
    in the legacy form is answered with when that form stops being accepted (`Sunset`).
    """
    request_id = request.headers.get("X-Partner-Request-Id", "")
    signed_in = services.partner_authenticate(
        api_key=request.headers.get("X-Partner-Key", ""),
        timestamp=request.headers.get("X-Timestamp", ""),
        request_id=request_id,
        signature=request.headers.get("X-Signature", ""),
        method=request.method,
        path=request.get_full_path(),
        body=request.body,
    )
    if signed_in.legacy_signature_until is not None:
        view.answer_headers_add(legacy_signature_notice(signed_in.legacy_signature_until))
    if view.signs_answers and signed_in.partner.uses_sm:
        view.answer_signed_with(functools.partial(signing.answer_signature_headers, request_id))
    return signed_in


def partner_authenticated(view: SignedRequestApi, request: Request) -> Partner:
    """The partner that signed this request (`partner_signed_in`), or the refusal."""
    return partner_signed_in(view, request).partner


def legacy_signature_notice(until: datetime.datetime) -> dict[str, str]:
    """The answer's headers to a request signed without its method and path."""
    return {
        "Sunset": http_date(until.timestamp()),
        "X-Signature-Notice": (
            "signed without the method and path; sign method, path, timestamp, request id and body"
            f" before {until.astimezone(datetime.UTC).isoformat(timespec='seconds')}"
        ),
    }


PARTNER_HEADERS = [
    OpenApiParameter("X-Partner-Key", str, OpenApiParameter.HEADER, required=True),
    OpenApiParameter("X-Timestamp", str, OpenApiParameter.HEADER, required=True, description="Unix seconds"),
    OpenApiParameter("X-Partner-Request-Id", str, OpenApiParameter.HEADER, required=True),
    OpenApiParameter(
        "X-Signature",
        str,
        OpenApiParameter.HEADER,
        required=True,
        description='method + "\\n" + path + "\\n" + timestamp + "\\n" + request id + "\\n" + body, signed '
        "in the partner's scheme, hex: HMAC-SHA256 or HMAC-SM3 under its secret, or its SM2 signature"
        " (DER) with SM3. The path is the path and query as in the request line.",
    ),
    OpenApiParameter(
        "Sunset",
        str,
        OpenApiParameter.HEADER,
        response=True,
        description="only on a request signed in the legacy form (without method and path): when that"
        " form stops being accepted (HTTP date)",
    ),
    OpenApiParameter(
        "X-Signature-Notice",
        str,
        OpenApiParameter.HEADER,
        response=True,
        description="only beside `Sunset`: what to sign instead",
    ),
]
# Our signature of an answer to a partner of an SM scheme (docs/partner-integration.md).
ANSWER_SIGNATURE_HEADERS = [
    OpenApiParameter(name, str, OpenApiParameter.HEADER, response=True, description=description)
    for name, description in (
        ("X-Platform-Signature-Scheme", "`sm2-sm3`, for partners of an SM scheme"),
        ("X-Platform-Key-Id", "the id of our SM2 key that signed the answer"),
        ("X-Platform-Timestamp", "Unix seconds, when the answer was signed"),
        (
            "X-Platform-Signature",
            'hex DER SM2 signature of timestamp + "\\n" + your request id + "\\n" + body',
        ),
    )
]
