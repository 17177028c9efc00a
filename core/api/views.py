"""The view bases every app's API builds on (no app defines a view base another app subclasses).

- `JsonApiView`: a route whose body is JSON only (the schema says so, the parser agrees); the
  picture uploads are the routes that take multipart instead.
- `SignedRequestApi`: a route called by a party that signs each request (a partner), not a person:
  no session, no throttles, no agreements to accept. The route authenticates the caller from the
  raw body it signed (the app's function, e.g. `activities.partner_requests.partner_authenticated`)
  and reads the body with `json_body`. An answer the caller must be able to verify is signed once
  rendered, over the very bytes sent (`answer_signed_with`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from core.api.errors import MALFORMED_REQUEST, ApplicationError

AnswerSigner = Callable[[bytes], dict[str, str]]


class JsonApiView(APIView):
    """Bodies are JSON only (uploads have their own view): the schema says so, the parser agrees."""

    parser_classes = [JSONParser]


class SignedRequestApi(APIView):
    """Base of the routes a signing party calls; see the module's docstring."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    # Whether the route's answers are signed for a caller whose scheme asks for it.
    signs_answers = False

    def answer_signed_with(self, signer: AnswerSigner) -> None:
        """Sign this request's answer, errors included, with `signer(rendered bytes) -> headers`."""
        self._answer_signer = signer

    def answer_headers_add(self, headers: dict[str, str]) -> None:
        """Headers for this request's answer, errors included (a notice to the signing party)."""
        self._answer_headers = {**getattr(self, "_answer_headers", {}), **headers}

    def finalize_response(self, request: Request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        for header, value in getattr(self, "_answer_headers", {}).items():
            response[header] = value
        signer = getattr(self, "_answer_signer", None)
        if signer is not None:
            # Signed once rendered: the signature covers the very bytes sent.
            def sign(rendered) -> None:
                for header, value in signer(rendered.content).items():
                    rendered[header] = value

            response.add_post_render_callback(sign)
        return response

    @staticmethod
    def json_body(request: Request) -> dict[str, Any]:
        """The signed body as a JSON object, read from the raw bytes the signature covers."""
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise ApplicationError(MALFORMED_REQUEST) from error
        if not isinstance(data, dict):
            raise ApplicationError(MALFORMED_REQUEST)
        return data
