"""What the person sees: today per behaviour, history with receipts, and only ever their own records."""

from __future__ import annotations

import datetime

import pytest

from activities.models import ActivityRecord, DailyCarbon
from activities.services import steps_sync
from core.local_time import LOCAL_TZ, local_day_of
from tests.accounts.factories import UserFactory
from tests.activities.conftest import earlier_today, ride

pytestmark = pytest.mark.django_db


def today():
    return local_day_of(datetime.datetime.now(tz=LOCAL_TZ))


def test_today_shows_credit_and_cap_left_per_behaviour_and_what_settlement_owes(
    transit, rider, post_batch, client_for, authorize
):
    authorize(rider)
    steps_sync(user=rider, steps_by_day={today(): 6000, today() - datetime.timedelta(days=1): 2000})
    post_batch(transit, [ride("R1", at=earlier_today())])
    DailyCarbon.objects.filter(user=rider, day=today() - datetime.timedelta(days=1)).update(
        settled_carbon_mg=40_000
    )

    body = client_for(rider).get("/api/v1/activities/today").json()

    by_code = {row["behaviour"]: row for row in body["behaviours"]}
    assert (by_code["walk"]["credited_carbon_mg"], by_code["walk"]["cap_left_mg"]) == (120_000, 80_000)
    assert (by_code["bus"]["credited_carbon_mg"], by_code["bus"]["cap_left_mg"]) == (80_000, 720_000)
    assert by_code["utility_payment"]["cap_left_mg"] == 2_620_000  # a monthly cap
    assert by_code["nev_km"]["credited_carbon_mg"] == 0
    assert body["credited_today_mg"] == 200_000
    assert body["pending_settlement_mg"] == 200_000  # yesterday's 40 g are settled
    assert body["day"] == today().isoformat()


def test_today_answers_as_its_output_serializer_and_in_the_methodology_order(
    transit, rider, post_batch, client_for, authorize
):
    from django.utils import translation

    from activities import selectors
    from activities.apis import TodayApi
    from activities.models import Behaviour

    authorize(rider)
    steps_sync(user=rider, steps_by_day={today(): 6543})
    post_batch(transit, [ride("R1", at=earlier_today())])

    body = client_for(rider).get("/api/v1/activities/today", HTTP_ACCEPT_LANGUAGE="zh-hans").json()

    with translation.override("zh-hans"):
        expected = TodayApi.Output(selectors.today_for(user=rider)).data
    assert body == expected
    assert [row["behaviour"] for row in body["behaviours"]] == list(
        Behaviour.objects.filter(factors__isnull=False).distinct().values_list("code", flat=True)
    )
    first = body["behaviours"][0]
    assert first["name"] == Behaviour.objects.get(code=first["behaviour"]).name


def test_history_is_cursor_paginated_newest_first_with_receipts(person, person_client, authorize):
    authorize(person)
    for days_ago in range(5):
        steps_sync(user=person, steps_by_day={today() - datetime.timedelta(days=days_ago): 12_000})

    first = person_client.get("/api/v1/activities/records", {"page_size": 2}).json()
    second = person_client.get(first["next"]).json()

    ids = [r["id"] for r in first["results"] + second["results"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 4
    receipt = first["results"][0]["receipt"]
    assert receipt == (
        "12,000 × 0.02 g per step (methodology v1) = 240 g, capped to 200 g, "
        "because the daily cap of 200 g for Walking was reached"
    )
    assert first["results"][0]["methodology_version"] == 1


def test_receipts_are_in_chinese_for_chinese_clients(person, person_client, authorize):
    authorize(person)
    steps_sync(user=person, steps_by_day={today(): 1000})

    body = person_client.get("/api/v1/activities/records", HTTP_ACCEPT_LANGUAGE="zh-Hans").json()

    assert body["results"][0]["behaviour_name"] == "步行"
    assert "v1" in body["results"][0]["receipt"]


def test_one_person_never_sees_another_persons_records(person, person_client, authorize):
    other = UserFactory()
    authorize(other)
    steps_sync(user=other, steps_by_day={today(): 1000})
    record = ActivityRecord.objects.get(user=other)

    assert person_client.get("/api/v1/activities/records").json()["results"] == []
    assert person_client.get(f"/api/v1/activities/records/{record.id}").status_code == 404
    assert person_client.get("/api/v1/activities/today").json()["credited_today_mg"] == 0


def test_a_record_of_ones_own_is_shown_in_detail(person, person_client, authorize):
    authorize(person)
    steps_sync(user=person, steps_by_day={today(): 1000})
    record = ActivityRecord.objects.get(user=person)

    body = person_client.get(f"/api/v1/activities/records/{record.id}").json()

    assert (body["quantity"], body["credited_carbon_mg"], body["status"]) == ("1000.000", 20_000, "credited")


def test_the_methodology_in_effect_is_public_to_signed_in_people(person_client):
    rows = person_client.get("/api/v1/activities/methodology").json()

    walk = next(row for row in rows if row["behaviour"] == "walk")
    assert (walk["carbon_mg_per_unit"], walk["daily_cap_mg"], walk["methodology_version"]) == (20, 200_000, 1)
    assert len(rows) == 11


@pytest.mark.parametrize(
    "url",
    ["/api/v1/activities/today", "/api/v1/activities/records", "/api/v1/activities/partner-links"],
)
def test_the_person_views_need_a_session(api_client, url):
    assert api_client.get(url).status_code == 401


def test_rewards_can_list_the_records_behind_a_day_and_badges_read_daily_totals(transit, rider, post_batch):
    from activities.selectors import behaviour_days_of, records_credited_on

    post_batch(
        transit,
        [
            ride("R1", at=earlier_today() - datetime.timedelta(seconds=1)),
            ride("R2", behaviour="metro", at=earlier_today()),
        ],
    )

    records = records_credited_on(user_id=rider.id, day=today())
    assert [r.external_id for r in records] == ["city-transit:R1", "city-transit:R2"]
    assert (
        sum(r.credited_carbon_mg for r in records) == DailyCarbon.objects.get(user=rider).credited_carbon_mg
    )
    totals = {
        (row.behaviour.code, row.day): (row.record_count, row.credited_carbon_mg)
        for row in behaviour_days_of(user_id=rider.id)
    }
    assert totals == {("bus", today()): (1, 80_000), ("metro", today()): (1, 80_000)}


# --- Cached per person (core.person_cache): a repeat read is served from Redis, every change seen ---


def test_a_repeat_today_read_is_served_without_the_database(
    rider, client_for, authorize, django_assert_num_queries
):
    authorize(rider)
    steps_sync(user=rider, steps_by_day={today(): 6000})
    client = client_for(rider)
    first = client.get("/api/v1/activities/today").json()

    with django_assert_num_queries(0):
        again = client.get("/api/v1/activities/today").json()

    assert again == first


def test_today_cached_shows_each_capture_and_the_methodology_s_changes(
    transit, rider, post_batch, client_for, authorize
):
    from activities.models import Factor

    authorize(rider)
    client = client_for(rider)

    def walk() -> dict:
        body = client.get("/api/v1/activities/today").json()
        return next(row for row in body["behaviours"] if row["behaviour"] == "walk")

    assert walk()["credited_carbon_mg"] == 0
    steps_sync(user=rider, steps_by_day={today(): 6000})
    assert walk()["credited_carbon_mg"] == 120_000
    post_batch(transit, [ride("R1", at=earlier_today())])
    assert client.get("/api/v1/activities/today").json()["credited_today_mg"] == 200_000

    factor = Factor.objects.filter(behaviour__code="walk").order_by("-version__effective_from").first()
    factor.daily_cap_mg = 150_000
    factor.save()
    assert walk()["cap_left_mg"] == 30_000


def test_today_is_cached_per_language(rider, client_for):
    from activities.models import Behaviour

    client = client_for(rider)
    walk = Behaviour.objects.get(code="walk")

    def walk_name(language: str) -> str:
        body = client.get("/api/v1/activities/today", HTTP_ACCEPT_LANGUAGE=language).json()
        return next(row["name"] for row in body["behaviours"] if row["behaviour"] == "walk")

    assert walk_name("zh-hans") == walk.name
    assert walk_name("en") == walk.name_en
    assert walk_name("zh-hans") == walk.name
