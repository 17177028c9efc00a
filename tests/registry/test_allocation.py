"""The pooling consent and the allocation of lots: only settled, credited grams of consenting people,
each gram in one lot ever (also when two lots are allocated at once, on real threads), the serial
numbers of whole tonnes, and the invariants of the shared checker."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from accounts.services import pooling_consent_revoke
from activities.models import RecordStatus
from core.api.errors import ApplicationError
from operations.invariants import invariant_violations
from registry import errors
from registry.models import MG_PER_TONNE, LotAllocation, LotContribution, LotEvent, ReductionLot
from registry.services import lot_allocate, lot_create
from rewards.services import settlement_run
from tests.accounts.factories import UserFactory
from tests.registry.factories import behaviour, consenting, days_ago, record, uncapped_version

pytestmark = pytest.mark.django_db(transaction=True)


def _settle_through(day) -> None:
    settlement_run(day=day)


def _lot(title: str = "Bus 2026-11", *, codes=("bus",), start=10, end=1) -> ReductionLot:
    return lot_create(
        title=title,
        period_start=days_ago(start),
        period_end=days_ago(end),
        behaviours=[(behaviour(code), uncapped_version()) for code in codes],
        actor="operator",
    )


def test_a_lot_takes_only_settled_credited_grams_of_consenting_people_of_its_behaviours():
    # Given one consenting person with bus and walk records, a held record, and an unsettled day,
    # and a person who never consented.
    rider = consenting(UserFactory())
    stranger = UserFactory()
    record(rider, days_ago(5), 600_000_000)
    record(rider, days_ago(5), 50_000, code="walk")
    record(rider, days_ago(4), 400_000_000)
    record(rider, days_ago(4), 80_000, status=RecordStatus.HELD)
    record(stranger, days_ago(5), 900_000_000)
    _settle_through(days_ago(4))
    record(rider, days_ago(3), 700_000_000)  # credited after its day's settlement: not yet settled

    # When a lot of bus rides over the period is allocated.
    lot = lot_allocate(lot=_lot(), actor="operator")

    # Then it holds the two settled bus days of the consenting person, nothing else.
    assert sorted(LotAllocation.objects.filter(lot=lot).values_list("day", "carbon_mg")) == [
        (days_ago(5), 600_000_000),
        (days_ago(4), 400_000_000),
    ]
    assert lot.volume_mg == 1_000_000_000
    assert lot.tonnes == 1
    assert lot.contributor_count == 1
    assert lot.serial_first == lot.serial_last == f"QZ-{days_ago(10):%Y-%m}-000001"
    assert list(LotContribution.objects.filter(lot=lot).values_list("user_id", "carbon_mg")) == [
        (rider.pk, 1_000_000_000)
    ]
    assert len(lot.merkle_root) == 64
    assert list(LotEvent.objects.filter(lot=lot).values_list("kind", flat=True)) == ["created", "allocated"]
    assert invariant_violations() == []


def test_a_lot_is_allocated_once_and_a_later_lot_skips_grams_already_pooled():
    rider = consenting(UserFactory())
    record(rider, days_ago(5), 2_500_000_000)
    _settle_through(days_ago(5))
    first = lot_allocate(lot=_lot("first"))

    with pytest.raises(ApplicationError) as raised:
        lot_allocate(lot=first)
    assert raised.value.error is errors.LOT_STATE_CONFLICT

    second = lot_allocate(lot=_lot("second"))
    assert (second.volume_mg, second.tonnes, second.serial_start) == (0, 0, None)
    first.refresh_from_db()
    assert (first.volume_mg, first.tonnes) == (2_500_000_000, 2)
    assert [first.serial_first, first.serial_last] == [
        f"QZ-{days_ago(10):%Y-%m}-000001",
        f"QZ-{days_ago(10):%Y-%m}-000002",
    ]
    assert invariant_violations() == []


def test_a_later_lot_over_the_same_days_takes_only_the_grams_no_lot_holds():
    # Given a lot that pooled the first rider's days, then a second rider who consents afterwards.
    first_rider = consenting(UserFactory())
    second_rider = UserFactory()
    record(first_rider, days_ago(5), 600_000_000)
    record(second_rider, days_ago(5), 700_000_000)
    _settle_through(days_ago(5))
    first = lot_allocate(lot=_lot("first"))
    consenting(second_rider)

    # When a second lot over the same days is allocated (its plain insert meets the first lot's key).
    second = lot_allocate(lot=_lot("second"))

    # Then it holds the second rider's grams only, and the first lot is unchanged.
    assert list(LotAllocation.objects.filter(lot=second).values_list("user_id", "carbon_mg")) == [
        (second_rider.pk, 700_000_000)
    ]
    assert list(LotContribution.objects.filter(lot=second).values_list("user_id", "carbon_mg")) == [
        (second_rider.pk, 700_000_000)
    ]
    assert (second.volume_mg, first.volume_mg) == (700_000_000, 600_000_000)
    assert invariant_violations() == []


def test_revoking_the_consent_keeps_what_was_pooled_and_keeps_the_person_out_of_later_lots():
    rider = consenting(UserFactory())
    record(rider, days_ago(6), 300_000_000)
    _settle_through(days_ago(6))
    first = lot_allocate(lot=_lot("first", start=6, end=6))
    pooling_consent_revoke(user=rider)
    record(rider, days_ago(5), 300_000_000)
    _settle_through(days_ago(5))

    second = lot_allocate(lot=_lot("second", start=5, end=5))

    assert LotContribution.objects.get(lot=first).carbon_mg == 300_000_000
    assert second.volume_mg == 0
    assert not LotAllocation.objects.filter(lot=second).exists()


def test_a_lot_period_must_be_over():
    with pytest.raises(ApplicationError) as raised:
        _lot(start=2, end=0)
    assert raised.value.error is errors.LOT_PERIOD_NOT_CLOSED
    assert not ReductionLot.objects.exists()


@pytest.mark.concurrency
def test_two_lots_allocated_at_once_hold_each_gram_once():
    # Given 30 consenting people with settled bus days, and two draft lots over the same days.
    people = [consenting(user) for user in UserFactory.create_batch(30)]
    for number, user in enumerate(people, start=1):
        for days in (5, 4, 3):
            record(user, days_ago(days), number * 10_000_000)
    _settle_through(days_ago(3))
    lots = [_lot("left"), _lot("right")]
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def allocate(lot: ReductionLot) -> None:
        try:
            start.wait()
            lot_allocate(lot=lot)
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)
        finally:
            connections.close_all()

    # When both are allocated at the same moment on two connections.
    threads = [threading.Thread(target=allocate, args=(lot,)) for lot in lots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every gram is in exactly one of them, and together they hold all of it.
    assert failures == []
    volumes = [ReductionLot.objects.get(pk=lot.pk).volume_mg for lot in lots]
    total = sum(number * 10_000_000 * 3 for number in range(1, 31))
    assert sum(volumes) == total
    assert LotAllocation.objects.count() == 90
    assert sorted(LotAllocation.objects.values_list("user_id", "day")) == sorted(
        (user.pk, days_ago(days)) for user in people for days in (5, 4, 3)
    )
    assert invariant_violations() == []


def test_the_checker_finds_grams_allocated_beyond_what_was_settled():
    rider = consenting(UserFactory())
    record(rider, days_ago(5), 300_000_000)
    _settle_through(days_ago(5))
    lot = lot_allocate(lot=_lot())
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE registry_lotallocation SET carbon_mg = carbon_mg + %s WHERE lot_id = %s",
            [MG_PER_TONNE, lot.pk],
        )

    violations = invariant_violations()

    assert (
        f"allocated within settled: person {rider.pk}, day {days_ago(5)}: "
        "1300000000 mg in lots, 300000000 mg settled" in violations
    )
    assert any(line.startswith(f"lot volume: lot {lot.public_id}") for line in violations)
