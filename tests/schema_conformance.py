"""Every response a test receives under /api/ and /_allauth/ is checked against the OpenAPI
specification clients are generated from (a pytest plugin).

Django's test client (and DRF's APIClient, which goes through it) is wrapped once for the whole
suite: after each request to a path our schema (/api/schema/) or the sign-in specification we
serve (/_allauth/openapi.json) describes, the response's status must be declared
for the operation, its content type declared for that status, and a JSON body must satisfy the
declared schema (types, formats, required properties, enums, `nullable`). A response that does
not conform fails the test that received it, with what is wrong. So every API test is also a test
of the contract that generated clients are built from, and a new route is held to it on its
first test.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from django.http import HttpResponseBase
from django.test import override_settings
from django.test.client import Client
from jsonschema import validators
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_schema_validator import _keywords as oas_keywords

METHODS = ("get", "post", "put", "patch", "delete")
NO_BODY_STATUSES = {204, 304}
PROJECT_URLCONF = "config.urls"


def _nullable_composition(keyword):
    """`nullable: true` beside `allOf`/`oneOf` admits null, as drf-spectacular means it and
    generated clients read it (a nullable nested object or enum)."""

    def check(validator, value, instance, schema):
        if instance is None and schema.get("nullable") is True:
            return
        yield from keyword(validator, value, instance, schema)

    return check


ResponseValidator = validators.extend(
    OAS30Validator,
    {
        "allOf": _nullable_composition(oas_keywords.allOf),
        "oneOf": _nullable_composition(oas_keywords.oneOf),
        "anyOf": _nullable_composition(oas_keywords.anyOf),
    },
)


@dataclass(frozen=True)
class Operation:
    template: str
    pattern: re.Pattern[str]
    parameters: int
    item: dict[str, Any]


class SchemaContract:
    """The schema's operations, and what a response to one of them must look like."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.components = spec.get("components", {})
        operations = []
        for template, item in spec["paths"].items():
            parts = re.split(r"(\{[^}]+\})", template)
            regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
            operations.append(Operation(template, re.compile(f"^{regex}$"), template.count("{"), item))
        # A literal segment beats a parameter (`/partner-links/code` before `/partner-links/{id}`),
        # a longer literal beats a shorter one (`{label}.png` before `{label}`).
        self.operations = sorted(operations, key=lambda op: (op.parameters, -len(op.template)))

    def operation_for(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for operation in self.operations:
            if operation.pattern.match(path) and method.lower() in operation.item:
                return f"{method.upper()} {operation.template}", operation.item[method.lower()]
        return None

    def problems(self, method: str, path: str, response: HttpResponseBase) -> list[str]:
        """What is wrong with `response` as the answer to `method path`; empty when it conforms
        (or when the schema does not describe that operation)."""
        found = self.operation_for(method, path)
        if found is None:
            return []
        name, operation = found
        status = response.status_code
        declared = operation.get("responses", {})
        response_spec = declared.get(str(status)) or declared.get("default")
        if response_spec is None:
            return [f"{name}: status {status} is not declared (declared: {', '.join(sorted(declared))})"]
        while "$ref" in response_spec:  # a shared response: #/components/responses/<name>
            response_spec = self.components["responses"][response_spec["$ref"].rsplit("/", 1)[-1]]
        content = response_spec.get("content") or {}
        body = b"" if response.streaming else response.content
        if not content:
            if body and status not in NO_BODY_STATUSES:
                return [f"{name} {status}: the schema declares no body, the response has {len(body)} bytes"]
            return []
        media_type = response.get("Content-Type", "").split(";")[0].strip()
        if media_type not in content:
            return [f"{name} {status}: content type {media_type!r} is not declared: {sorted(content)}"]
        schema = content[media_type].get("schema")
        if schema is None or response.streaming or not media_type.endswith("json"):
            return []
        try:
            instance = json.loads(body)
        except ValueError:
            return [f"{name} {status}: the body is not JSON: {body[:200]!r}"]
        validator = ResponseValidator(
            {"components": self.components, "allOf": [schema]}, format_checker=oas30_format_checker
        )
        return [
            f"{name} {status}: at /{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
            for error in sorted(validator.iter_errors(instance), key=lambda error: list(error.absolute_path))
        ]


@cache
def api_contract() -> SchemaContract:
    """Our schema, built in-process once per test session as /api/schema/ serves it (from the
    project's routes, even when first asked inside a test that swapped in routes of its own)."""
    from drf_spectacular.generators import SchemaGenerator

    with override_settings(ROOT_URLCONF=PROJECT_URLCONF):
        return SchemaContract(SchemaGenerator().get_schema(request=None, public=True))


@cache
def sign_in_contract() -> SchemaContract:
    """allauth's specification as /_allauth/openapi.json serves it."""
    from accounts.allauth_schema import allauth_specification

    with override_settings(ROOT_URLCONF=PROJECT_URLCONF):
        return SchemaContract(allauth_specification())


CONTRACTS = {"/api/": api_contract, "/_allauth/": sign_in_contract}


def response_problems(method: str, path: str, response: HttpResponseBase) -> list[str]:
    for prefix, contract in CONTRACTS.items():
        if path.startswith(prefix):
            return contract().problems(method, path, response)
    return []


class SchemaConformanceError(AssertionError):
    pass


def conformance_checked(request_method):
    def request(self, **request):
        response = request_method(self, **request)
        path = request.get("PATH_INFO", "")
        problems = response_problems(request.get("REQUEST_METHOD", "GET"), path, response)
        if problems:
            raise SchemaConformanceError(
                "The response does not conform to the OpenAPI schema:\n" + "\n".join(problems)
            )
        return response

    request.__wrapped__ = request_method
    return request


@pytest.fixture(autouse=True, scope="session")
def _responses_conform_to_the_schema():
    """Wraps the test client for the whole session (DRF's APIClient goes through it too)."""
    original = Client.request
    Client.request = conformance_checked(original)
    yield
    Client.request = original
