"""A capture racing what changes the person: a merge, an erasure, a revocation of the source.

Every capture locks the person's row and their grant of the source first (FOR SHARE,
`capture.PEOPLE_STATE`), so once a merge, an erasure or a revocation has returned, no record of a
capture that raced it is left on the closed account or credited from the revoked source; and an
erasure never deadlocks with the person's own sync. Each test holds the person's day (as
settlement does) so that the capture is caught between its checks and its commit.
"""

from __future__ import annotations

import datetime
import threading
import time

import pytest
from django.db import connection, transaction

from accounts.models import DataSource
from accounts.services import account_erase, account_merge, data_source_revoke
from activities import services
from activities.history_import import HistoryImport
from activities.models import ActivityRecord, DailyCarbon, PartnerCustomerLink, StepDay
from core.local_time import LOCAL_TZ, local_day_of
from operations.invariants import invariant_violations
from tests.accounts.factories import UserFactory
from tests.activities.conftest import ride, yesterday_at
from tests.activities.test_bulk_import import csv_text, line
from tests.races import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

HOLD_SECONDS = 1.5


def _day_held(user, day: datetime.date, locked: threading.Event) -> None:
    """Holds the person's day for a moment, as settlement does; the capture waits for it."""
    with transaction.atomic():
        list(DailyCarbon.objects.select_for_update().filter(user=user, day=day))
        locked.set()
        time.sleep(HOLD_SECONDS)


def _records_after(change, *, user) -> tuple[object, int]:
    """Runs the change, then counts the person's records as they stand the moment it returned."""
    result = change()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM activities_activityrecord WHERE user_id = %s", [user.pk])
        return result, cursor.fetchone()[0]


def test_a_merge_racing_a_capture_of_the_source_moves_the_capture_s_record_too(authorize):
    target, source = UserFactory(), UserFactory()
    authorize(target)
    authorize(source)
    day = local_day_of(datetime.datetime.now(tz=LOCAL_TZ))
    services.steps_sync(user=source, steps_by_day={day: 3000})
    services.steps_sync(user=target, steps_by_day={day: 2000})
    locked = threading.Event()

    def sync():
        locked.wait(30)
        return services.steps_sync(user=source, steps_by_day={day: 5000})

    def merge():
        locked.wait(30)
        time.sleep(0.3)  # the sync has checked the person and waits for the day
        return account_merge(source_user=source, target_user=target)

    results = race([lambda: _day_held(source, day, locked), sync, merge])

    assert not [result for result in results if isinstance(result, Exception)], results
    assert not ActivityRecord.objects.filter(user=source).exists()
    assert ActivityRecord.objects.filter(user=target).count() == 3
    assert invariant_violations() == []


def test_no_record_is_credited_from_a_source_after_its_revocation_returned(transit, rider):
    services.partner_records_ingest(partner=transit.partner, records=[ride("R1", at=yesterday_at(8))])
    day = yesterday_at(8).date()
    locked = threading.Event()

    def capture():
        locked.wait(30)
        return services.partner_records_ingest(
            partner=transit.partner, records=[ride("R2", at=yesterday_at(9))]
        )

    def revoke():
        locked.wait(30)
        time.sleep(0.3)  # the batch has checked the grant and waits for the day
        return _records_after(
            lambda: data_source_revoke(user=rider, source=DataSource.TRANSIT_CARD), user=rider
        )

    _held, outcomes, (revoked, records_when_revoked) = race(
        [lambda: _day_held(rider, day, locked), capture, revoke]
    )

    assert revoked is not None
    assert [outcome.status for outcome in outcomes] == ["accepted"]  # it came first: the revocation waited
    assert records_when_revoked == ActivityRecord.objects.filter(user=rider).count() == 2


def test_a_revocation_that_committed_first_is_seen_by_a_batch_that_waited_for_it(transit, rider):
    revoking, revoked = threading.Event(), threading.Event()

    def revoke_slowly():
        with transaction.atomic():
            data_source_revoke(user=rider, source=DataSource.TRANSIT_CARD)
            revoking.set()
            time.sleep(0.5)
        revoked.set()

    def capture():
        revoking.wait(30)
        return services.partner_records_ingest(
            partner=transit.partner, records=[ride("R1", at=yesterday_at(9))]
        )

    _revoke, outcomes = race([revoke_slowly, capture])

    assert [(outcome.status, outcome.code) for outcome in outcomes] == [("rejected", "source_not_authorized")]
    assert not ActivityRecord.objects.filter(user=rider).exists()


def test_a_bulk_import_chunk_sees_a_revocation_that_committed_while_it_waited(transit, rider, tmp_path):
    revoking = threading.Event()
    path = tmp_path / "history.csv"
    path.write_text(csv_text([line("h1", "T-100", "bus", 1, yesterday_at(7), 10)]))

    def revoke_slowly():
        with transaction.atomic():
            data_source_revoke(user=rider, source=DataSource.TRANSIT_CARD)
            revoking.set()
            time.sleep(0.5)

    def bulk_import():
        revoking.wait(30)
        return HistoryImport(
            path=path,
            partner=transit.partner,
            file_format="csv",
            errors_path=tmp_path / "errors.csv",
            checkpoint_path=tmp_path / "checkpoint.json",
        ).run()

    _revoke, result = race([revoke_slowly, bulk_import])

    assert (result["accepted"], result["rejected"]) == (0, 1)
    assert not ActivityRecord.objects.filter(user=rider).exists()


@pytest.mark.parametrize("round_number", range(3))
def test_an_erasure_racing_the_person_s_own_syncs_neither_deadlocks_nor_leaves_detail(
    authorize, round_number
):
    person = UserFactory()
    authorize(person)
    day = local_day_of(datetime.datetime.now(tz=LOCAL_TZ))
    services.steps_sync(user=person, steps_by_day={day: 1000})

    results = race(
        [
            lambda: account_erase(user=person),
            lambda: services.steps_sync(user=person, steps_by_day={day: 2000}),
            lambda: services.steps_sync(user=person, steps_by_day={day: 3000}),
        ]
    )

    assert not [result for result in results if isinstance(result, Exception)], results
    # Whichever came first, nothing of the person's activity detail is left after the erasure.
    assert not ActivityRecord.objects.filter(user=person).exists()
    assert not StepDay.objects.filter(user=person).exists()


def test_a_double_tap_linking_the_same_card_to_the_same_person_links_it_once(transit):
    person = UserFactory()

    def link():
        return services.partner_customer_link(partner=transit.partner, customer_reference="T-9", user=person)

    for _round in range(3):
        PartnerCustomerLink.objects.all().delete()
        results = race([link] * 8)

        assert not [result for result in results if isinstance(result, Exception)], results
        assert len({result.pk for result in results}) == 1
