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


class QuerySerializer(serializers.Serializer):
    """The query string of a view (a `…Query`): what the view reads of it is what this validates.

    A parameter given with an empty value (`?status=`) is refused with `validation_failed` naming
    it, unless its field allows blank (`allow_blank=True`). DRF reads an empty value of an optional
    field of a form or query string as "not given", so `?status=` would list everything while the
    schema says the value is one of an enum or matches a pattern; leave a parameter out for its
    default.
    """

    @classmethod
    def validated(cls, *, data: Any) -> dict[str, Any]:
        """The validated query (raising as `is_valid(raise_exception=True)` does).

        An empty query string's answer is the same every time: worked out once per class, so the
        reads the app opens on (a board with no parameters) skip building the serializer.
        """
        if not data:
            empty = _empty_query_validated(cls)
            if empty is not None:
                return dict(empty)
        query = cls(data=data)
        query.is_valid(raise_exception=True)
        return query.validated_data

    def to_internal_value(self, data: Any) -> Any:
        blank = serializers.CharField.default_error_messages["blank"]
        given_empty = {
            name: [blank]
            for name, field in self.fields.items()
            if not field.read_only
            and not getattr(field, "allow_blank", False)
            and "" in _given_values(data, name)
        }
        if given_empty:
            raise serializers.ValidationError(given_empty)
        return super().to_internal_value(data)


@functools.cache
def _empty_query_validated(query_class: type[QuerySerializer]) -> dict[str, Any] | None:
    """What `query_class` makes of an empty query string, or None when that is refused."""
    query = query_class(data={})
    return dict(query.validated_data) if query.is_valid() else None


def _given_values(data: Any, name: str) -> list[Any]:
    if hasattr(data, "getlist"):
        return data.getlist(name)
    return [data[name]] if name in data else []
