"""The API's JSON renderer, and renderers for routes whose success is a file (whose errors stay JSON).

`JSONRenderer` writes what DRF's does, byte for byte, with orjson: a leaderboard page's fifty
entries take a tenth of the time to encode (docs/performance.md). What orjson cannot write by
itself goes through DRF's own encoder (lazy translations, decimals, durations, sets); a request for
indented JSON and an integer past 64 bits are rendered by DRF's renderer itself. One difference: a
float that is not a number is written `null`, where DRF's would fail the request (no answer carries
one: amounts are integers).

A PNG route renders with its PNG renderer whatever the request accepts, so a client asking for the
type the schema declares (`image/png`) gets it instead of a 406; the CSV routes list their renderer
beside JSON and answer either. Errors are rendered as the JSON envelope in both.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from rest_framework import renderers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.utils.encoders import JSONEncoder

_ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
# DRF escapes these two (valid JSON, but not valid JavaScript in older engines); so do we.
_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def _drf_default(value: Any) -> Any:
    """What DRF's encoder makes of a value JSON has no type for."""
    return JSONEncoder().default(value)


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer, byte for byte, encoded by orjson (see the module's docstring)."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            rendered = orjson.dumps(data, default=_drf_default, option=_ORJSON_OPTIONS)
        except (TypeError, ValueError):
            # An integer past 64 bits, or what DRF's encoder refuses: DRF says so, or renders it.
            try:
                return super().render(data, accepted_media_type, renderer_context)
            except UnicodeEncodeError:
                # Half a surrogate pair in a string (an input quoted back): written as its escape.
                return json.dumps(data, cls=self.encoder_class, ensure_ascii=True, allow_nan=False).encode()
        for separator, escaped in _LINE_SEPARATORS:
            if separator in rendered:
                rendered = rendered.replace(separator, escaped)
        return rendered


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None) -> bytes:
        if isinstance(data, bytes):
            return data
        return str(data).encode("utf-8")


class PNGRenderer(BaseRenderer):
    media_type = "image/png"
    format = "png"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None) -> bytes:
        return data if isinstance(data, bytes) else b""


# The mixins' docstrings would become the description of every operation using them: comments.


class JsonErrorsMixin:
    # For routes whose success is a file (PNG, CSV): their errors still leave as the JSON envelope.

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


class TheFileNegotiation(DefaultContentNegotiation):
    """A file route answers its file whatever the request's Accept (`image/png`, `application/json`
    from a generic HTTP helper, `*/*`) or `?format=`: there is nothing else to answer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class PNGFileMixin(JsonErrorsMixin):
    # A route that answers a PNG (and its errors as the JSON envelope).

    renderer_classes = [PNGRenderer]
    content_negotiation_class = TheFileNegotiation
