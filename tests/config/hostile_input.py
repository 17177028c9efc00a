"""Hostile requests for every operation of an OpenAPI schema, by class of fault.

schemathesis generates data the schema describes (and some it does not); the faults an outside tester
found live where generation rarely goes: a body nested thousands of levels deep, a body over the size
limit, a NUL character in any path, query, header or body string, a cursor that decodes to nonsense,
a date in year 9999, a body in another charset than UTF-8, a lone UTF-16 surrogate escaped in any body
string or key, NaN, a number past any column's range in any numeric field, an object where any
scalar is expected. For each operation (path parameters filled from the caller's own objects when
their names are known, so the request gets past authorization to the field it attacks), this builds
one request per class and place; `classes` chooses how many values per place (`make test` one,
`make soak` all).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

NUL = "a\x00b"
DEEP_JSON = "[" * 5000 + "]" * 5000
# Cursors that decode to nonsense: text where the position is a number, a number past bigint, a
# negative offset, an unknown key, not base64 at all.
BAD_CURSORS = [
    base64.b64encode(b"p=abc").decode(),
    base64.b64encode(b"p=" + b"9" * 30).decode(),
    base64.b64encode(b"o=-1").decode(),
    base64.b64encode(b"x=1&p=1").decode(),
    "!!not-base64!!",
]
# A UTF-16 surrogate escaped alone is no character: no text can be made of it.
LONE_SURROGATE = b'"\\ud800"'
# A value of the wrong kind wherever a scalar is expected; and numbers past any column's range.
WRONG_KIND = {"nested": [1, {"deeper": None}]}
HUGE_NUMBERS = [10**30, -(10**30), 1e308]
EXTREME = {
    "date": ["9999-12-31", "0001-01-01", "2100-02-29"],
    "date-time": ["9999-12-31T23:59:59+08:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"],
    "month": ["9999-12", "0001-01", "0000-01"],
    "year": ["9999", "0001"],
}
_PATTERN_CANDIDATES = ["2026-11", "2026", "abcdefgh12345678", "district-0", "x"]


@dataclass
class HostileRequest:
    operation: str
    fault: str
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str = "application/json"
    # The code the boundary must answer with, when the fault is one it refuses whatever the route.
    expected_code: str | None = None


class Resolver:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema

    def __call__(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.schema
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node


def _date_kind(name: str, schema: dict[str, Any]) -> str | None:
    fmt = schema.get("format")
    if fmt in ("date", "date-time"):
        return fmt
    pattern = schema.get("pattern", "")
    if name in ("month", "label") or "\\d{4}" in pattern:
        return "month"
    if name == "year":
        return "year"
    return None


def _string_example(schema: dict[str, Any]) -> str:
    if schema.get("enum"):
        return str(schema["enum"][0])
    fmt = schema.get("format")
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "date":
        return "2026-11-20"
    if fmt == "date-time":
        return "2026-11-20T10:00:00+08:00"
    pattern = schema.get("pattern")
    if pattern:
        return next((text for text in _PATTERN_CANDIDATES if re.search(pattern, text)), "x")
    return "sample"


def example(schema: Any, resolve: Resolver, depth: int = 0) -> Any:
    """A plain value of the schema's shape (every property, one item per array)."""
    schema = resolve(schema)
    if not isinstance(schema, dict) or depth > 6:
        return "sample"
    for combinator in ("oneOf", "anyOf", "allOf"):
        if schema.get(combinator):
            return example(schema[combinator][0], resolve, depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            name: example(sub, resolve, depth + 1)
            for name, sub in schema.get("properties", {}).items()
            if not resolve(sub).get("readOnly")
        }
    if kind == "array":
        return [example(schema.get("items", {}), resolve, depth + 1)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    return _string_example(schema)


def _leaves(
    value: Any, schema: Any, resolve: Resolver, trail: tuple = ()
) -> Iterator[tuple[tuple, str, dict]]:
    """(path, name, schema) of every scalar (string, number, boolean) in an example body."""
    schema = resolve(schema) if isinstance(schema, dict) else {}
    for combinator in ("oneOf", "anyOf", "allOf"):
        if schema.get(combinator):
            schema = resolve(schema[combinator][0])
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name, item in value.items():
            yield from _leaves(item, properties.get(name, {}), resolve, (*trail, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, schema.get("items", {}), resolve, (*trail, index))
    elif trail:
        yield trail, str(trail[-1]), schema


def _value_at(value: Any, trail: tuple) -> Any:
    for step in trail:
        value = value[step]
    return value


def _replaced(value: Any, trail: tuple, new: Any) -> Any:
    copy = json.loads(json.dumps(value))
    target = copy
    for step in trail[:-1]:
        target = target[step]
    target[trail[-1]] = new
    return copy


def _oversized(limit: int) -> bytes:
    return json.dumps({"padding": "a" * (limit + 1)}).encode()


def _multipart(fields: dict[str, str], boundary: str = "hostileboundary") -> tuple[bytes, str]:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return "".join(parts + [f"--{boundary}--\r\n"]).encode(), f"multipart/form-data; boundary={boundary}"


def hostile_requests(
    schema: dict[str, Any], *, path_values: dict[str, str], every_value: bool = False
) -> Iterator[HostileRequest]:
    """Every class of hostile input, for every operation of `schema`."""
    resolve = Resolver(schema)
    for template, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                parameters = [
                    resolve(p) for p in item.get("parameters", []) + operation.get("parameters", [])
                ]
                yield from Operation(
                    template, method, operation, parameters, resolve, path_values, every_value
                ).requests()


class Operation:
    def __init__(
        self,
        template: str,
        method: str,
        operation: dict[str, Any],
        parameters: list[dict[str, Any]],
        resolve: Resolver,
        path_values: dict[str, str],
        every_value: bool,
    ) -> None:
        self.template, self.method, self.operation = template, method, operation
        self.name = f"{method.upper()} {template}"
        self.parameters, self.resolve, self.every_value = parameters, resolve, every_value
        self.path_parameters = {p["name"]: p for p in parameters if p["in"] == "path"}
        self.values = {
            key: self._value(key, resolve(p.get("schema", {})), path_values)
            for key, p in self.path_parameters.items()
        }

    @staticmethod
    def _value(key: str, schema: dict[str, Any], path_values: dict[str, str]) -> str:
        # An enum's own value first (`period` is `week` on a leaderboard, `month` on a report).
        if schema.get("enum") or key not in path_values:
            return _string_example(schema)
        return path_values[key]

    def pick(self, values: list[str]) -> list[str]:
        return values if self.every_value else values[:1]

    def url(self, **overrides: str) -> str:
        filled = {**self.values, **overrides}
        return re.sub(r"\{(\w+)\}", lambda match: filled[match.group(1)], self.template)

    def make(self, fault: str, *, expected: str | None = None, **kwargs: Any) -> HostileRequest:
        kwargs.setdefault("path", self.url())
        return HostileRequest(self.name, fault, self.method, expected_code=expected, **kwargs)

    def extremes(self, name: str, schema: dict[str, Any]) -> list[tuple[str, str]]:
        kind = _date_kind(name, self.resolve(schema))
        return [(kind, value) for value in self.pick(EXTREME[kind])] if kind else []

    def numbers(self, parameter: dict[str, Any]) -> list[str]:
        """Numbers past any column's range, for a parameter that is a number."""
        if self.resolve(parameter.get("schema", {})).get("type") not in ("integer", "number"):
            return []
        return [str(number) for number in self.pick([10**30, -(10**30)])]

    def requests(self) -> Iterator[HostileRequest]:
        # Every route, whatever it declares: a header and a query parameter it does not know.
        yield self.make("NUL in a header", headers={"X-Client-Note": NUL}, expected="nul_character")
        yield self.make("NUL in the query", query={"note": NUL}, expected="nul_character")
        yield from self.bodies()
        for key, parameter in self.path_parameters.items():
            yield self.make(f"NUL in path {key}", path=self.url(**{key: NUL}), expected="nul_character")
            for kind, value in self.extremes(key, parameter.get("schema", {})):
                yield self.make(f"extreme {kind} in path {key}", path=self.url(**{key: value}))
            for number in self.numbers(parameter):
                yield self.make(f"huge number in path {key}", path=self.url(**{key: number}))
        for parameter in self.parameters:
            key, where = parameter["name"], parameter["in"]
            if where == "header":
                yield self.make(f"NUL in header {key}", headers={key: NUL}, expected="nul_character")
            if where != "query":
                continue
            yield self.make(f"NUL in query {key}", query={key: NUL}, expected="nul_character")
            if key == "cursor":
                for cursor in self.pick(BAD_CURSORS):
                    yield self.make("bad cursor", query={key: cursor})
            for kind, value in self.extremes(key, parameter.get("schema", {})):
                yield self.make(f"extreme {kind} in query {key}", query={key: value})
            for number in self.numbers(parameter):
                yield self.make(f"huge number in query {key}", query={key: number})
        yield from self.body_strings()

    def bodies(self) -> Iterator[HostileRequest]:
        """Too deep, too large, a NUL in a form field: for every operation that takes a body."""
        content = self.operation.get("requestBody", {}).get("content", {})
        if not content and self.method not in {"post", "put", "patch"}:
            return
        if content and set(content) == {"multipart/form-data"}:
            limit = settings.API_BODY_MAX_BYTES["upload"]
            body, content_type = _multipart({"padding": "a" * (limit + 1)})
            yield self.make(
                "oversized body", body=body, content_type=content_type, expected="request_too_large"
            )
            body, content_type = _multipart({"note": NUL})
            yield self.make(
                "NUL in a form field", body=body, content_type=content_type, expected="nul_character"
            )
            return
        if self.template.startswith("/_allauth/"):
            kind = "sign_in"
        elif self.template.startswith("/api/v1/partner/"):
            kind = "partner"
        else:
            kind = "json"
        yield self.make("deep body", body=DEEP_JSON.encode(), expected="request_too_deep")
        yield self.make(
            "a charset other than UTF-8",
            body=b"{}",
            content_type="application/json; charset=iso-8859-1",
            expected="unsupported_media_type",
        )
        yield self.make("NaN in the body", body=b'{"value": NaN}')
        yield self.make(
            "a lone surrogate in a key", body=b"{" + LONE_SURROGATE + b": 1}", expected="malformed_request"
        )
        oversized = _oversized(settings.API_BODY_MAX_BYTES[kind])
        yield self.make("oversized body", body=oversized, expected="request_too_large")
        yield self.make(
            "NUL in a form field",
            body=b"field=a%00b",
            content_type="application/x-www-form-urlencoded",
            expected="nul_character",
        )

    def body_strings(self) -> Iterator[HostileRequest]:
        """A NUL character, and extreme dates, in every string of a plain body of the right shape."""
        content = self.operation.get("requestBody", {}).get("content", {})
        body_schema = (content.get("application/json") or {}).get("schema")
        if body_schema is None:
            return
        baseline = example(body_schema, self.resolve)
        for trail, key, leaf_schema in _leaves(baseline, body_schema, self.resolve):
            label = ".".join(str(step) for step in trail)
            leaf = _value_at(baseline, trail)
            body = json.dumps(_replaced(baseline, trail, WRONG_KIND)).encode()
            yield self.make(f"wrong kind in body {label}", body=body)
            if isinstance(leaf, bool):
                continue
            if isinstance(leaf, int | float):
                for number in self.pick(HUGE_NUMBERS):
                    body = json.dumps(_replaced(baseline, trail, number)).encode()
                    yield self.make(f"huge number in body {label}", body=body)
                continue
            body = json.dumps(_replaced(baseline, trail, NUL)).encode()
            yield self.make(f"NUL in body {label}", body=body, expected="nul_character")
            body = json.dumps(_replaced(baseline, trail, "surrogate")).encode()
            body = body.replace(b'"surrogate"', LONE_SURROGATE)
            yield self.make(f"a lone surrogate in body {label}", body=body, expected="malformed_request")
            for kind, value in self.extremes(key, leaf_schema):
                body = json.dumps(_replaced(baseline, trail, value)).encode()
                yield self.make(f"extreme {kind} in body {label}", body=body)
