"""Steps from the phone: cumulative per local day, only the increase counts."""

from __future__ import annotations

import datetime

import pytest

from accounts import services as accounts_services
from accounts.models import DataSource
from activities.models import ActivityRecord, BehaviourDay, DailyCarbon, StepDay
from core.local_time import LOCAL_TZ, local_day_of
from tests.activities.conftest import credited_mg, snapshot, tally

pytestmark = pytest.mark.django_db


def today():
    return local_day_of(datetime.datetime.now(tz=LOCAL_TZ))


def sync(client, *days, device_id=""):
    body = {"days": [{"day": day.isoformat(), "steps": steps} for day, steps in days]}
    if device_id:
        body["device_id"] = device_id
    return client.post("/api/v1/activities/steps", body, format="json")


def test_a_first_sync_credits_steps_times_the_factor(person, person_client, authorize):
    authorize(person)

    response = sync(person_client, (today(), 5000))

    assert response.status_code == 200
    assert response.json()["days"] == [
        {
            "day": today().isoformat(),
            "steps": 5000,
            "status": "accepted",
            "increase": 5000,
            "credited_carbon_mg": 100_000,
        }
    ]
    record = ActivityRecord.objects.get(user=person)
    assert (record.quantity, record.gross_carbon_mg, record.credited_carbon_mg) == (5000, 100_000, 100_000)
    assert record.factor.version.number == 1
    assert record.local_day == today()
    assert record.credited_at is not None
    assert DailyCarbon.objects.get(user=person, day=today()).credited_carbon_mg == 100_000


def test_only_the_increase_counts_and_the_daily_cap_holds(person, person_client, authorize):
    authorize(person)
    sync(person_client, (today(), 4000))

    second = sync(person_client, (today(), 12_000)).json()["days"][0]

    assert (second["increase"], second["credited_carbon_mg"]) == (8000, 120_000)
    third = sync(person_client, (today(), 15_000)).json()["days"][0]
    assert (third["status"], third["increase"], third["credited_carbon_mg"]) == ("accepted", 3000, 0)
    assert credited_mg(person) == 200_000  # 200 g per day
    capped = ActivityRecord.objects.get(user=person, quantity=3000)
    assert (capped.gross_carbon_mg, capped.capped_by) == (60_000, "day")
    day = BehaviourDay.objects.get(user=person, day=today())
    assert (day.quantity, day.credited_carbon_mg, day.record_count) == (15_000, 200_000, 3)


def test_the_same_count_again_is_a_duplicate_and_changes_nothing(person, person_client, authorize):
    authorize(person)
    sync(person_client, (today(), 3000))
    before = snapshot()

    response = sync(person_client, (today(), 3000))

    assert response.json()["days"][0]["status"] == "duplicate"
    assert snapshot() == before


def test_a_lower_count_is_rejected_with_its_code(person, person_client, authorize):
    authorize(person)
    sync(person_client, (today(), 3000))
    before = snapshot()

    outcome = sync(person_client, (today(), 2000)).json()["days"][0]

    assert (outcome["status"], outcome["code"]) == ("rejected", "step_count_decreased")
    assert outcome["message"]
    assert snapshot() == before
    assert StepDay.objects.get(user=person).steps == 3000


def test_a_future_day_and_a_day_older_than_the_window_are_rejected(
    person, person_client, authorize, settings
):
    settings.ACTIVITIES_STEP_SYNC_WINDOW_DAYS = 7
    authorize(person)

    outcomes = sync(
        person_client,
        (today() + datetime.timedelta(days=1), 100),
        (today() - datetime.timedelta(days=7), 100),
        (today() - datetime.timedelta(days=6), 100),
    ).json()["days"]

    assert [(o["status"], o.get("code")) for o in outcomes] == [
        ("rejected", "step_day_too_old"),
        ("accepted", None),
        ("rejected", "step_day_in_future"),
    ]
    assert ActivityRecord.objects.filter(user=person).count() == 1


def test_steps_without_consent_are_rejected_and_nothing_is_stored(person, person_client):
    outcome = sync(person_client, (today(), 3000)).json()["days"][0]

    assert (outcome["status"], outcome["code"]) == ("rejected", "source_not_authorized")
    assert not StepDay.objects.filter(user=person).exists()
    assert not ActivityRecord.objects.exists()
    assert not BehaviourDay.objects.exists()
    assert tally("source_not_authorized") == 1


def test_revoked_consent_rejects_later_syncs(person, person_client, authorize):
    authorize(person)
    sync(person_client, (today(), 1000))
    accounts_services.data_source_revoke(user=person, source=DataSource.PHONE_STEPS)

    outcome = sync(person_client, (today(), 2000)).json()["days"][0]

    assert outcome["code"] == "source_not_authorized"
    assert StepDay.objects.get(user=person).steps == 1000
    assert credited_mg(person) == 20_000


def test_more_steps_than_a_person_walks_are_held_for_review(person, person_client, authorize, settings):
    settings.ACTIVITIES_MAX_DAILY_STEPS = 60_000
    authorize(person)
    sync(person_client, (today(), 59_000))

    outcome = sync(person_client, (today(), 75_000)).json()["days"][0]

    assert (outcome["status"], outcome["hold_reason"]) == ("held_for_review", "superhuman_steps")
    held = ActivityRecord.objects.get(user=person, status="held")
    assert (held.quantity, held.credited_carbon_mg, held.credited_at) == (16_000, 0, None)
    assert credited_mg(person) == 200_000


def test_a_phone_shared_by_many_accounts_holds_their_steps(client_for, authorize, settings):
    from tests.accounts.factories import UserFactory

    settings.ACTIVITIES_SHARED_DEVICE_MAX_ACCOUNTS = 2
    people = UserFactory.create_batch(3)
    outcomes = []
    for user in people:
        authorize(user)
        outcomes.append(sync(client_for(user), (today(), 1000), device_id="phone-1").json()["days"][0])

    assert [o["status"] for o in outcomes] == ["accepted", "accepted", "held_for_review"]
    assert outcomes[2]["hold_reason"] == "shared_device"


def test_a_closed_account_is_refused(person, authorize):
    from django.utils import timezone

    from activities.services import steps_sync

    authorize(person)
    person.closed_at = timezone.now()
    person.save(update_fields=["closed_at"])

    outcomes = steps_sync(user=person, steps_by_day={today(): 1000})

    assert outcomes[0].code == "account_closed"
    assert tally("account_closed") == 1
    assert not ActivityRecord.objects.exists()


def test_syncing_needs_a_session(api_client):
    response = api_client.post("/api/v1/activities/steps", {"days": []}, format="json")

    assert response.status_code == 401


def test_the_phone_syncs_its_own_steps_right_after_the_person_grants_them(person, person_client):
    # The phone's sync is the person acting: granted a moment ago, today's steps and the window's
    # earlier days count (a partner's records count only from the grant on).
    accounts_services.data_source_authorize(user=person, source=DataSource.PHONE_STEPS)
    yesterday = today() - datetime.timedelta(days=1)

    response = sync(person_client, (yesterday, 4000), (today(), 3000))

    assert [(day["day"], day["status"]) for day in response.json()["days"]] == [
        (yesterday.isoformat(), "accepted"),
        (today().isoformat(), "accepted"),
    ]
    assert credited_mg(person) == (4000 + 3000) * 20
