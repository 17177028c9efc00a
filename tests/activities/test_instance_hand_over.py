"""A report holding an instance's credit, rejected after review, hands the credit to the best of the
other sources' reports refused as its duplicates: once, in the rejecting transaction, within the caps."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from accounts.models import DataSource
from activities import errors, services
from activities.models import ActivityRecord, BehaviourDay, DailyCarbon, Factor, RecordStatus
from core.api.errors import ApplicationError
from tests.activities.conftest import credited_mg, ride, snapshot, yesterday_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_more_sources(rider, authorize):
    """A commuting app (online services, less preferred) and a bus company (transit card) report bus
    rides too; the transit card's reports are preferred."""
    Factor.objects.filter(behaviour__code="bus").update(
        sources=[DataSource.TRANSIT_CARD, DataSource.ONLINE_SERVICES],
        source_precedence=[DataSource.TRANSIT_CARD, DataSource.ONLINE_SERVICES],
    )
    authorize(rider, DataSource.ONLINE_SERVICES)
    partners = []
    for code, source in (("commute-app", DataSource.ONLINE_SERVICES), ("bus-co", DataSource.TRANSIT_CARD)):
        partner = services.partner_create(code=code, name=code, source=source, behaviour_codes=["bus"])
        services.partner_customer_link(partner=partner.partner, customer_reference="T-100", user=rider)
        partners.append(partner)
    return partners


def on_line(record: dict, line: str) -> dict:
    return {**record, "instance": {"line": line}}


def test_rejecting_the_held_report_hands_the_credit_to_the_preferred_duplicate_within_the_cap(
    transit, rider, post_batch, two_more_sources
):
    commute_app, bus_co = two_more_sources
    start = yesterday_at(8)
    # 9.5 rides credited (760 g of the bus's 800 g a day); the 08:00 ride overlaps the 07:50 one: held.
    post_batch(transit, [ride("Y", at=start - datetime.timedelta(minutes=10), minutes=20)])
    post_batch(transit, [ride(f"F{n}", at=start + datetime.timedelta(hours=2 + n)) for n in range(8)])
    post_batch(transit, [{**ride("HALF", at=start + datetime.timedelta(hours=11)), "quantity": "0.5"}])
    post_batch(transit, [on_line(ride("H", at=start, minutes=20), "L1")])
    held = ActivityRecord.objects.get(external_id="city-transit:H")
    assert held.status == RecordStatus.HELD
    # The same ride from the app (first, 40 s later) and from the bus company (60 s later): refused.
    for partner, record_id, seconds in ((commute_app, "A", 40), (bus_co, "B", 60)):
        answer = post_batch(
            partner, [on_line(ride(record_id, at=start + datetime.timedelta(seconds=seconds)), "L1")]
        )
        assert answer.json()["records"][0]["status"] == "duplicate_across_sources"
    assert credited_mg(rider) == 760_000

    services.record_reject(record_id=held.id, reviewer=None, note="a second card's ride")

    reports = {
        r.external_id: r for r in ActivityRecord.objects.filter(user=rider, instance_key=held.instance_key)
    }
    preferred, other = reports["bus-co:B"], reports["commute-app:A"]
    assert (preferred.status, preferred.credited_carbon_mg, preferred.capped_by) == (
        RecordStatus.CREDITED,
        40_000,
        "day",
    )
    assert preferred.duplicate_of_id is None
    assert preferred.credited_at is not None
    assert (other.status, other.credited_carbon_mg, other.duplicate_of_id) == (
        RecordStatus.DUPLICATE,
        0,
        preferred.id,
    )
    held.refresh_from_db()
    assert (held.status, held.duplicate_of_id) == (RecordStatus.REJECTED, preferred.id)
    day = BehaviourDay.objects.get(user=rider)
    assert (day.quantity, day.record_count, day.held_count, day.credited_carbon_mg) == (
        Decimal("10.5"),
        12,
        0,
        800_000,
    )
    assert DailyCarbon.objects.get(user=rider).credited_carbon_mg == 800_000

    # Once: a second rejection is refused and an appeal has nothing to win back; nothing changes.
    before = snapshot(rider)
    with pytest.raises(ApplicationError) as rejected_again:
        services.record_reject(record_id=held.id, reviewer=None)
    with pytest.raises(ApplicationError) as appealed:
        services.record_appeal(user=rider, record_id=held.id, note="it was mine")
    assert rejected_again.value.error == errors.RECORD_NOT_UNDER_REVIEW
    assert appealed.value.error == errors.RECORD_NOT_APPEALABLE
    assert snapshot(rider) == before
    assert list(
        ActivityRecord.objects.filter(status=RecordStatus.CREDITED, instance_key=held.instance_key)
    ) == [preferred]


def test_rejecting_a_report_no_other_source_sent_hands_nothing(transit, rider, post_batch):
    start = yesterday_at(8)
    post_batch(transit, [ride("Y", at=start - datetime.timedelta(minutes=10), minutes=20)])
    post_batch(transit, [on_line(ride("H", at=start, minutes=20), "L1")])
    held = ActivityRecord.objects.get(external_id="city-transit:H")

    services.record_reject(record_id=held.id, reviewer=None)

    held.refresh_from_db()
    assert (held.status, held.duplicate_of_id) == (RecordStatus.REJECTED, None)
    assert credited_mg(rider) == 80_000


def test_a_report_after_a_rejection_no_other_source_had_sent_is_credited(
    transit, rider, post_batch, client_for
):
    start = yesterday_at(8)
    post_batch(transit, [ride("Y", at=start - datetime.timedelta(minutes=10), minutes=20)])
    post_batch(transit, [on_line(ride("H", at=start, minutes=20), "L1")])
    held = ActivityRecord.objects.get(external_id="city-transit:H")
    services.record_reject(record_id=held.id, reviewer=None)

    # The same ride, sent again 60 s off (its card tapped twice, say): the rejected report holds nothing.
    again_at = start + datetime.timedelta(seconds=60)
    answer = post_batch(transit, [on_line(ride("H2", at=again_at), "L1")]).json()

    assert answer["records"][0]["status"] == "accepted"
    again = ActivityRecord.objects.get(external_id="city-transit:H2")
    assert (again.status, again.credited_carbon_mg, again.duplicate_of_id) == (
        RecordStatus.CREDITED,
        80_000,
        None,
    )
    assert credited_mg(rider) == 160_000
    # The rejected report's instance is held again: appealing it would count the ride twice.
    response = client_for(rider).post(f"/api/v1/activities/records/{held.id}/appeal", {"note": "mine"})
    assert response.json()["error"]["code"] == "record_not_appealable"
    held.refresh_from_db()
    assert held.status == RecordStatus.REJECTED
