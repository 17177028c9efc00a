"""A query parameter given with an empty value (`?status=`) is refused, not read as left out.

DRF reads an empty value of an optional field from a query string as "not given": `?status=`
listed everything while the schema says `status` is one of an enum. Every `…Query` is built on
`core.api.serializers.QuerySerializer` (tests/config/test_api_style.py), which refuses it with
`validation_failed` naming the parameter, unless the field allows blank.
"""

from __future__ import annotations

import pytest
from django.http import QueryDict
from django.urls import get_resolver
from rest_framework import serializers

from core.api.serializers import QuerySerializer

BLANK = str(serializers.CharField.default_error_messages["blank"])


def _query_serializers() -> list[type[QuerySerializer]]:
    get_resolver().url_patterns  # noqa: B018 - imports every API module, and so every Query
    found, pending = [], list(QuerySerializer.__subclasses__())
    while pending:
        serializer = pending.pop()
        found.append(serializer)
        pending.extend(serializer.__subclasses__())
    return sorted({serializer for serializer in found if "tests" not in serializer.__module__}, key=str)


QUERIES = _query_serializers()
PARAMETERS = [
    pytest.param(query, name, id=f"{query.__qualname__}.{name}")
    for query in QUERIES
    for name, field in query().fields.items()
    if not field.read_only
]


def test_every_view_query_is_found():
    names = {query.__qualname__ for query in QUERIES}
    assert {
        "LeaderboardApi.Query",
        "AmbassadorsApi.Query",
        "GroupMemberBoardApi.Query",
        "NotificationsApi.Query",
        "CouponListApi.CouponQuery",
        "ReportQuery",
    } <= names
    assert len(PARAMETERS) >= 15


@pytest.mark.parametrize(("query", "name"), PARAMETERS)
def test_a_parameter_given_empty_is_refused_unless_its_field_allows_blank(query, name):
    given = query(data=QueryDict(f"{name}="))
    if getattr(given.fields[name], "allow_blank", False):
        assert given.is_valid(), given.errors
    else:
        assert not given.is_valid()
        assert given.errors == {name: [BLANK]}


@pytest.mark.parametrize(("query", "name"), PARAMETERS)
def test_a_parameter_left_out_is_not_taken_for_an_empty_one(query, name):
    given = query(data=QueryDict(""))
    given.is_valid()
    assert given.errors.get(name) != [BLANK]


def test_a_blank_field_may_be_given_empty():
    class SearchQuery(QuerySerializer):
        text = serializers.CharField(required=False, allow_blank=True)

    given = SearchQuery(data=QueryDict("text="))
    assert given.is_valid(), given.errors
    assert given.validated_data == {"text": ""}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/coupons?status=",
        "/api/v1/leaderboards/week?scope=",
        "/api/v1/notifications?unread=",
        "/api/v1/catalog/offers?sort=&page=2",
    ],
)
def test_the_api_answers_an_empty_parameter_with_validation_failed(person_client, path):
    response = person_client.get(path)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    name = path.split("?")[1].split("=")[0]
    assert list(error["fields"]) == [name]


def test_validated_answers_an_empty_query_as_validation_does_and_refuses_as_it_does():
    from rest_framework import serializers
    from rest_framework.exceptions import ValidationError

    from core.api.serializers import QuerySerializer

    class Query(QuerySerializer):
        scope = serializers.ChoiceField(choices=["city", "district"], required=False)
        size = serializers.IntegerField(required=False, default=20)

    class Needed(QuerySerializer):
        day = serializers.DateField()

    assert Query.validated(data={}) == {"size": 20}
    assert Query.validated(data={}) == {"size": 20}  # worked out once, handed out as a copy each time
    assert Query.validated(data={"scope": "city"}) == {"scope": "city", "size": 20}
    with pytest.raises(ValidationError):
        Query.validated(data={"scope": "galaxy"})
    with pytest.raises(ValidationError):
        Needed.validated(data={})
