"""Moments in an error's `fields` are written as the answers write them: in the local time zone."""

from __future__ import annotations

import ast
import datetime
from pathlib import Path

from core.api import errors
from core.api.exceptions import envelope
from core.api.serializers import local_datetime_text

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "activities", "rewards", "merchants", "config")
# What builds an error's fields: the exception services raise and the envelope's builders.
ERROR_BUILDERS = {"ApplicationError", "envelope", "error_json_response", "error_response"}
FORMATTERS = {"isoformat", "strftime", "ctime"}


def test_the_envelope_writes_every_moment_in_its_fields_in_local_time():
    moment = datetime.datetime(2026, 11, 20, 16, 0, 5, 123456, tzinfo=datetime.UTC)

    body = envelope(
        errors.VALIDATION_FAILED,
        fields={"at": moment, "window": {"from": [moment], "day": datetime.date(2026, 11, 21)}, "n": 3},
    )

    assert body["error"]["fields"] == {
        "at": "2026-11-21T00:00:05.123456+08:00",
        "window": {"from": ["2026-11-21T00:00:05.123456+08:00"], "day": "2026-11-21"},
        "n": 3,
    }


def test_moments_are_written_as_the_answers_serializers_write_them():
    from rest_framework import serializers

    moment = datetime.datetime(2026, 1, 1, 1, 30, tzinfo=datetime.UTC)

    assert local_datetime_text(moment) == serializers.DateTimeField().to_representation(moment)
    assert local_datetime_text(moment) == "2026-01-01T09:30:00+08:00"


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _formats_a_moment(node: ast.AST) -> bool:
    return any(
        isinstance(inner, ast.Call)
        and isinstance(inner.func, ast.Attribute)
        and inner.func.attr in FORMATTERS
        for inner in ast.walk(node)
    )


def test_no_error_formats_a_moment_itself():
    """Services put datetimes in `fields` as they are; the envelope writes them (in local time)."""
    offenders = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if not (isinstance(node, ast.Call) and _name(node.func) in ERROR_BUILDERS):
                    continue
                given = [keyword.value for keyword in node.keywords if keyword.arg == "fields"]
                given += node.args[1:2] if _name(node.func) == "ApplicationError" else []
                if any(_formats_a_moment(value) for value in given):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")

    assert offenders == []
