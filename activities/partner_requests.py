"""The partner API's signed requests, for every app's partner routes (`core.api.views.SignedRequestApi`):
who signed, the headers the schema documents, and our signature of an answer.

    X-Partner-Key:         the partner's API key
    X-Timestamp:           Unix seconds, within five minutes of the server clock
    X-Partner-Request-Id:  unique per request (a replayed id is refused)
    X-Signature:           timestamp + "\\n" + request id + "\\n" + body, signed in the partner's
                           scheme: HMAC-SHA256 or HMAC-SM3 (hex, under its signing secret) or
                           SM2 with SM3 (hex DER, its key pair) — docs/partner-integration.md
"""

from __future__ import annotations

import functools

from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from activities import services, signing
from activities.models import Partner
from core.api.views import SignedRequestApi


def partner_authenticated(view: SignedRequestApi, request: Request) -> Partner:
    """The partner that signed this request (`services.partner_authenticate`), or the refusal.

    A route whose answer discloses something (`signs_answers`) signs it with our SM2 key for a
    partner of an SM scheme, errors after sign-in included (activities/signing.py).
    """
    request_id = request.headers.get("X-Partner-Request-Id", "")
    partner = services.partner_authenticate(
        api_key=request.headers.get("X-Partner-Key", ""),
        timestamp=request.headers.get("X-Timestamp", ""),
        request_id=request_id,
        signature=request.headers.get("X-Signature", ""),
        body=request.body,
    )
    if view.signs_answers and partner.uses_sm:
        view.answer_signed_with(functools.partial(signing.answer_signature_headers, request_id))
    return partner


PARTNER_HEADERS = [
    OpenApiParameter("X-Partner-Key", str, OpenApiParameter.HEADER, required=True),
    OpenApiParameter("X-Timestamp", str, OpenApiParameter.HEADER, required=True, description="Unix seconds"),
    OpenApiParameter("X-Partner-Request-Id", str, OpenApiParameter.HEADER, required=True),
    OpenApiParameter(
        "X-Signature",
        str,
        OpenApiParameter.HEADER,
        required=True,
        description='timestamp + "\\n" + request id + "\\n" + body signed in the partner\'s scheme, hex: '
        "HMAC-SHA256 or HMAC-SM3 under its secret, or its SM2 signature (DER) with SM3",
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
