"""The API's JSON renderer writes what DRF's does, byte for byte (orjson underneath)."""

from __future__ import annotations

import datetime
import uuid
import zoneinfo
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from rest_framework import renderers
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from core.api.renderers import JSONRenderer

PAYLOADS = [
    {"balance": 5, "next_expiries": [{"expires_on": datetime.date(2027, 12, 6), "coins": 5}]},
    {"moment": datetime.datetime(2026, 12, 7, 8, 0, tzinfo=datetime.UTC)},
    {"moment": datetime.datetime(2026, 12, 7, 8, 0, 0, 123456, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai"))},
    {"moment": datetime.datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/London"))},
    {"at": datetime.time(7, 30), "naive": datetime.datetime(2026, 1, 1, 12, 0, 1)},
    {"nickname": "林**", "district_name": "柯城区", "emoji": "🌱", "quote": 'say "hi"\n\t\\'},
    {"separators": "a\u2028b\u2029c"},
    {"id": uuid.UUID("12345678-1234-5678-1234-567812345678"), "amount": Decimal("1.50")},
    {"message": gettext_lazy("Not found."), "duration": datetime.timedelta(seconds=90)},
    {"tags": ("a", "b"), "nested": {"empty": {}, "none": None, "flag": False, "ratio": 0.25}},
    {1: "an integer key", "big": 2**63 - 1, "negative": -(2**63)},
    {"past_64_bits": 2**70},
    ReturnDict({"serializer": "output"}, serializer=None),
    ReturnList([{"rank": 1}], serializer=None),
    [],
    "text",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_renderer_writes_what_drf_s_does(payload):
    assert JSONRenderer().render(payload) == renderers.JSONRenderer().render(payload)


def test_indented_json_asked_for_is_drf_s():
    payload = {"a": [1, 2]}
    media_type = "application/json; indent=2"

    assert JSONRenderer().render(payload, media_type) == renderers.JSONRenderer().render(payload, media_type)


def test_nothing_renders_as_nothing():
    assert JSONRenderer().render(None) == b""
