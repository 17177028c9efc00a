"""The sign-in API's OpenAPI specification: allauth headless' own, made true of this platform.

allauth describes its headless endpoints itself (`allauth.headless.spec`), already narrowed to our
settings (the app client only, our signup fields, the person as `HeadlessAdapter` shows them).
What it cannot know is added here: every error response also carries our envelope
(`accounts.middleware.AllauthErrorEnvelopeMiddleware` adds `"error": {"code", "message",
"fields"}` beside allauth's own keys), our stack's statuses (rate limited, Redis down, our
providers' codes) are declared, the routes this platform does not offer (phone numbers,
`accounts.allauth_routes`) are left out, and where allauth's document disagrees with what allauth
answers, it is corrected. Served at /_allauth/openapi.json (and .yaml), where allauth serves it,
and listed beside ours in the API docs.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import yaml
from allauth.headless.spec.internal.schema import get_schema
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.views.decorators.http import require_GET

from accounts.allauth_routes import not_offered
from core.api.schema import ERROR_ENVELOPE_SCHEMA, ERROR_STATUSES

ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}
METHODS = ("get", "post", "put", "patch", "delete")


def _offered(path: str) -> bool:
    try:
        return resolve(re.sub(r"\{[^}]+\}", "x", path)).func is not not_offered
    except Resolver404:
        return False


def _with_envelope(response: dict[str, Any]) -> None:
    """allauth's error body, plus our envelope beside it."""
    for media in (response.get("content") or {}).values():
        schema = media.get("schema")
        media["schema"] = {"allOf": [schema, ENVELOPE_REF]} if schema else ENVELOPE_REF


def allauth_specification() -> dict[str, Any]:
    spec = copy.deepcopy(get_schema())
    spec["paths"] = {path: item for path, item in spec["paths"].items() if _offered(path)}
    spec["components"].setdefault("schemas", {})["ErrorEnvelope"] = ERROR_ENVELOPE_SCHEMA
    shared_error_responses: set[str] = set()
    for item in spec["paths"].values():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if not status.isdigit() or int(status) < 400:
                    continue
                if "$ref" in response:
                    shared_error_responses.add(response["$ref"].rsplit("/", 1)[-1])
                else:
                    _with_envelope(response)
            # Our stack answers these on any route (the sign-in limit, Redis away, our providers'
            # codes with their own statuses), always in the envelope.
            for status in ERROR_STATUSES:
                responses.setdefault(
                    status,
                    {
                        "description": ERROR_STATUSES[status],
                        "content": {"application/json": {"schema": ENVELOPE_REF}},
                    },
                )
    for name in shared_error_responses:
        _with_envelope(spec["components"]["responses"][name])
    _correct(spec["components"]["schemas"])
    return spec


def _correct(schemas: dict[str, Any]) -> None:
    """Where allauth's document disagrees with what allauth answers (found by validating every
    sign-in response of the test suite against it)."""
    for method in schemas["AuthenticationMethod"]["oneOf"]:
        # A sign-in by a provider is recorded as {method, at, provider, uid}: no `reauthenticated`.
        if method["properties"]["method"].get("enum") == ["socialaccount"]:
            method["required"] = [name for name in method["required"] if name in method["properties"]]


@require_GET
def allauth_specification_json(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        json.dumps(allauth_specification(), ensure_ascii=False),
        content_type="application/vnd.oai.openapi+json",
    )


@require_GET
def allauth_specification_yaml(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        yaml.safe_dump(allauth_specification(), allow_unicode=True, sort_keys=False),
        content_type="application/vnd.oai.openapi",
    )
