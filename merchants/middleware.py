"""A flash crowd's presses on a sold-out offer, answered before the rest of the request stack.

When an offer sells out, the crowd keeps pressing "redeem": most requests a hot offer sees are then
refusals. `SoldOutRedemptionMiddleware` sits right after the language is chosen and answers a
redemption of an offer flagged sold out from one Redis round trip (and an index look-up of the
Idempotency-Key, which a redemption requires: one without a valid key goes on, to be refused by
the view), without the rest of the middleware, URL resolution, sign-in, throttling, DRF's request
handling or a transaction (`merchants.selectors.sold_out_before_sign_in`).

The answer is the full path's, byte for byte: the outer middleware add what they add to every
response (the request id, the security headers, the language), and this adds what the inner ones
and the view would (Allow, X-Frame-Options, Content-Length). Everything else goes on down the
stack unchanged; a redemption that is not answered here has had its session (and the agreements
in force) read with the flag by `accounts.sessions.session_prefetch`, so sign-in does not read them
again. A check that fails
(Redis away) is logged and leaves the request to the full path.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.urls.converters import UUIDConverter

from core.api.exceptions import error_response_rendered
from core.api.idempotency import HEADER as IDEMPOTENCY_KEY_HEADER
from core.api.idempotency import idempotency_key_error
from merchants import errors, selectors

logger = logging.getLogger("merchants")

# What the redemption view answers to OPTIONS, and so lists in Allow.
_ALLOWED_METHODS = "POST, OPTIONS"


def _redeem_path_pattern() -> re.Pattern[str]:
    """The redemption route of the URL conf, as one regular expression (its offer id captured)."""
    placeholder = uuid.UUID(int=0)
    before, after = reverse("v1:catalog-offer-redeem", kwargs={"offer_id": placeholder}).split(
        str(placeholder)
    )
    return re.compile(f"{re.escape(before)}({UUIDConverter.regex}){re.escape(after)}")


class SoldOutRedemptionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._redeem_path: re.Pattern[str] | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path_info.endswith("/redeem"):
            if self._redeem_path is None:
                self._redeem_path = _redeem_path_pattern()
            match = self._redeem_path.fullmatch(request.path_info)
            if match is not None and _sold_out_before_sign_in(request, offer_id=uuid.UUID(match.group(1))):
                return _sold_out_response()
        return self.get_response(request)


def _sold_out_before_sign_in(request: HttpRequest, *, offer_id: uuid.UUID) -> bool:
    if idempotency_key_error(request) is not None:
        return False  # the view answers a missing or malformed key, as it does sold out or not
    key = request.headers[IDEMPOTENCY_KEY_HEADER]
    token = request.headers.get("X-Session-Token", "")
    try:
        check = selectors.sold_out_before_sign_in(
            request, offer_public_id=offer_id, session_token=token, idempotency_key=key
        )
    except Exception:
        # A shortcut that failed: the full path answers (and meets the same fault, or not).
        logger.warning("sold-out check before sign-in failed; the full path answers", exc_info=True)
        return False
    return check.sold_out


def _sold_out_response() -> HttpResponse:
    response = error_response_rendered(errors.OFFER_SOLD_OUT)
    response["Allow"] = _ALLOWED_METHODS
    response["X-Frame-Options"] = settings.X_FRAME_OPTIONS  # XFrameOptionsMiddleware's
    response["Content-Length"] = str(len(response.content))  # CommonMiddleware's
    return response
