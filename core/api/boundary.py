"""What a request may carry under /api/ and /_allauth/, checked before any view or parser reads it.

Three classes of hostile input are refused here, for every route there is and every route added
later, in the error envelope:

- **A body too large for its kind of route** (413 `request_too_large`): judged by Content-Length
  before a byte is read (`API_BODY_MAX_BYTES`: sign-in, JSON, partner batches, uploads).
- **A JSON body nested too deeply** (400 `request_too_deep`): Python's JSON parser recurses once
  per level, and a few thousand levels exhaust the interpreter's stack (a 500 on every JSON route,
  ours and allauth's). The body is scanned without recursion: strings are cut out by one regular
  expression, the brackets that remain are counted (`API_BODY_MAX_DEPTH`).
- **A NUL character** (400 `nul_character`): PostgreSQL cannot store one in text, so one that
  reached a query (a path's invitation code, a query's district) answered 500. Refused in the path,
  the query string, any header, a JSON string (`\\u0000`), a form field (`%00`) and the text fields
  of a multipart form (files may hold any byte).

Every other route (the admin, the merchant console) keeps Django's own limits.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.http import parse_header_parameters

from core.api import errors
from core.api.errors import ApplicationError
from core.api.exceptions import API_PREFIXES, error_response_for

logger = logging.getLogger("core.api")

PARTNER_PREFIX = "/api/v1/partner/"

# A JSON string, escapes and all; possessive, so an unterminated one costs one pass, not a backtrack.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
# `\u0000` that is an escape (an even number of backslashes before it, so not `\\u0000`).
_JSON_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*+\\u0000")
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_OPENING = frozenset(b"[{")


def body_kind(request: HttpRequest) -> str:
    """Which of `API_BODY_MAX_BYTES` applies to this request."""
    if request.content_type == "multipart/form-data":
        return "upload"
    if request.path.startswith("/_allauth/"):
        return "sign_in"
    if request.path.startswith(PARTNER_PREFIX):
        return "partner"
    return "json"


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` in a JSON text, found without recursion."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        if byte in _OPENING:
            depth += 1
            if depth > limit:
                return True
        elif depth:
            depth -= 1
    return False


def _multipart_text_has_nul(body: bytes, content_type: str) -> bool:
    _, parameters = parse_header_parameters(content_type)
    boundary = parameters.get("boundary", "").encode("latin-1", "replace")
    if not boundary:
        return b"\x00" in body
    for part in body.split(b"--" + boundary):
        head, separator, value = part.partition(b"\r\n\r\n")
        if not separator:
            continue
        if b"\x00" in head or (b"filename=" not in head.lower() and b"\x00" in value):
            return True
    return False


def _content_length(request: HttpRequest) -> int:
    raw = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(raw)
    except ValueError:
        raise ApplicationError(errors.MALFORMED_REQUEST) from None
    if length < 0:
        raise ApplicationError(errors.MALFORMED_REQUEST)
    return length


def check_request(request: HttpRequest) -> None:
    """Raises `ApplicationError` for a request the API must not read any further."""
    if "\x00" in request.path_info:
        raise ApplicationError(errors.NUL_CHARACTER, {"where": "path"})
    query = request.META.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query:
        raise ApplicationError(errors.NUL_CHARACTER, {"where": "query"})
    for key, value in request.META.items():
        if (key.startswith("HTTP_") or key == "CONTENT_TYPE") and isinstance(value, str) and "\x00" in value:
            raise ApplicationError(errors.NUL_CHARACTER, {"where": "header"})

    length = _content_length(request)
    if not length:
        return
    limit = settings.API_BODY_MAX_BYTES[body_kind(request)]
    if length > limit:
        raise ApplicationError(errors.REQUEST_TOO_LARGE, {"max_bytes": limit})
    body = request.body
    if request.content_type == "multipart/form-data":
        if _multipart_text_has_nul(body, request.META.get("CONTENT_TYPE", "")):
            raise ApplicationError(errors.NUL_CHARACTER, {"where": "body"})
        return
    if request.content_type == "application/x-www-form-urlencoded":
        if b"%00" in body or b"\x00" in body:
            raise ApplicationError(errors.NUL_CHARACTER, {"where": "body"})
        return
    # JSON, or a body that claims to be something else: allauth reads any body as JSON.
    if b"\x00" in body or (b"\\u0000" in body and _JSON_NUL_ESCAPE.search(body)):
        raise ApplicationError(errors.NUL_CHARACTER, {"where": "body"})
    if json_depth_exceeds(body, settings.API_BODY_MAX_DEPTH):
        raise ApplicationError(errors.REQUEST_TOO_DEEP, {"max_depth": settings.API_BODY_MAX_DEPTH})


class RequestBoundaryMiddleware:
    """Refuses what `check_request` refuses, under /api/ and /_allauth/, in the caller's language."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIXES):
            return self.get_response(request)
        try:
            check_request(request)
        except ApplicationError as refused:
            logger.info("request refused at the boundary: %s %s", refused.error.code, refused.fields)
            # LocaleMiddleware has not run yet: the language is picked the way it picks it.
            with translation.override(translation.get_language_from_request(request)):
                return error_response_for(request, refused.error, fields=refused.fields)
        return self.get_response(request)
