"""What a request may carry under /api/ and /_allauth/, checked before any view or parser reads it.

These classes of hostile input are refused here, for every route there is and every route added
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
- **Text that is not Unicode** (400 `malformed_request`): a JSON string's `\\ud800` escape without
  its pair decodes to half a character, which no answer that echoes it, no hash and no database can
  encode (a 500 wherever a message quotes the input). And a body or query in a character set other
  than UTF-8 (415 `unsupported_media_type`): Django and the parsers decode with any codec Python
  knows, UTF-7 among them, in which a body's brackets and NULs hide from the checks above.

Every other route (the admin, the merchant console, the public registry pages) keeps Django's own
limits, and is refused a NUL character in its path, query string or headers too, with Django's
400 page: the admin's list filters put a query's value into SQL as it came.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.http import parse_header_parameters
from django.views.defaults import bad_request

from core.api import errors
from core.api.errors import ApplicationError
from core.api.exceptions import API_PREFIXES, error_response_for

logger = logging.getLogger("core.api")

PARTNER_PREFIX = "/api/v1/partner/"

# A JSON string, escapes and all; possessive, so an unterminated one costs one pass, not a backtrack.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
# `\u0000` that is an escape (an even number of backslashes before it, so not `\\u0000`).
_JSON_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*+\\u0000")
# A surrogate's escape (`\ud800`–`\udfff`, an escape as above), and the low one after it when they pair.
_JSON_SURROGATE_ESCAPE = re.compile(
    rb"(?<!\\)(?:\\\\)*+\\u[dD]([89a-fA-F])[0-9a-fA-F]{2}(\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
)
# The character sets a body or query may come in.
_UNICODE_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
# A multipart part's file name, plain or in RFC 5987's form (`filename*=UTF-8''…`).
_FILENAME = re.compile(rb"filename\*?=", re.IGNORECASE)
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
        if b"\x00" in head or (_FILENAME.search(head) is None and b"\x00" in value):
            return True
    return False


def json_has_lone_surrogate(body: bytes) -> bool:
    """Whether a JSON text escapes half of a surrogate pair: a high one (`\\ud800`–`\\udbff`) not
    followed by a low one (`\\udc00`–`\\udfff`), or a low one on its own."""
    return any(
        escape.group(1) not in b"89abAB" or escape.group(2) is None
        for escape in _JSON_SURROGATE_ESCAPE.finditer(body)
    )


def _content_length(request: HttpRequest) -> int:
    raw = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(raw)
    except ValueError:
        raise ApplicationError(errors.MALFORMED_REQUEST) from None
    if length < 0:
        raise ApplicationError(errors.MALFORMED_REQUEST)
    return length


def check_address(request: HttpRequest) -> None:
    """Raises `ApplicationError` for a NUL character in the path, the query string or a header."""
    if "\x00" in request.path_info:
        raise ApplicationError(errors.NUL_CHARACTER, {"where": "path"})
    query = request.META.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query:
        raise ApplicationError(errors.NUL_CHARACTER, {"where": "query"})
    for key, value in request.META.items():
        if (key.startswith("HTTP_") or key == "CONTENT_TYPE") and isinstance(value, str) and "\x00" in value:
            raise ApplicationError(errors.NUL_CHARACTER, {"where": "header"})


def check_request(request: HttpRequest) -> None:
    """Raises `ApplicationError` for a request the API must not read any further."""
    check_address(request)
    charset = request.content_params.get("charset")
    if charset is not None and charset.strip().lower() not in _UNICODE_CHARSETS:
        raise ApplicationError(errors.UNSUPPORTED_MEDIA_TYPE, {"charset": charset[:40]})

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
    refused = json_text_refused(body)
    if refused is not None:
        raise refused


def json_text_refused(text: bytes) -> ApplicationError | None:
    """What the boundary refuses in a JSON text (a NUL, half a surrogate pair, nesting deeper than
    `API_BODY_MAX_DEPTH`), or None. Also for JSON that arrives inside a request: a signed token's."""
    if b"\x00" in text or (b"\\u0000" in text and _JSON_NUL_ESCAPE.search(text)):
        return ApplicationError(errors.NUL_CHARACTER, {"where": "body"})
    if (b"\\ud" in text or b"\\uD" in text) and json_has_lone_surrogate(text):
        return ApplicationError(errors.MALFORMED_REQUEST, {"where": "body"})
    if json_depth_exceeds(text, settings.API_BODY_MAX_DEPTH):
        return ApplicationError(errors.REQUEST_TOO_DEEP, {"max_depth": settings.API_BODY_MAX_DEPTH})
    return None


class RequestBoundaryMiddleware:
    """Refuses what `check_request` refuses, under /api/ and /_allauth/, in the caller's language."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIXES):
            try:
                check_address(request)
            except ApplicationError as refused:
                logger.info("request refused at the boundary: %s %s", refused.error.code, refused.fields)
                return bad_request(request, SuspiciousOperation(str(refused.error.message)))
            return self.get_response(request)
        try:
            check_request(request)
        except ApplicationError as refused:
            logger.info("request refused at the boundary: %s %s", refused.error.code, refused.fields)
            # LocaleMiddleware has not run yet: the language is picked the way it picks it.
            with translation.override(translation.get_language_from_request(request)):
                return error_response_for(request, refused.error, fields=refused.fields)
        return self.get_response(request)
