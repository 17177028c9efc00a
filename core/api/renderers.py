"""Renderers for routes whose success is a file, and the rule that their errors stay JSON.

A PNG route renders with its PNG renderer whatever the request accepts, so a client asking for the
type the schema declares (`image/png`) gets it instead of a 406; the CSV routes list their renderer
beside JSON and answer either. Errors are rendered as the JSON envelope in both.
"""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer


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
