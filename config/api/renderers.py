"""Renderers for routes whose success is a file, and the rule that their errors stay JSON.

A file route lists its file renderer first (what `Accept: */*` gets) and JSON second (what its
errors are rendered with), so a client asking for the type the schema declares (`image/png`,
`text/csv`) gets it instead of a 406.
"""

from __future__ import annotations

from typing import Any

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


class JsonErrorsMixin:
    """For routes whose success is a file (PNG, CSV): their errors still leave as the JSON envelope."""

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


class PNGFileMixin(JsonErrorsMixin):
    """A route that answers a PNG: `Accept: image/png` gets it, and so does a client asking for JSON
    (as it always has: the picture is the answer); errors are the JSON envelope."""

    renderer_classes = [PNGRenderer, JSONRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code < 400:
            request.accepted_renderer = PNGRenderer()
            request.accepted_media_type = PNGRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
