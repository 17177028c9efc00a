"""OpenAPI post-processing: the error envelope on every operation's error statuses, and the links
between operations (a response's id → the operation that takes it) that the stateful fuzz walks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular import openapi
from drf_spectacular.drainage import error
from openapi_schema_validator import OAS30Validator
from rest_framework import ISO_8601, serializers

from core.api import idempotency

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

HOUR_MINUTE_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"

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
            statuses = dict(ERROR_STATUSES)
            if _requires_idempotency_key(operation):
                statuses["428"] = "No `Idempotency-Key` header (`idempotency_key_required`)."
            for status, description in statuses.items():
                responses.setdefault(
                    status,
                    {"description": description, "content": {"application/json": {"schema": reference}}},
                )
    return result


def _requires_idempotency_key(operation: dict[str, Any]) -> bool:
    return any(
        parameter.get("in") == "header"
        and parameter.get("name") == idempotency.HEADER
        and parameter.get("required")
        for parameter in operation.get("parameters", [])
    )


class AutoSchema(openapi.AutoSchema):
    """Names the serializers nested in a view after the view: `StepSyncApi.Input` → `StepSyncInput`.

    Our views declare `Input` / `Query` / `Output` inside themselves (one view per
    operation); without this every such component would be called "Input" or "Output" and clash.
    """

    def get_operation_id(self) -> str:
        # A path's file extension (`invite.png`) has no place in a name a generated client turns into
        # a module and a function: drf-spectacular keeps its dot unless the view names the operation.
        return super().get_operation_id().replace(".", "_")

    def _get_serializer_field_meta(self, field, direction):
        meta = super()._get_serializer_field_meta(field, direction)
        if direction == "response" and isinstance(field, serializers.Field) and _answers_null(field):
            meta["nullable"] = True
        return meta

    def _is_idempotent_write(self) -> bool:
        return (
            isinstance(self.view, idempotency.IdempotentWrite) and self.method in self.view.idempotent_methods
        )

    def get_override_parameters(self) -> list:
        # A money-moving write (core.api.idempotency.IdempotentWrite) requires its key.
        parameters = list(super().get_override_parameters())
        if self._is_idempotent_write():
            parameters.append(idempotency.schema_parameter())
        return parameters

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        # A DateField with its own output format ("%Y-%m" for a month) is not an RFC 3339 date:
        # say what it is, or clients (and schemathesis) reject "2026-11" as an invalid date.
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        output_format = getattr(field, "format", None)
        if isinstance(field, serializers.DateField) and output_format not in (None, ISO_8601, "%Y-%m-%d"):
            schema.pop("format", None)
            if output_format == "%Y-%m":
                schema["pattern"] = MONTH_PATTERN
        # Likewise a TimeField written as "%H:%M" (a quiet hour): RFC 3339's time has seconds.
        if isinstance(field, serializers.TimeField) and output_format not in (None, ISO_8601):
            schema.pop("format", None)
            if output_format == "%H:%M":
                schema["pattern"] = HOUR_MINUTE_PATTERN
        _check_default(field, schema)
        return schema

    def get_serializer_name(self, serializer, direction: str) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname and "<locals>" not in qualname:
            outer, inner = qualname.split(".")[0], qualname.split(".")[-1]
            return outer.removesuffix("Api").removesuffix("View") + inner
        return super().get_serializer_name(serializer, direction)


def _answers_null(field: serializers.Field) -> bool:
    """Whether an output field can answer null although it does not say `allow_null`.

    DRF answers null for a field whose default is None, and for a dotted source that passes through
    a relation that is empty (`source="partner.name"` of a record without a partner): both are
    nullable in the schema, or a generated client refuses the answer.
    """
    if field.default is None:
        return True
    source_attrs = getattr(field, "source_attrs", None) or []
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    for attr in source_attrs[:-1]:
        if model is None:
            return False
        try:
            model_field = model._meta.get_field(attr)
        except FieldDoesNotExist:
            return False
        if getattr(model_field, "null", False) or model_field.one_to_one and model_field.auto_created:
            return True
        model = model_field.related_model
    return False


def _check_default(field, schema: dict[str, Any]) -> None:
    """A field's default must satisfy its own schema, or the document is not valid OpenAPI
    (`CharField(default="")` without `allow_blank=True` says minLength 1 and default "")."""
    if "default" not in schema or "$ref" in str(schema):
        return
    constraints = {key: value for key, value in schema.items() if key != "default"}
    problem = next(OAS30Validator(constraints).iter_errors(schema["default"]), None)
    if problem is not None:
        error(f"field {field.field_name!r}: its default breaks its own schema ({problem.message})")


@dataclass(frozen=True)
class Chain:
    """A value at `field` (a JSON pointer) in `source`'s response feeds each target's `parameter`."""

    source: str
    statuses: tuple[str, ...]
    field: str
    parameter: str
    targets: tuple[str, ...]


OK, CREATED, CREATED_OR_REPLAYED = ("200",), ("201",), ("201", "200")
CATALOG_OFFER = ("catalog_offers_retrieve", "catalog_offers_redeem")
COUPON = ("coupons_retrieve", "coupons_token", "coupons_qr")
PROJECT = ("welfare_projects_retrieve", "welfare_projects_donate")
DONATION = ("welfare_donations_retrieve", "welfare_donations_certificate")
RECORD = ("activities_records_detail", "activities_records_appeal")
DATA_SOURCE = ("me_data_sources_update", "me_data_sources_destroy")
MERCHANT_OFFER_CHANGES = (
    "merchant_offers_update",
    "merchant_offers_submit",
    "merchant_offers_pause",
    "merchant_offers_resume",
    "merchant_offers_end",
    "merchant_offers_image",
)
MERCHANT_OFFER = ("merchant_offers_retrieve", *MERCHANT_OFFER_CHANGES)
STAFF = ("merchant_staff_update", "merchant_staff_destroy")

# The natural chains of the API, which clients follow and schemathesis' stateful fuzz walks:
# source operationId, its statuses, a JSON pointer into its body → the targets' path parameter.
# A replayed 200 (same Idempotency-Key) returns the same object as the 201 and links the same way.
CHAINS: tuple[Chain, ...] = (
    Chain("catalog_offers_list", OK, "/results/0/id", "offer_id", CATALOG_OFFER),
    Chain("catalog_offers_retrieve", OK, "/id", "offer_id", ("catalog_offers_redeem",)),
    Chain("catalog_offers_redeem", CREATED_OR_REPLAYED, "/id", "coupon_id", COUPON),
    Chain("coupons_list", OK, "/results/0/id", "coupon_id", COUPON),
    Chain("coupons_retrieve", OK, "/offer/id", "offer_id", ("catalog_offers_retrieve",)),
    Chain("welfare_projects_list", OK, "/results/0/id", "project_id", PROJECT),
    Chain("welfare_projects_retrieve", OK, "/id", "project_id", ("welfare_projects_donate",)),
    Chain("welfare_projects_donate", CREATED_OR_REPLAYED, "/id", "donation_id", DONATION),
    Chain("welfare_donations_list", OK, "/results/0/id", "donation_id", DONATION),
    Chain("welfare_donations_retrieve", OK, "/project_id", "project_id", ("welfare_projects_retrieve",)),
    Chain("wallet_history_list", OK, "/results/0/id", "entry_id", ("wallet_history_retrieve",)),
    Chain("activities_records_list", OK, "/results/0/id", "record_id", RECORD),
    Chain("activities_records_detail", OK, "/id", "record_id", ("activities_records_appeal",)),
    Chain("activities_partner_links_list", OK, "/0/id", "link_id", ("activities_partner_links_delete",)),
    Chain("activities_partner_links_create", CREATED, "/id", "link_id", ("activities_partner_links_delete",)),
    Chain("friends_list", OK, "/0/public_id", "public_id", ("friends_destroy",)),
    Chain("friends_create", CREATED, "/public_id", "public_id", ("friends_destroy",)),
    Chain("me_invite_retrieve", OK, "/code", "code", ("friends_invitations_retrieve",)),
    Chain("me_invite_create", OK, "/code", "code", ("friends_invitations_retrieve",)),
    Chain(
        "credit_profile_consents_grant", CREATED, "/partner", "partner", ("credit_profile_consents_revoke",)
    ),
    Chain(
        "credit_profile_consents_list",
        OK,
        "/consents/0/partner",
        "partner",
        ("credit_profile_consents_revoke",),
    ),
    Chain("me_identities_list", OK, "/0/id", "identity_id", ("me_identities_destroy",)),
    Chain("me_data_sources_list", OK, "/0/source", "source", DATA_SOURCE),
    Chain("merchant_offers_create", CREATED, "/id", "offer_id", MERCHANT_OFFER),
    Chain("merchant_offers_list", OK, "/results/0/id", "offer_id", MERCHANT_OFFER),
    Chain("merchant_offers_retrieve", OK, "/id", "offer_id", MERCHANT_OFFER_CHANGES),
    Chain("merchant_reports_offers", OK, "/0/offer_id", "offer_id", ("merchant_offers_retrieve",)),
    Chain("merchant_staff_list", OK, "/results/0/id", "staff_id", STAFF),
    Chain("merchant_staff_create", CREATED, "/id", "staff_id", STAFF),
)


class LinkTableError(Exception):
    """A link names an operation, status, field or parameter the schema does not have."""


def _walk(schema: dict[str, Any], components: dict[str, Any], pointer: str) -> bool:
    """Whether the JSON pointer leads somewhere in a response schema (through $refs, arrays and allOf)."""
    for token in pointer.strip("/").split("/"):
        while "$ref" in schema or "allOf" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema["allOf"][0]
        if token.isdigit():
            if "items" not in schema:
                return False
            schema = schema["items"]
        elif token in schema.get("properties", {}):
            schema = schema["properties"][token]
        else:
            return False
    return True


def add_links(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOK: declares CHAINS as OpenAPI links on the source responses.

    Raises LinkTableError (failing the schema build and its test) when the table names anything the
    schema lacks, so a renamed operation or field cannot leave a dead link behind.
    """
    operations = {
        operation["operationId"]: operation
        for path_item in result.get("paths", {}).values()
        for method, operation in path_item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }
    components = result.get("components", {}).get("schemas", {})
    problems = []
    for chain in CHAINS:
        for target_id in chain.targets:
            problems.extend(_link(chain, target_id, operations, components))
    if problems:
        raise LinkTableError("OpenAPI link table is out of date:\n" + "\n".join(problems))
    return result


def _link(chain: Chain, target_id: str, operations: dict[str, Any], components: dict[str, Any]) -> list[str]:
    """Adds one link to the source's responses; returns what the schema lacks for it."""
    source, target = operations.get(chain.source), operations.get(target_id)
    if source is None or target is None:
        return [f"{chain.source} → {target_id}: no operation {chain.source if source is None else target_id}"]
    problems = []
    if chain.parameter not in {p["name"] for p in target.get("parameters", []) if p.get("in") == "path"}:
        problems.append(f"{chain.source} → {target_id}: {target_id} has no path parameter {chain.parameter}")
    for status in chain.statuses:
        response = source.get("responses", {}).get(status)
        body = (response or {}).get("content", {}).get("application/json", {}).get("schema")
        if body is None or not _walk(body, components, chain.field):
            problems.append(f"{chain.source} → {target_id}: its {status} response has no {chain.field}")
            continue
        response.setdefault("links", {})[target_id] = {
            "operationId": target_id,
            "parameters": {chain.parameter: f"$response.body#{chain.field}"},
        }
    return problems
