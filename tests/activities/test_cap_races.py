"""Caps under real concurrency: threads, each with its own PostgreSQL connection, race on one person."""

from __future__ import annotations

import datetime
import threading
import time
from types import SimpleNamespace

import pytest
from django.db import connection, transaction

from accounts.models import DataSource
from activities import services
from activities.models import ActivityRecord, Behaviour, BehaviourDay, DailyCarbon
from core.local_time import LOCAL_TZ, local_day_of
from tests.accounts.factories import UserFactory
from tests.activities.conftest import ride, yesterday_at
from tests.races import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def test_phones_syncing_at_once_never_credit_more_than_the_daily_cap(authorize):
    person = UserFactory()
    authorize(person)
    day = local_day_of(datetime.datetime.now(tz=LOCAL_TZ))

    counts = [3000 * n for n in range(1, 9)]  # up to 24,000 steps: 480 g before the 200 g cap
    results = race([lambda c=c: services.steps_sync(user=person, steps_by_day={day: c}) for c in counts])

    assert not [r for r in results if isinstance(r, Exception)]
    total = DailyCarbon.objects.get(user=person, day=day).credited_carbon_mg
    records = ActivityRecord.objects.filter(user=person)
    assert total <= 200_000
    assert total == sum(r.credited_carbon_mg for r in records)
    # Only increases count: the stored quantities add up to the highest count that won.
    assert sum(r.quantity for r in records) == BehaviourDay.objects.get(user=person).quantity
    assert BehaviourDay.objects.get(user=person).quantity <= 24_000
    assert BehaviourDay.objects.get(user=person).credited_carbon_mg == total


def test_partner_batches_racing_never_credit_more_than_the_cap(transit, rider):
    start = yesterday_at(9)

    def batch(thread: int):
        records = [
            dict(
                ride(f"T{thread}-{n}", at=start + datetime.timedelta(minutes=7 * n + thread)),
                behaviour="metro",
            )
            for n in range(3)
        ]
        return services.partner_records_ingest(partner=transit.partner, records=records)

    results = race([lambda t=t: batch(t) for t in range(6)])

    assert not [r for r in results if isinstance(r, Exception)]
    assert DailyCarbon.objects.get(user=rider).credited_carbon_mg == 400_000  # 5 metro rides
    assert ActivityRecord.objects.filter(user=rider).count() == 18
    assert (
        sum(ActivityRecord.objects.filter(user=rider).values_list("credited_carbon_mg", flat=True)) == 400_000
    )


def test_the_same_batch_sent_at_once_is_credited_once(transit, rider):
    records = [dict(ride(f"R{n}", at=yesterday_at(8 + n)), behaviour="bus") for n in range(4)]

    results = race([lambda: services.partner_records_ingest(partner=transit.partner, records=records)] * 4)

    assert not [r for r in results if isinstance(r, Exception)]
    assert ActivityRecord.objects.count() == 4
    assert DailyCarbon.objects.get(user=rider).credited_carbon_mg == 320_000
    statuses = sorted(o.status for result in results for o in result)
    assert statuses.count("accepted") == 4
    assert statuses.count("duplicate") == 12


def test_two_partners_racing_on_one_behaviour_share_its_cap(authorize):
    person = UserFactory()
    authorize(person, DataSource.BANK_PAYMENTS, DataSource.ONLINE_SERVICES)
    bank = services.partner_create(
        code="bank", name="Bank", source=DataSource.BANK_PAYMENTS, behaviour_codes=["e_invoice"]
    )
    shop = services.partner_create(
        code="shop", name="Shop", source=DataSource.ONLINE_SERVICES, behaviour_codes=["e_invoice"]
    )
    for partner in (bank, shop):
        services.partner_customer_link(partner=partner.partner, customer_reference="C1", user=person)

    def batch(partner, thread):
        records = [
            {**ride(f"{thread}-{n}", reference="C1", at=yesterday_at(10, n)), "behaviour": "e_invoice"}
            for n in range(4)
        ]
        return services.partner_records_ingest(partner=partner.partner, records=records)

    results = race([lambda p=p, t=t: batch(p, t) for t in range(3) for p in (bank, shop)])

    assert not [r for r in results if isinstance(r, Exception)]
    assert DailyCarbon.objects.get(user=person).credited_carbon_mg == 25_000  # 5 e-invoices a day
    assert ActivityRecord.objects.filter(user=person).count() == 24


def test_batches_for_many_people_racing_keep_every_cap_and_every_counter_exact(transit, authorize):
    people = UserFactory.create_batch(6)
    for index, person in enumerate(people):
        authorize(person, DataSource.TRANSIT_CARD)
        services.partner_customer_link(partner=transit.partner, customer_reference=f"M-{index}", user=person)

    def batch(thread: int):
        order = range(6) if thread % 2 else reversed(range(6))  # opposite key orders across threads
        records = [
            {
                **ride(f"{thread}-{p}-{n}", reference=f"M-{p}", at=yesterday_at(7 + n, thread)),
                "behaviour": "metro",
            }
            for p in order
            for n in range(3)
        ]
        return services.partner_records_ingest(partner=transit.partner, records=records)

    results = race([lambda t=t: batch(t) for t in range(4)])

    assert not [r for r in results if isinstance(r, Exception)]
    for person in people:
        records = ActivityRecord.objects.filter(user=person)
        day = BehaviourDay.objects.get(user=person)
        assert records.count() == 12
        assert day.record_count == 12
        assert day.credited_carbon_mg == sum(r.credited_carbon_mg for r in records) == 400_000
        assert DailyCarbon.objects.get(user=person).credited_carbon_mg == 400_000


def test_a_bulk_import_racing_partner_batches_never_credits_more_than_the_cap(transit, rider, tmp_path):
    from activities.history_import import HistoryImport

    start = yesterday_at(7)
    path = tmp_path / "history.csv"
    lines = [
        f"I{n},T-100,metro,1,{(start + datetime.timedelta(minutes=11 * n)).isoformat()},"
        f"{(start + datetime.timedelta(minutes=11 * n + 1)).isoformat()}"
        for n in range(12)
    ]
    path.write_text(
        "id,customer_reference,behaviour,quantity,occurred_at,ended_at\n" + "\n".join(lines) + "\n"
    )

    def bulk_import():
        return HistoryImport(
            path=path, partner=transit.partner, file_format="csv",
            errors_path=tmp_path / "errors.csv", checkpoint_path=tmp_path / "checkpoint.json",
        ).run()  # fmt: skip

    def batch(thread: int):
        moments = [start + datetime.timedelta(minutes=11 * n + 3 + 2 * thread) for n in range(4)]
        records = [
            dict(ride(f"T{thread}-{n}", at=moment, minutes=1), behaviour="metro")
            for n, moment in enumerate(moments)
        ]
        return services.partner_records_ingest(partner=transit.partner, records=records)

    results = race([bulk_import, *(lambda t=t: batch(t) for t in range(3))])

    assert not [r for r in results if isinstance(r, Exception)]
    assert ActivityRecord.objects.filter(user=rider).count() == 24
    assert DailyCarbon.objects.get(user=rider).credited_carbon_mg == 400_000  # 5 metro rides
    assert BehaviourDay.objects.get(user=rider).credited_carbon_mg == 400_000
    assert BehaviourDay.objects.get(user=rider).record_count == 24
    assert sum(r.credited_carbon_mg for r in ActivityRecord.objects.filter(user=rider)) == 400_000


def test_overlapping_batches_creating_counters_round_after_round_all_succeed(transit, authorize):
    """Each round, six batches race to create the same people's counter rows for a new day, each
    batch a different window of the people: each batch creates its missing counter rows before it
    works anything out (waiting for a concurrent creator), so none fails and every counter equals
    its records."""
    people = UserFactory.create_batch(8)
    for index, person in enumerate(people):
        authorize(person, DataSource.TRANSIT_CARD)
        services.partner_customer_link(partner=transit.partner, customer_reference=f"W-{index}", user=person)

    def batch(round_: int, thread: int):
        at = yesterday_at(6) - datetime.timedelta(days=round_)
        window = [(thread + offset) % len(people) for offset in range(4)]
        records = [
            ride(
                f"{round_}-{thread}-{p}",
                reference=f"W-{p}",
                behaviour="bus",
                at=at + datetime.timedelta(minutes=10 * thread),
            )
            for p in window
        ]
        return services.partner_records_ingest(partner=transit.partner, records=records)

    for round_ in range(4):
        results = race([lambda r=round_, t=t: batch(r, t) for t in range(6)])
        assert not [r for r in results if isinstance(r, Exception)], results

    for index, person in enumerate(people):
        batches_with_person = sum(1 for t in range(6) if index in {(t + o) % len(people) for o in range(4)})
        assert BehaviourDay.objects.filter(user=person).count() == 4
        for day in BehaviourDay.objects.filter(user=person):
            records = ActivityRecord.objects.filter(user=person, local_day=day.day)
            assert day.record_count == records.count() == batches_with_person
            assert day.credited_carbon_mg == sum(r.credited_carbon_mg for r in records)
            assert (
                DailyCarbon.objects.get(user=person, day=day.day).credited_carbon_mg == day.credited_carbon_mg
            )


def test_a_batch_waits_for_a_concurrent_creator_of_its_counter_instead_of_racing_it(transit, rider):
    """The first records of a day create their counter rows before anything is worked out: a second
    batch for the same person and day waits for the first to commit, then locks the row it created
    (nothing is left for it to create, so it can never find at the end that someone else did)."""
    from activities.ingest import _lock_counters

    behaviour_id = Behaviour.objects.get(code="bus").id
    day = yesterday_at(6).date()
    candidate = SimpleNamespace(
        user_id=rider.id,
        behaviour_id=behaviour_id,
        local_day=day,
        factor=SimpleNamespace(monthly_cap_mg=None),
    )
    first_locked, first_may_commit = threading.Event(), threading.Event()
    order = []

    def first():
        with transaction.atomic(), connection.cursor() as cursor:
            counters = _lock_counters(cursor, [candidate])
            BehaviourDay.objects.filter(user=rider, day=day).update(record_count=1)
            first_locked.set()
            first_may_commit.wait(timeout=30)
            order.append("first commits")
        return counters

    def second():
        first_locked.wait(timeout=30)
        with transaction.atomic(), connection.cursor() as cursor:
            counters = _lock_counters(cursor, [candidate])
            order.append("second locked")
            return counters, BehaviourDay.objects.get(user=rider, day=day).record_count

    def release():
        first_locked.wait(timeout=30)
        time.sleep(0.3)  # the second batch is now waiting on the row the first created
        first_may_commit.set()

    first_counters, (second_counters, seen_count), _ = race([first, second, release])

    assert order == ["first commits", "second locked"]
    assert first_counters[2] == set()  # nothing left to create when storing: it was created up front
    assert second_counters[2] == set()
    assert (rider.id, behaviour_id, day) in second_counters[0]
    assert seen_count == 1  # the first batch's committed row, locked by the second
    assert BehaviourDay.objects.filter(user=rider, day=day).count() == 1


@pytest.mark.parametrize("round_", range(3))
def test_a_merge_racing_the_persons_own_syncs_leaves_every_cap_held(authorize, round_):
    from accounts.services import account_merge
    from operations.invariants import invariant_violations

    target, source = UserFactory(), UserFactory()
    for user in (target, source):
        authorize(user)
    day = local_day_of(datetime.datetime.now(tz=LOCAL_TZ))
    services.steps_sync(user=source, steps_by_day={day: 6000})  # 120 g
    services.steps_sync(user=target, steps_by_day={day: 4000})  # 80 g

    def merge():
        return account_merge(source_user=source, target_user=target)

    syncs = [lambda c=c: services.steps_sync(user=target, steps_by_day={day: c}) for c in (6000, 8000, 9000)]
    results = race([merge, *syncs])

    assert not [r for r in results if isinstance(r, Exception)]
    records = ActivityRecord.objects.filter(user=target)
    assert sum(r.credited_carbon_mg for r in records) == 200_000
    assert DailyCarbon.objects.get(user=target, day=day).credited_carbon_mg == 200_000
    assert BehaviourDay.objects.get(user=target, day=day).credited_carbon_mg == 200_000
    assert invariant_violations() == []
