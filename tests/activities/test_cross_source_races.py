"""Two partners sending the same instance at once credit it once: real threads on PostgreSQL."""

from __future__ import annotations

import datetime

import pytest

from accounts.models import DataSource
from activities import services
from activities.models import ActivityRecord, DailyCarbon, RecordStatus
from tests.accounts.factories import UserFactory
from tests.activities.test_bulk_import import at
from tests.activities.test_cross_source import invoice
from tests.races import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def test_two_partners_sending_the_same_invoice_at_once_credit_it_once(authorize):
    person = UserFactory()
    partners = [
        services.partner_create(code=code, name=code, source=source, behaviour_codes=["e_invoice"]).partner
        for code, source in (("city-bank", DataSource.BANK_PAYMENTS), ("shop", DataSource.ONLINE_SERVICES))
    ]
    authorize(person, DataSource.BANK_PAYMENTS, DataSource.ONLINE_SERVICES)
    for partner in partners:
        services.partner_customer_link(partner=partner, customer_reference="C-1", user=person)

    for round_number in range(6):
        number = f"R{round_number}"
        if round_number % 2:
            # Either side of midnight: no counter row in common, the unique index decides.
            moments = [at(1 + round_number, 0, 1), at(2 + round_number, 23, 59)]
        else:
            moments = [at(1 + round_number, 10)] * 2
        results = race(
            [
                lambda p=p, when=when, number=number: services.partner_records_ingest(
                    partner=p, records=[invoice(f"{p.code}-{number}", "ISSUER", number, when)]
                )
                for p, when in zip(partners, moments, strict=True)
            ]
        )

        assert not [r for r in results if isinstance(r, Exception)], results
        statuses = sorted(outcomes[0].status for outcomes in results)
        # Both accepted: the shop's report came first and the bank's, preferred, took its credit over.
        assert statuses in (["accepted", "accepted"], ["accepted", "duplicate_across_sources"]), statuses
        reports = ActivityRecord.objects.filter(user=person, external_id__endswith=number)
        assert sorted(reports.values_list("status", flat=True)) == [
            RecordStatus.CREDITED,
            RecordStatus.DUPLICATE,
        ]
        assert sum(reports.values_list("credited_carbon_mg", flat=True)) == 5_000
    assert sum(DailyCarbon.objects.filter(user=person).values_list("credited_carbon_mg", flat=True)) == 30_000


def test_two_reports_of_a_ride_either_side_of_midnight_sent_at_once_credit_it_once(authorize):
    """Neighbouring buckets on two local days share no counter row and no unique key: the midnight
    lock (`activities.instances`) makes the second wait for the first and find its credit."""
    person = UserFactory()
    partners = [
        services.partner_create(
            code=code, name=code, source=DataSource.TRANSIT_CARD, behaviour_codes=["bus"]
        ).partner
        for code in ("city-transit", "metro-card")
    ]
    authorize(person, DataSource.TRANSIT_CARD)
    for partner in partners:
        services.partner_customer_link(partner=partner, customer_reference="T-100", user=person)

    rounds = 6
    for round_number in range(1, rounds + 1):
        # 60 s apart (the tolerance is 120 s), in two buckets on two local days.
        moments = [
            at(round_number + 1, 23, 59) + datetime.timedelta(seconds=30),
            at(round_number, 0, 0) + datetime.timedelta(seconds=30),
        ]
        results = race(
            [
                lambda p=p, when=when, n=round_number: services.partner_records_ingest(
                    partner=p,
                    records=[
                        {
                            "id": f"{p.code}-{n}",
                            "customer_reference": "T-100",
                            "behaviour": "bus",
                            "quantity": "1",
                            "occurred_at": when.isoformat(),
                            "instance": {"line": "L7"},
                        }
                    ],
                )  # fmt: skip
                for p, when in zip(partners, moments, strict=True)
            ]
        )

        assert not [r for r in results if isinstance(r, Exception)], results
        statuses = sorted(outcomes[0].status for outcomes in results)
        assert statuses == ["accepted", "duplicate_across_sources"], (round_number, statuses)
        reports = ActivityRecord.objects.filter(user=person, external_id__endswith=f"-{round_number}")
        assert sorted(reports.values_list("status", flat=True)) == [
            RecordStatus.CREDITED,
            RecordStatus.DUPLICATE,
        ]
    bus_credit = 80_000  # one bus ride
    assert sum(DailyCarbon.objects.filter(user=person).values_list("credited_carbon_mg", flat=True)) == (
        rounds * bus_credit
    )
