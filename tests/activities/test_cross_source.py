"""One real-world instance reported by two sources is credited once: the partner API, the bulk
import (the same rules in SQL, checked against the batch path) and two partners at once."""

from __future__ import annotations

import datetime

import pytest
from django.db import transaction

from accounts.models import DataSource
from activities import errors, services
from activities.history_import import COLUMNS
from activities.models import ActivityRecord, BehaviourDay, DailyCarbon, RecordStatus
from core.api.errors import ApplicationError
from core.local_time import LOCAL_TZ
from tests.accounts.factories import UserFactory
from tests.activities.conftest import ride, yesterday_at
from tests.activities.test_bulk_import import at, csv_text, through_batch_path, through_chunked_import

pytestmark = pytest.mark.django_db

INVOICE_COLUMNS = [*COLUMNS, "instance.issuer", "instance.invoice_number"]


def invoice(record_id, issuer, number, when, reference="C-1") -> dict:
    record = {
        "id": record_id,
        "customer_reference": reference,
        "behaviour": "e_invoice",
        "quantity": "1",
        "occurred_at": when.isoformat(),
        "instance": {},
    }
    if issuer is not None:
        record["instance"]["issuer"] = issuer
    if number is not None:
        record["instance"]["invoice_number"] = number
    return record


@pytest.fixture
def invoicing(db, authorize):
    """A person whose bank (bank feed) and online shop (online services) both send e-invoices."""
    person = UserFactory()
    bank = services.partner_create(
        code="city-bank", name="City Bank", source=DataSource.BANK_PAYMENTS, behaviour_codes=["e_invoice"]
    )
    shop = services.partner_create(
        code="shop", name="Online Shop", source=DataSource.ONLINE_SERVICES, behaviour_codes=["e_invoice"]
    )
    authorize(person, DataSource.BANK_PAYMENTS, DataSource.ONLINE_SERVICES)
    for partner in (bank, shop):
        services.partner_customer_link(partner=partner.partner, customer_reference="C-1", user=person)
    return person, bank, shop


def credited(person) -> int:
    return sum(DailyCarbon.objects.filter(user=person).values_list("credited_carbon_mg", flat=True))


def test_the_same_invoice_from_the_bank_and_a_shop_is_credited_once(invoicing, post_batch, client_for):
    person, bank, shop = invoicing
    when = at(1, 10)
    first = post_batch(bank, [invoice("b-1", "91330800MA2X", "0001", when)]).json()

    second = post_batch(shop, [invoice("s-9", " 91330800ma2x ", "0001", when + datetime.timedelta(hours=1))])

    assert first["records"][0]["status"] == "accepted"
    answer = second.json()
    assert answer["duplicate_across_sources"] == 1
    assert answer["accepted"] == 0
    outcome = answer["records"][0]
    assert outcome["status"] == outcome["code"] == "duplicate_across_sources"
    assert outcome["credited_receipt"] == "1 × 5 g per document (methodology v1) = 5 g"
    assert credited(person) == 5_000
    assert BehaviourDay.objects.get(user=person).record_count == 1
    # The history shows both reports under the one credit.
    records = client_for(person).get("/api/v1/activities/records").json()["results"]
    by_source = {record["source"]: record for record in records}
    credited_record = by_source["bank_payments"]
    report = by_source["online_services"]
    assert (credited_record["status"], credited_record["credited_carbon_mg"]) == ("credited", 5_000)
    assert credited_record["other_reports"] == [
        {"id": report["id"], "source": "online_services", "partner": "Online Shop"}
    ]
    assert (report["status"], report["credited_carbon_mg"], report["credited_record"]) == (
        "duplicate",
        0,
        credited_record["id"],
    )
    assert report["can_appeal"] is False
    assert "not credited again" in report["receipt"]


def test_the_preferred_source_arriving_second_takes_the_credit_over_and_nothing_is_counted_twice(
    invoicing, post_batch
):
    person, bank, shop = invoicing
    when = at(1, 10)
    post_batch(shop, [invoice("s-1", "ISSUER", "0001", when)])
    shop_record = ActivityRecord.objects.get(external_id="shop:s-1")
    # Its day was settled already: the coins stay as they are.
    DailyCarbon.objects.filter(user=person).update(settled_carbon_mg=5_000)

    answer = post_batch(bank, [invoice("b-1", "ISSUER", "0001", when + datetime.timedelta(minutes=5))]).json()

    assert answer["records"][0] == {"id": "b-1", "status": "accepted", "credited_carbon_mg": 5_000}
    bank_record = ActivityRecord.objects.get(external_id="city-bank:b-1")
    shop_record.refresh_from_db()
    assert (bank_record.status, bank_record.credited_carbon_mg, bank_record.duplicate_of_id) == (
        RecordStatus.CREDITED, 5_000, None,
    )  # fmt: skip
    assert (shop_record.status, shop_record.credited_carbon_mg, shop_record.duplicate_of_id) == (
        RecordStatus.DUPLICATE, 0, bank_record.id,
    )  # fmt: skip
    days = DailyCarbon.objects.filter(user=person)
    assert days.values_list("credited_carbon_mg", "settled_carbon_mg").get() == (5_000, 5_000)
    # A third report points at the credited one.
    third = post_batch(shop, [invoice("s-2", "ISSUER", "0001", when)]).json()["records"][0]
    assert third["status"] == "duplicate_across_sources"
    assert ActivityRecord.objects.get(external_id="shop:s-2").duplicate_of_id == bank_record.id


def test_the_credit_stays_with_the_first_report_when_moving_it_would_change_a_day(invoicing, post_batch):
    person, bank, shop = invoicing
    post_batch(shop, [invoice("s-1", "ISSUER", "0002", at(2, 23, 59))])

    answer = post_batch(bank, [invoice("b-1", "ISSUER", "0002", at(1, 0, 1))]).json()

    assert answer["records"][0]["status"] == "duplicate_across_sources"
    assert ActivityRecord.objects.get(external_id="shop:s-1").credited_carbon_mg == 5_000
    assert credited(person) == 5_000


def test_records_without_the_identifying_fields_count_on_their_own(invoicing, post_batch):
    person, bank, shop = invoicing
    when = at(1, 10)
    post_batch(bank, [invoice("b-1", "ISSUER", None, when)])

    answer = post_batch(shop, [invoice("s-1", "ISSUER", None, when)]).json()

    assert answer["accepted"] == 1
    assert credited(person) == 10_000


def test_an_instance_that_is_not_text_is_an_invalid_record(invoicing, post_batch):
    person, bank, shop = invoicing
    record = invoice("b-1", "ISSUER", "1", at(1, 10))
    record["instance"] = {"issuer": ["a list"]}

    outcome = post_batch(bank, [record]).json()["records"][0]

    assert (outcome["status"], outcome["code"], outcome["detail"]) == (
        "rejected",
        "invalid_record",
        "instance",
    )
    assert ActivityRecord.objects.count() == 0


# --- The bulk import applies the same rule in SQL -------------------------------------------------


def row(record_id, when, issuer="", number="", reference="C-1", behaviour="e_invoice") -> list[str]:
    moment = when if isinstance(when, str) else when.isoformat()
    return [record_id, reference, behaviour, "1", moment, "", issuer, number]


def invoice_file(tmp_path, rows) -> object:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INVOICE_COLUMNS)
    writer.writerows(rows)
    path = tmp_path / "invoices.csv"
    path.write_text(buffer.getvalue())
    return path


@pytest.mark.parametrize("odd_line", [False, True], ids=["plain", "one-line-read-by-python"])
def test_the_import_and_the_batch_path_agree_on_second_reports(invoicing, post_batch, tmp_path, odd_line):
    person, bank, shop = invoicing
    post_batch(
        shop,
        [
            invoice("s-1", "ISSUER", "0001", at(2, 10)),
            invoice("s-2", "ISSUER", "0002", at(3, 23, 59)),
        ],
    )
    rows = [
        row("k1", at(2, 11), "issuer ", "0001"),  # the shop's s-1: the bank is preferred and takes it
        row("k2", at(2, 0, 1), "ISSUER", "0002"),  # s-2 of the day before: the credit stays there
        row("k3", at(4, 9), "ISSUER", "0003"),
        row("k4", at(4, 8), "ISSUER", "0003"),  # the earlier of the two is credited
        row("k5", at(4, 10), "ISSUER", ""),  # no number: counts on its own
        row("k6", at(5, 9), "ISSUER", "0004"),
        row("k7", at(5, 10), "发票局", "0005"),  # not ASCII: read by Python
        row("k8", at(5, 11), "发票局", "0005"),
        row("k9", at(6, 9), "ISSUER", "0006"),
    ]
    if odd_line:
        # The same instance as k9, on a line Python reads (a moment written with a space).
        rows.append(row("k10", at(6, 10).isoformat().replace("T", " "), "ISSUER", "0006"))
    else:
        rows.append(row("k10", at(6, 10), "ISSUER", "0006"))
    path = invoice_file(tmp_path, rows)

    by_batch, batch_rejections = through_batch_path(bank, path)
    by_import, import_rejections, read_by_python = through_chunked_import(bank, path, tmp_path)

    assert read_by_python == (3 if odd_line else 2)
    assert by_import == by_batch
    assert import_rejections == batch_rejections == []
    reports = {(second, first) for second, first, _ in by_import["reports"]}
    assert reports == {
        ("shop:s-1", "city-bank:k1"),
        ("city-bank:k2", "shop:s-2"),
        ("city-bank:k3", "city-bank:k4"),
        ("city-bank:k8", "city-bank:k7"),
        ("city-bank:k10", "city-bank:k9"),
    }
    statuses = {record[0]: (record[8], record[6]) for record in by_import["records"]}
    assert statuses["city-bank:k1"] == ("credited", 5_000)
    assert statuses["shop:s-1"] == ("duplicate", 0)
    assert statuses["city-bank:k5"] == ("credited", 5_000)


def test_the_import_and_the_batch_path_agree_on_rides_within_the_tolerance(
    transit, rider, post_batch, tmp_path
):
    def bus(record_id, when, line):
        return [record_id, "T-100", "bus", "1", when.isoformat(), "", line]

    post_batch(
        transit,
        [
            {**ride("st1", at=at(2, 8)), "instance": {"line": "L1"}},
            {**ride("st2", at=at(2, 13, 59) + datetime.timedelta(seconds=59)), "instance": {"line": "L4"}},
        ],
    )
    rows = [
        bus("t1", at(2, 8, 1) + datetime.timedelta(seconds=30), "L1"),  # 90 s after st1
        bus("t2", at(2, 9), "L1"),
        bus("t3", at(2, 9, 1) + datetime.timedelta(seconds=59), "L1"),  # 119 s after t2
        bus("t4", at(2, 9, 3) + datetime.timedelta(seconds=58), "L1"),  # 119 s after t3
        bus("t5", at(2, 9), "L2"),  # another line
        bus("t6", at(2, 10), "L1"),  # far from the others
        bus("t7", at(2, 11, 59) + datetime.timedelta(seconds=59), "L3"),  # the buckets turn at noon …
        bus("t8", at(2, 12) + datetime.timedelta(seconds=1), "L3"),  # … 2 s later, the same ride
        bus("t9", at(2, 14) + datetime.timedelta(seconds=30), "L4"),  # 31 s after st2, next bucket
        bus("t10", at(3, 23, 59) + datetime.timedelta(seconds=30), "L5"),  # either side of midnight:
        bus("t11", at(2, 0, 0) + datetime.timedelta(seconds=30), "L5"),  # the midnight lock is taken
    ]
    path = tmp_path / "rides.csv"
    path.write_text(csv_text(rows, header=[*COLUMNS, "instance.line"]))

    by_batch, batch_rejections = through_batch_path(transit, path)
    by_import, import_rejections, _ = through_chunked_import(transit, path, tmp_path)

    assert by_import == by_batch
    assert {(second, first) for second, first, _ in by_import["reports"]} == {
        ("city-transit:t1", "city-transit:st1"),
        ("city-transit:t3", "city-transit:t2"),
        ("city-transit:t4", "city-transit:t2"),
        ("city-transit:t8", "city-transit:t7"),
        ("city-transit:t9", "city-transit:st2"),
        ("city-transit:t11", "city-transit:t10"),
    }


def test_the_import_counts_second_reports(invoicing, post_batch, tmp_path):
    from activities.history_import import HistoryImport

    person, bank, shop = invoicing
    post_batch(shop, [invoice("s-1", "ISSUER", "0001", at(3, 23, 59))])
    path = invoice_file(
        tmp_path, [row("k1", at(2, 10), "ISSUER", "0001"), row("k2", at(2, 11), "ISSUER", "9")]
    )

    with transaction.atomic():
        totals = HistoryImport(
            path=path, partner=bank.partner, file_format="csv", errors_path=tmp_path / "e.csv",
            checkpoint_path=tmp_path / "c.json",
        ).run()  # fmt: skip

    assert (totals["accepted"], totals["duplicate_across_sources"]) == (1, 1)
    assert credited(person) == 10_000


def test_a_time_tolerance_puts_neighbouring_reports_in_neighbouring_buckets():
    from activities.methodology import FactorInEffect, instance_identity

    factor = FactorInEffect(
        id=1, behaviour_id=1, version_number=1, effective_from=datetime.date(2020, 1, 1),
        carbon_mg_per_unit=1, daily_cap_mg=None, monthly_cap_mg=None, event_cap_mg=None, sources=frozenset(),
        review_above_daily_quantity=None, instance_fields=("line",), instance_time_tolerance_seconds=120,
    )  # fmt: skip
    noon = datetime.datetime(2026, 3, 1, 12, tzinfo=LOCAL_TZ)

    before = instance_identity(factor, {"line": " l1"}, noon - datetime.timedelta(seconds=1))
    after = instance_identity(factor, {"line": "L1 "}, noon + datetime.timedelta(seconds=1))

    assert before[0] == after[0]
    assert after[1] - before[1] == 1
    assert instance_identity(factor, {"line": "  "}, noon) is None
    assert instance_identity(factor, {}, noon) is None


def test_merging_two_accounts_credited_for_one_invoice_keeps_one_credit(invoicing, post_batch):
    from accounts.services import account_merge
    from activities.models import MergeCapCorrection

    person, bank, shop = invoicing
    other = UserFactory()
    services.partner_customer_link(partner=shop.partner, customer_reference="C-2", user=other)
    from tests.accounts.factories import authorization_granted

    authorization_granted(other, DataSource.ONLINE_SERVICES)
    when = at(1, 10)
    post_batch(bank, [invoice("b-1", "ISSUER", "0001", when)])
    post_batch(shop, [invoice("s-1", "ISSUER", "0001", when, reference="C-2")])
    assert credited(person) == credited(other) == 5_000

    merged = account_merge(source_user=other, target_user=person)

    assert credited(person) == 5_000
    shop_record = ActivityRecord.objects.get(external_id="shop:s-1")
    bank_record = ActivityRecord.objects.get(external_id="city-bank:b-1")
    assert (shop_record.user_id, shop_record.status, shop_record.credited_carbon_mg) == (
        person.id, RecordStatus.DUPLICATE, 0,
    )  # fmt: skip
    assert (shop_record.duplicate_of_id, shop_record.capped_at_merge_mg) == (bank_record.id, 5_000)
    assert (merged.capped_carbon_mg, merged.settled_kept_carbon_mg) == (5_000, 0)
    assert MergeCapCorrection.objects.get().capped_carbon_mg == 5_000
    assert BehaviourDay.objects.get(user=person).credited_carbon_mg == 5_000


def on_line_l1(record_id: str, *, reference: str, start: datetime.datetime, minutes=None) -> dict:
    return {**ride(record_id, reference=reference, at=start, minutes=minutes), "instance": {"line": "L1"}}


def ride_rejected(transit, post_batch, *, reference: str, start: datetime.datetime) -> ActivityRecord:
    """The card's 08:00 ride on line L1 overlaps its 07:50 ride (credited): held, then rejected."""
    earlier = start - datetime.timedelta(minutes=10)
    post_batch(transit, [ride(f"{reference}-Y", reference=reference, at=earlier, minutes=20)])
    post_batch(transit, [on_line_l1(f"{reference}-H", reference=reference, start=start, minutes=20)])
    held = ActivityRecord.objects.get(external_id=f"city-transit:{reference}-H")
    assert held.status == RecordStatus.HELD
    services.record_reject(record_id=held.id, reviewer=None)
    return held


@pytest.fixture
def guest(transit, authorize):
    """Another account of the rider's (their guest account), linked to transit card T-200."""
    user = UserFactory()
    authorize(user, DataSource.TRANSIT_CARD)
    services.partner_customer_link(partner=transit.partner, customer_reference="T-200", user=user)
    return user


@pytest.mark.parametrize("rejected_side", ["target", "source"])
def test_a_rejected_report_holds_no_instance_in_a_merge(transit, rider, guest, post_batch, rejected_side):
    from accounts.services import account_merge
    from activities.models import MergeCapCorrection

    start = yesterday_at(8)
    rejected_on, credited_on = ("T-100", "T-200") if rejected_side == "target" else ("T-200", "T-100")
    rejected = ride_rejected(transit, post_batch, reference=rejected_on, start=start)
    post_batch(transit, [on_line_l1(f"{credited_on}-R", reference=credited_on, start=start)])
    report = ActivityRecord.objects.get(external_id=f"city-transit:{credited_on}-R")
    assert (report.status, report.credited_carbon_mg) == (RecordStatus.CREDITED, 80_000)
    days = {user: BehaviourDay.objects.get(user=user) for user in (rider, guest)}

    merged = account_merge(source_user=guest, target_user=rider)

    # The credited report stays credited and counts in the day's carbon; the rejected one stays so.
    report.refresh_from_db()
    rejected.refresh_from_db()
    assert (report.user_id, report.status, report.credited_carbon_mg, report.duplicate_of_id) == (
        rider.id, RecordStatus.CREDITED, 80_000, None,
    )  # fmt: skip
    assert report.capped_at_merge_mg == 0
    assert (rejected.user_id, rejected.status, rejected.duplicate_of_id) == (
        rider.id, RecordStatus.REJECTED, None,
    )  # fmt: skip
    assert credited(rider) == 160_000  # the earlier 07:50 ride and the L1 ride
    day = BehaviourDay.objects.get(user=rider)
    assert (day.quantity, day.record_count, day.held_count, day.credited_carbon_mg) == (
        days[rider].quantity + days[guest].quantity,
        days[rider].record_count + days[guest].record_count,
        0,
        160_000,
    )
    assert (merged.capped_carbon_mg, merged.capped_days) == (0, 0)
    assert not MergeCapCorrection.objects.exists()
    # The ride is credited once: the rejected report has nothing to appeal.
    with pytest.raises(ApplicationError) as appealed:
        services.record_appeal(user=rider, record_id=rejected.id, note="it was mine")
    assert appealed.value.error == errors.RECORD_NOT_APPEALABLE


def test_a_merge_joins_the_source_report_to_the_targets_live_report_not_its_rejected_one(
    transit, rider, guest, post_batch
):
    from accounts.services import account_merge

    start = yesterday_at(8)
    rejected = ride_rejected(transit, post_batch, reference="T-100", start=start)
    # The same ride sent again (the card tapped twice): credited, the rejected report holding nothing.
    post_batch(transit, [on_line_l1("T-100-H2", reference="T-100", start=start)])
    live = ActivityRecord.objects.get(external_id="city-transit:T-100-H2")
    post_batch(transit, [on_line_l1("T-200-R", reference="T-200", start=start)])
    report = ActivityRecord.objects.get(external_id="city-transit:T-200-R")
    assert live.status == report.status == RecordStatus.CREDITED

    merged = account_merge(source_user=guest, target_user=rider)

    report.refresh_from_db()
    rejected.refresh_from_db()
    assert (report.status, report.credited_carbon_mg, report.duplicate_of_id, report.capped_at_merge_mg) == (
        RecordStatus.DUPLICATE, 0, live.id, 80_000,
    )  # fmt: skip
    assert (rejected.status, rejected.duplicate_of_id) == (RecordStatus.REJECTED, None)
    assert credited(rider) == 160_000  # the 07:50 ride and the L1 ride, once
    assert BehaviourDay.objects.get(user=rider).credited_carbon_mg == 160_000
    assert (merged.capped_carbon_mg, merged.settled_kept_carbon_mg) == (80_000, 0)
