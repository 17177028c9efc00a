"""OpenAPI post-processing: every operation documents the error envelope for its error statuses."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from rest_framework import ISO_8601, serializers

ERROR_ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine code; see docs/api-errors.md."},
                "message": {"type": "string", "description": "For people, in the request's language."},
                "fields": {"type": "object", "additionalProperties": True},
            },
        }
    },
}

MONTH_PATTERN = r"^\d{4}-\d{2}$"

ERROR_STATUSES = {
    "400": "Invalid input (`validation_failed`, `malformed_request` or a rule of the domain).",
    "401": "Not signed in (`not_authenticated`).",
    "403": "Not allowed (`permission_denied`).",
    "404": "Not found, or not yours (`not_found`).",
    "405": "Method not allowed (`method_not_allowed`).",
    "406": "Not acceptable (`not_acceptable`).",
    "409": "Conflicts with the current state.",
    "413": "Too large (`request_too_large`).",
    "415": "Unsupported media type (`unsupported_media_type`).",
    "422": "Well-formed but refused by a rule (see the code).",
    "429": "Rate limited (`rate_limited`).",
    "500": "Unexpected error (`server_error`).",
    "503": "A dependency is unavailable (`service_unavailable`).",
}


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOK: adds the envelope to each operation's error responses."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorEnvelope"] = ERROR_ENVELOPE_SCHEMA
    reference = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses.setdefault(
                    status,
                    {"description": description, "content": {"application/json": {"schema": reference}}},
                )
    return result


class AutoSchema(openapi.AutoSchema):
    """Names the serializers nested in a view after the view: `StepSyncApi.InputSerializer` → `StepSyncInput`.

    Our views declare `InputSerializer` / `OutputSerializer` inside themselves (one view per
    operation); without this every such component would be called "Input" or "Output" and clash.
    """

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        # A DateField with its own output format ("%Y-%m" for a month) is not an RFC 3339 date:
        # say what it is, or clients (and schemathesis) reject "2026-11" as an invalid date.
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        output_format = getattr(field, "format", None)
        if isinstance(field, serializers.DateField) and output_format not in (None, ISO_8601, "%Y-%m-%d"):
            schema.pop("format", None)
            if output_format == "%Y-%m":
                schema["pattern"] = MONTH_PATTERN
        return schema

    def get_serializer_name(self, serializer, direction: str) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname and "<locals>" not in qualname:
            outer, inner = qualname.split(".")[0], qualname.split(".")[-1]
            return outer.removesuffix("Api").removesuffix("View") + inner
        return super().get_serializer_name(serializer, direction)
