"""The sign-in API's OpenAPI specification: allauth headless' own, made true of this platform.

allauth describes its headless endpoints itself (`allauth.headless.spec`), already narrowed to our
settings (the app client only, our signup fields, the person as `HeadlessAdapter` shows them).
What it cannot know is added here: every error response also carries our envelope
(`accounts.middleware.AllauthErrorEnvelopeMiddleware` adds `"error": {"code", "message",
"fields"}` beside allauth's own keys), our stack's statuses (rate limited, Redis down) are
declared, and the routes this platform does not offer (phone numbers, `config.api.not_offered`)
are left out. Served at /_allauth/openapi.json (and .yaml), where allauth serves it, and listed
beside ours in the API docs.
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

from config.api.not_offered import not_offered
from config.api.schema import ERROR_ENVELOPE_SCHEMA, ERROR_STATUSES

ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}
METHODS = ("get", "post", "put", "patch", "delete")
# What our stack in front of allauth answers, on any sign-in route: the per-address sign-in limit
# (429), and refusing to sign anyone in while Redis is away (503).
STACK_STATUSES = ("429", "500", "503")


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
            for status in STACK_STATUSES:
                responses.setdefault(
                    status,
                    {
                        "description": ERROR_STATUSES[status],
                        "content": {"application/json": {"schema": ENVELOPE_REF}},
                    },
                )
    for name in shared_error_responses:
        _with_envelope(spec["components"]["responses"][name])
    return spec


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
