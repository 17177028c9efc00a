"""Export, erasure and merge of what activities holds about a person; the demo loads idempotently."""

from __future__ import annotations

import datetime
import json

import pytest

from activities import personal_data
from activities.models import ActivityRecord, BehaviourDay, DailyCarbon, PartnerCustomerLink, StepDay
from activities.services import steps_sync
from core.local_time import LOCAL_TZ, local_day_of
from tests.accounts.factories import UserFactory
from tests.activities.conftest import earlier_today, ride

pytestmark = pytest.mark.django_db


def today():
    return local_day_of(datetime.datetime.now(tz=LOCAL_TZ))


def test_export_lists_records_links_steps_and_daily_carbon_as_json(transit, rider, post_batch, authorize):
    authorize(rider)
    steps_sync(user=rider, steps_by_day={today(): 3000}, device_id="phone-9")
    post_batch(transit, [ride("R1", at=earlier_today())])

    exported = personal_data.personal_data_export(user=rider)

    json.dumps(exported)
    assert {r["behaviour"] for r in exported["activity_records"]} == {"walk", "bus"}
    assert exported["partner_links"][0]["customer_reference"] == "T-100"
    assert exported["step_days"] == [{"day": today().isoformat(), "steps": 3000}]
    assert exported["devices"] == ["phone-9"]
    assert exported["daily_carbon"][0]["credited_carbon_mg"] == 140_000


def test_erasure_removes_the_detail_and_keeps_the_daily_amounts(transit, rider, post_batch, authorize):
    authorize(rider)
    steps_sync(user=rider, steps_by_day={today(): 3000})
    post_batch(transit, [ride("R1", at=earlier_today())])

    personal_data.personal_data_erase(user=rider)

    assert not ActivityRecord.objects.filter(user=rider).exists()
    assert not PartnerCustomerLink.objects.filter(user=rider).exists()
    assert not StepDay.objects.filter(user=rider).exists()
    assert DailyCarbon.objects.get(user=rider).credited_carbon_mg == 140_000


def test_merging_moves_everything_and_counts_nothing_twice(authorize):
    source, target = UserFactory(), UserFactory()
    for user in (source, target):
        authorize(user)
    steps_sync(user=source, steps_by_day={today(): 3000, today() - datetime.timedelta(days=1): 1000})
    steps_sync(user=target, steps_by_day={today(): 5000})
    DailyCarbon.objects.filter(user=source, day=today()).update(settled_carbon_mg=60_000)

    personal_data.accounts_merge(source_user=source, target_user=target)

    assert ActivityRecord.objects.filter(user=target).count() == 3
    assert not ActivityRecord.objects.filter(user=source).exists()
    day = DailyCarbon.objects.get(user=target, day=today())
    assert (day.credited_carbon_mg, day.settled_carbon_mg) == (160_000, 60_000)
    assert BehaviourDay.objects.get(user=target, day=today()).quantity == 8000
    assert StepDay.objects.get(user=target, day=today()).steps == 5000
    assert not DailyCarbon.objects.filter(user=source).exists()


def test_the_demo_loads_twice_without_duplicating():
    from accounts.demo import load_demo as accounts_demo
    from activities.demo import load_demo

    accounts_demo()
    load_demo()
    records = ActivityRecord.objects.count()
    credited = sum(DailyCarbon.objects.values_list("credited_carbon_mg", flat=True))

    load_demo()

    assert records > 20
    assert ActivityRecord.objects.count() == records
    assert sum(DailyCarbon.objects.values_list("credited_carbon_mg", flat=True)) == credited
    assert ActivityRecord.objects.filter(status="held").count() == 1
