"""From capture to coins: a day's steps, credited by activities, settled by rewards, and the wallet
entry pointing back to the activity records it converted."""

from __future__ import annotations

import datetime
import importlib

import pytest
from django.apps import apps
from django.utils import timezone

from accounts.models import DataSource
from accounts.services import data_source_authorize
from activities.models import Behaviour, DailyCarbon
from activities.services import steps_sync
from rewards.services import settlement_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _methodology() -> None:
    # The default methodology comes from a data migration; an earlier transactional test may have flushed it.
    if not Behaviour.objects.exists():
        importlib.import_module("activities.migrations.0003_default_methodology_v1").create_v1(apps, None)


def test_a_settlement_in_the_history_lists_the_activity_records_it_converted(person, person_client):
    data_source_authorize(user=person, source=DataSource.PHONE_STEPS)
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    steps_sync(user=person, steps_by_day={yesterday: 15_000})
    credited = DailyCarbon.objects.get(user=person, day=yesterday).credited_carbon_mg
    assert credited >= 10_000, "the walk factor should make at least a coin of 15,000 steps"

    settlement_run(day=yesterday, within_transaction=True)

    history = person_client.get("/api/v1/wallet/history").json()["results"]
    assert [entry["amount"] for entry in history] == [credited // 10_000]
    detail = person_client.get(f"/api/v1/wallet/history/{history[0]['id']}").json()
    assert detail["cause"]["settlement_day"] == yesterday.isoformat()
    assert [(record["behaviour"], record["credited_carbon_mg"]) for record in detail["activity_records"]] == [
        ("walk", credited)
    ]
    assert detail["activity_records"][0]["receipt"]
    wallet = person_client.get("/api/v1/wallet").json()
    assert wallet["pending_carbon_mg"] == credited % 10_000
