"""One instance under real concurrency (threads, each with its own PostgreSQL connection): a statement
import racing a local report of the same ride, two reports of a ride whose only report was rejected,
and two reviewers rejecting the same record."""

from __future__ import annotations

import datetime

import pytest

from accounts.models import DataSource
from activities import errors, services
from activities.models import (
    ActivityRecord,
    BehaviourDay,
    DailyCarbon,
    Factor,
    ImportedInstance,
    PeerPlatform,
    PeerStatement,
    RecordStatus,
    ReviewDecision,
)
from activities.statements.importing import statement_nonce_issue
from core.api.errors import ApplicationError
from rewards.services.statements import peer_statement_accept
from tests.accounts.factories import UserFactory
from tests.activities.conftest import ride, yesterday_at
from tests.activities.peer_platform import LocalPeer, last_month
from tests.activities.test_statement_instances import at, bus_statement_claims, on_line
from tests.races import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

BUS_RIDE_MG = 80_000


@pytest.fixture(autouse=True)
def _partner_window(settings):
    settings.ACTIVITIES_PARTNER_WINDOW_DAYS = 120


def transit_partner(code: str = "city-transit", source: str = DataSource.TRANSIT_CARD):
    return services.partner_create(code=code, name=code, source=source, behaviour_codes=["bus"]).partner


def commuter(partners, reference: str, authorize):
    person = UserFactory()
    authorize(person, *{partner.source for partner in partners})
    for partner in partners:
        services.partner_customer_link(partner=partner, customer_reference=reference, user=person)
    return person


def test_a_statement_import_and_a_report_of_the_same_ride_at_once_count_it_once(authorize):
    peer = LocalPeer()  # its keys are registered as they are: no JWKS fetch
    PeerPlatform.objects.create(
        name="Green Commute", issuer=peer.issuer, jwks=peer.jwks(), mints_coins=False, counts_in_report=True
    )
    partner = transit_partner()
    month = last_month()
    rounds, outcomes = 8, []
    for n in range(rounds):
        person = commuter([partner], f"T-{n}", authorize)
        when = at(month.replace(day=3 + n), 8)
        claims = bus_statement_claims(
            peer, month, f"peer-person-{n}", [("L1", when + datetime.timedelta(seconds=40), 90_000)],
            nonce=statement_nonce_issue(user=person).nonce,
        )  # fmt: skip
        token = peer.sign(claims)
        report = {**on_line(ride(f"R{n}", reference=f"T-{n}", at=when), "L1")}

        results = race(
            [
                lambda person=person, token=token: peer_statement_accept(user=person, token=token),
                lambda report=report: services.partner_records_ingest(partner=partner, records=[report]),
            ]
        )

        assert not [r for r in results if isinstance(r, Exception)], results
        record = ActivityRecord.objects.get(user=person)
        statement = PeerStatement.objects.get(user=person)
        instance = ImportedInstance.objects.get(statement=statement)
        ours_counts = record.status == RecordStatus.CREDITED
        theirs_counts = instance.credited_record_id is None
        # Exactly one of the two counts the ride.
        assert ours_counts != theirs_counts, (n, record.status, instance.credited_record_id)
        if ours_counts:
            assert (record.credited_carbon_mg, instance.credited_record_id) == (BUS_RIDE_MG, record.id)
            assert statement.total_carbon_mg == 0
        else:
            assert (record.status, record.credited_carbon_mg) == (RecordStatus.DUPLICATE, 0)
            assert record.imported_duplicate_of_id == instance.id
            assert statement.total_carbon_mg == 90_000
        credited = sum(DailyCarbon.objects.filter(user=person).values_list("credited_carbon_mg", flat=True))
        assert credited == (BUS_RIDE_MG if ours_counts else 0)
        outcomes.append("ours" if ours_counts else "theirs")
    assert len(outcomes) == rounds


def two_sources():
    """The transit card and a commuting app (less preferred) report bus rides."""
    transit, app = transit_partner(), transit_partner("commute-app", DataSource.ONLINE_SERVICES)
    Factor.objects.filter(behaviour__code="bus").update(
        sources=[DataSource.TRANSIT_CARD, DataSource.ONLINE_SERVICES],
        source_precedence=[DataSource.TRANSIT_CARD, DataSource.ONLINE_SERVICES],
    )
    return transit, app


def held_ride(transit, reference: str, start, name: str) -> ActivityRecord:
    """A ride overlapping the one before it: held for review."""
    services.partner_records_ingest(
        partner=transit,
        records=[
            ride(f"Y{name}", reference=reference, at=start - datetime.timedelta(minutes=10), minutes=20),
            on_line(ride(f"H{name}", reference=reference, at=start, minutes=20), "L1"),
        ],
    )
    held = ActivityRecord.objects.get(external_id=f"city-transit:H{name}")
    assert held.status == RecordStatus.HELD
    return held


def test_two_reports_of_a_ride_whose_only_report_was_rejected_sent_at_once_credit_it_once(authorize):
    transit, app = two_sources()
    for n in range(6):
        person = commuter([transit, app], f"T-{n}", authorize)
        start = yesterday_at(6 + 2 * n)
        held = held_ride(transit, f"T-{n}", start, str(n))
        services.record_reject(record_id=held.id, reviewer=None)

        results = race(
            [
                lambda partner=partner, when=when, n=n: services.partner_records_ingest(
                    partner=partner, records=[on_line(ride(f"N{n}", reference=f"T-{n}", at=when), "L1")]
                )
                for partner, when in (
                    (transit, start + datetime.timedelta(seconds=50)),
                    (app, start + datetime.timedelta(seconds=30)),
                )
            ]
        )

        assert not [r for r in results if isinstance(r, Exception)], results
        reports = ActivityRecord.objects.filter(user=person, external_id__endswith=f"N{n}")
        credited = [r for r in reports if r.status == RecordStatus.CREDITED]
        assert len(credited) == 1, [(r.external_id, r.status) for r in reports]
        assert [r.duplicate_of_id for r in reports if r.status == RecordStatus.DUPLICATE] == [credited[0].id]
        assert DailyCarbon.objects.get(user=person, day=start.date()).credited_carbon_mg == 2 * BUS_RIDE_MG


def test_two_reviewers_rejecting_the_same_record_at_once_hand_its_credit_over_once(authorize):
    transit, app = two_sources()
    rounds = 6
    for n in range(rounds):
        person = commuter([transit, app], f"T-{n}", authorize)
        start = yesterday_at(6 + 2 * n)
        # A held ride, that the app reports 40 s later.
        held = held_ride(transit, f"T-{n}", start, str(n))
        answer = services.partner_records_ingest(
            partner=app,
            records=[
                on_line(ride(f"A{n}", reference=f"T-{n}", at=start + datetime.timedelta(seconds=40)), "L1")
            ],
        )
        assert answer[0].status == "duplicate_across_sources"

        results = race(
            [
                lambda note=note, record_id=held.id: services.record_reject(
                    record_id=record_id, reviewer=None, note=note
                )
                for note in ("first", "second")
            ]
        )

        refused = [r for r in results if isinstance(r, ApplicationError)]
        assert [error.error for error in refused] == [errors.RECORD_NOT_UNDER_REVIEW], results
        assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, ApplicationError)]
        reports = dict(
            ActivityRecord.objects.filter(user=person, instance_key=held.instance_key).values_list(
                "external_id", "status"
            )
        )
        assert reports == {
            f"city-transit:H{n}": RecordStatus.REJECTED,
            f"commute-app:A{n}": RecordStatus.CREDITED,
        }
        assert ReviewDecision.objects.filter(record_id=held.id).count() == 1
        day = BehaviourDay.objects.get(user=person, day=start.date())
        # The ride kept and the ride handed over: each counted once.
        assert (day.record_count, day.held_count, day.credited_carbon_mg) == (3, 0, 2 * BUS_RIDE_MG)
        assert DailyCarbon.objects.get(user=person, day=start.date()).credited_carbon_mg == 2 * BUS_RIDE_MG
