"""Output serializers built once per class, for the hot reads.

DRF deep-copies a serializer's declared fields (and its nested serializers') every time one is
instantiated: for a small answer, that costs several times what representing it does. An output
serializer that reads no context (no request, no absolute URLs) holds no per-request state once
built, so one instance serves every request and thread.

Answers and error fields built by hand (a cached catalog page, an error's `fields`) write moments
with `local_datetime_text`, as the serializers do.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterable
from typing import Any

from rest_framework import serializers


@functools.cache
def _built(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    return serializer_class()


def represent(serializer_class: type[serializers.Serializer], instance: Any) -> dict[str, Any]:
    """`serializer_class(instance).data` of a context-free output serializer, built once."""
    return _built(serializer_class).to_representation(instance)


def represent_many(
    serializer_class: type[serializers.Serializer], instances: Iterable[Any]
) -> list[dict[str, Any]]:
    """`serializer_class(instances, many=True).data` of a context-free output serializer, built once."""
    output = _built(serializer_class)
    return [output.to_representation(instance) for instance in instances]


_MOMENT = serializers.DateTimeField()


def local_datetime_text(value: datetime.datetime) -> str:
    """A moment as every answer writes it: ISO 8601 in the project's local time zone (Asia/Shanghai,
    +08:00), by the same DateTimeField the serializers use. A database datetime is in UTC, so
    `.isoformat()` of it would answer in another zone than the rest of the API."""
    return _MOMENT.to_representation(value)
