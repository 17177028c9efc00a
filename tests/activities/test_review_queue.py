"""The review queue: held records credit nothing until approved; decisions are audited."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.admin.sites import site
from django.urls import reverse

from activities import services
from activities.models import ActivityRecord, BehaviourDay, DailyCarbon, HeldRecord, ReviewDecision
from tests.accounts.factories import UserFactory
from tests.activities.conftest import credited_mg, ride, yesterday_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(transit, rider, post_batch) -> ActivityRecord:
    start = yesterday_at(9)  # a fixed time of yesterday: both rides on one local day, whenever this runs
    post_batch(
        transit,
        [ride("R1", at=start, minutes=40), ride("R2", at=start + datetime.timedelta(minutes=10), minutes=20)],
    )
    return ActivityRecord.objects.get(status="held")


def test_approving_credits_the_record_and_raises_its_day(held, rider):
    reviewer = UserFactory(is_staff=True)

    services.record_approve(record_id=held.id, reviewer=reviewer, note="two cards, checked")

    held.refresh_from_db()
    assert (held.status, held.credited_carbon_mg) == ("credited", 80_000)
    assert held.approved_at is not None
    assert credited_mg(rider) == 160_000
    assert BehaviourDay.objects.get(user=rider).held_count == 0
    decision = ReviewDecision.objects.get(record=held)
    assert (decision.decision, decision.reviewer, decision.credited_carbon_mg) == (
        "approved",
        reviewer,
        80_000,
    )


def test_approving_after_the_day_was_settled_leaves_the_difference_for_settlement(held, rider):
    DailyCarbon.objects.filter(user=rider).update(settled_carbon_mg=80_000)

    services.record_approve(record_id=held.id, reviewer=None)

    day = DailyCarbon.objects.get(user=rider)
    assert (day.credited_carbon_mg, day.settled_carbon_mg) == (160_000, 80_000)


def test_approval_applies_the_caps_as_they_stand(transit, rider, post_batch):
    start = yesterday_at(8)
    records = [
        dict(ride(f"R{n}", at=start + datetime.timedelta(minutes=5 * n)), behaviour="metro")
        for n in range(11)
    ]
    post_batch(transit, records)
    held = ActivityRecord.objects.get(status="held")

    services.record_approve(record_id=held.id, reviewer=None)

    held.refresh_from_db()
    assert (held.credited_carbon_mg, held.capped_by) == (0, "day")
    assert credited_mg(rider) == 400_000


def test_rejecting_credits_nothing_and_is_audited(held, rider):
    services.record_reject(record_id=held.id, reviewer=None, note="same card twice")

    held.refresh_from_db()
    assert held.status == "rejected"
    assert credited_mg(rider) == 80_000
    assert ReviewDecision.objects.get(record=held).decision == "rejected"
    with pytest.raises(services.ApplicationError) as error:
        services.record_approve(record_id=held.id, reviewer=None)
    assert error.value.error.code == "record_not_under_review"


def test_the_person_sees_under_review_and_can_appeal_once(held, rider, client_for):
    client = client_for(rider)
    listed = client.get("/api/v1/activities/records").json()["results"]
    mine = next(r for r in listed if r["id"] == held.id)
    assert (mine["status"], mine["hold_reason"], mine["can_appeal"]) == ("held", "overlapping_trip", True)
    assert "under review" in mine["receipt"]

    response = client.post(f"/api/v1/activities/records/{held.id}/appeal", {"note": "I paid for my child"})

    assert response.status_code == 200
    assert response.json()["appeal_note"] == "I paid for my child"
    again = client.post(f"/api/v1/activities/records/{held.id}/appeal", {"note": "again"})
    assert again.json()["error"]["code"] == "appeal_already_made"


def test_an_appeal_returns_a_rejected_record_to_the_queue(held, rider, client_for):
    services.record_reject(record_id=held.id, reviewer=None)

    client_for(rider).post(f"/api/v1/activities/records/{held.id}/appeal", {"note": "please look again"})

    held.refresh_from_db()
    assert held.status == "held"
    assert BehaviourDay.objects.get(user=rider).held_count == 1


def test_a_credited_record_cannot_be_appealed(transit, rider, post_batch, client_for):
    post_batch(transit, [ride("R1")])
    record = ActivityRecord.objects.get()

    response = client_for(rider).post(f"/api/v1/activities/records/{record.id}/appeal", {"note": "x"})

    assert response.json()["error"]["code"] == "record_not_appealable"


def test_nobody_appeals_someone_elses_record(held, client_for):
    response = client_for(UserFactory()).post(f"/api/v1/activities/records/{held.id}/appeal", {"note": "x"})

    assert response.status_code == 404
    held.refresh_from_db()
    assert held.appealed_at is None


def test_the_admin_queue_approves_in_bulk(held, rider, admin_client):
    url = reverse("admin:activities_heldrecord_changelist")

    assert held.id in [r.id for r in HeldRecord.objects.all()]
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"action": "approve_selected", "_selected_action": [held.id]})

    assert response.status_code == 302
    held.refresh_from_db()
    assert held.status == "credited"
    assert ReviewDecision.objects.get(record=held).reviewer.is_superuser
    assert site.is_registered(HeldRecord)
