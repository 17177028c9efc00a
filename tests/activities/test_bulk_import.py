"""The set-based bulk import gives the same results as the partner batch path, rule for rule.

The same file goes once through the partner batch path (one batch) and once through the chunked
import (one chunk), each rolled back; records, receipts, counters, DailyCarbon, rejection counts
and codes must be identical. Three files: plainly well-formed (read by SQL), one with a few odd lines
(read by Python), and one with a short line or an impossible date (the whole chunk read by Python).
"""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import DataSource
from activities import services
from activities.history_import import COLUMNS, HistoryImport
from activities.ingest import REJECTED
from activities.models import (
    ActivityRecord,
    BehaviourDay,
    BehaviourMonth,
    DailyCarbon,
    Factor,
    MethodologyVersion,
    RejectionTally,
)
from core.local_time import LOCAL_TZ
from tests.accounts.factories import UserFactory, authorization_granted

pytestmark = pytest.mark.django_db


def at(days_ago: int, hour: int, minute: int = 0) -> datetime.datetime:
    day = timezone.now().astimezone(LOCAL_TZ).date() - datetime.timedelta(days=days_ago)
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=LOCAL_TZ)


def line(record_id, reference, behaviour, quantity, started, minutes=None, *, ended=None) -> list[str]:
    if minutes is not None:
        ended = started + datetime.timedelta(minutes=minutes)
    return [
        str(record_id),
        reference,
        behaviour,
        str(quantity),
        started.isoformat() if isinstance(started, datetime.datetime) else started,
        ended.isoformat() if isinstance(ended, datetime.datetime) else (ended or ""),
    ]


@pytest.fixture
def people(transit, authorize):
    """T-100 rides and consented; T-200 never consented; T-300 closed the account; T-400 consented
    three days ago (at midnight); a stored ride."""
    rider, stranger, gone, newcomer = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    for user, card in ((rider, "T-100"), (stranger, "T-200"), (gone, "T-300"), (newcomer, "T-400")):
        services.partner_customer_link(partner=transit.partner, customer_reference=card, user=user)
    authorize(rider, DataSource.TRANSIT_CARD)
    authorize(gone, DataSource.TRANSIT_CARD)
    authorization_granted(newcomer, DataSource.TRANSIT_CARD, granted_at=at(3, 0))
    gone.closed_at = timezone.now()
    gone.save(update_fields=["closed_at"])
    services.partner_records_ingest(
        partner=transit.partner,
        records=[
            {
                "id": "stored",
                "customer_reference": "T-100",
                "behaviour": "metro",
                "quantity": "1",
                "occurred_at": at(3, 9).isoformat(),
                "ended_at": at(3, 9, 40).isoformat(),
            }
        ],  # fmt: skip
    )
    # Bus rides from 10 days ago are credited with a factor capped per ride (a later version).
    version = services.methodology_version_copy(
        source=MethodologyVersion.objects.get(number=1), effective_from=at(10, 0).date()
    )
    Factor.objects.filter(version=version, behaviour__code="bus").update(event_cap_mg=50_000)
    return rider


def plain_lines() -> list[list[str]]:
    rows = [
        line("a1", "T-100", "bus", 1, at(2, 7), 20),
        line("a2", "T-100", "metro", 1, at(2, 6, 5), 30),  # overlaps the a1 kept
        line("a3", "T-100", "bus", 1, at(3, 9, 20), 5),  # overlaps the stored ride
        line("a4", "T-100", "bus", 1, at(2, 7), ended=at(2, 7)),  # zero length, same start as a1
        line("a5", "T-100", "metro", 1, at(2, 12), ended=at(2, 12)),
        line("a6", "T-100", "bus", 1, at(12, 8), 10),  # factor v1, before v2
        line("a1", "T-100", "bus", 1, at(2, 6), 10),  # same id, earlier: it is the one kept
        line("stored", "T-100", "metro", 1, at(5, 9), 10),  # already stored
        line("u1", "T-999", "bus", 1, at(2, 9), 10),
        line("u2", "T-200", "bus", 1, at(2, 9), 10),
        line("u3", "T-300", "bus", 1, at(2, 9), 10),
        line("b1", "T-100", "teleport", 1, at(2, 9), 10),
        line("b2", "T-100", "walk", 100, at(2, 9)),
        line("q1", "T-100", "bus", 0, at(2, 9), 10),
        line("q2", "T-100", "bus", "2000000000", at(2, 9), 10),
        line("f1", "T-100", "bus", 1, at(-2, 9), 10),
        line("e1", "T-100", "bus", 1, at(2, 9), ended=at(2, 8)),
        line("n1", "T-100", "bus", 1, datetime.datetime(2019, 5, 1, 8, tzinfo=LOCAL_TZ), 10),
        line("o1", "T-100", "bus", 1, at(91, 8), 10),  # older than the history window
        line("o2", "T-100", "bus", 1, at(89, 8), 10),
        line("g1", "T-400", "bus", 1, at(4, 23, 59), 10),  # before T-400's grant
        line("g2", "T-400", "bus", 1, at(3, 0), 10),  # from the moment of the grant
        line("g3", "T-400", "bus", 1, at(1, 9), 10),
        line("z1", "T-100", "bus", 1, at(4, 9).astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")),
        # Twenty past local midnight, written in UTC: the day before in UTC, its local day in ours.
        line("d1", "T-100", "bus", 1, at(8, 0, 20).astimezone(datetime.UTC), 10),
    ]
    # 24 short bus rides in one day (50 g each under v2): the cap per day bites after 16, review after 20.
    rows += [
        line(f"r{n}", "T-100", "bus", 1, at(6, 6) + datetime.timedelta(minutes=30 * n), 10) for n in range(24)
    ]
    # Many metro rides the same day, two of them half a ride: the daily cap of 400 g bites mid-record.
    rows += [
        line(
            f"m{n}",
            "T-100",
            "metro",
            "0.5" if n < 2 else 1,
            at(7, 6) + datetime.timedelta(minutes=30 * n),
            10,
        )
        for n in range(7)
    ]
    return rows


def csv_text(rows: list[list[str]], extra_lines: list[str] = (), header: list[str] = COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue() + "".join(f"{text}\n" for text in extra_lines)


def state() -> dict:
    return {
        "records": sorted(
            ActivityRecord.objects.values_list(
                "external_id",
                "user_id",
                "factor_id",
                "quantity",
                "local_day",
                "gross_carbon_mg",
                "credited_carbon_mg",
                "capped_by",
                "status",
                "hold_reason",
                "occurred_at",
                "ended_at",
            )
        ),  # fmt: skip
        "days": sorted(
            BehaviourDay.objects.values_list(
                "user_id",
                "behaviour_id",
                "day",
                "quantity",
                "record_count",
                "held_count",
                "credited_carbon_mg",
            )
        ),
        "months": sorted(
            BehaviourMonth.objects.values_list("user_id", "behaviour_id", "month", "credited_carbon_mg")
        ),
        "daily": sorted(DailyCarbon.objects.values_list("user_id", "day", "credited_carbon_mg")),
        "rejections": sorted(RejectionTally.objects.values_list("code", "count")),
        # Second reports of an instance and the record holding its credit.
        "reports": sorted(
            ActivityRecord.objects.filter(duplicate_of__isnull=False).values_list(
                "external_id", "duplicate_of__external_id", "instance_bucket"
            )
        ),
        # Reports of instances an imported statement counts, and that instance.
        "imported": sorted(
            ActivityRecord.objects.filter(imported_duplicate_of__isnull=False).values_list(
                "external_id", "imported_duplicate_of_id"
            )
        ),
        "instances": sorted(
            (external_id, key or "", bucket)
            for external_id, key, bucket in ActivityRecord.objects.values_list(
                "external_id", "instance_key", "instance_bucket"
            )
        ),
    }


def through_batch_path(transit, path) -> tuple[dict, list]:
    importer = HistoryImport(
        path=path, partner=transit.partner, file_format="csv", errors_path=path, checkpoint_path=path
    )
    with path.open("rb") as source:
        header = importer._read_header(source)
        records = [importer._parse(raw, header) for raw in source if raw.strip()]
    with transaction.atomic():
        outcomes = services.partner_records_ingest(partner=transit.partner, records=records, is_history=True)
        seen = state()
        transaction.set_rollback(True)
    return seen, [(o.external_id, o.code) for o in outcomes if o.status == REJECTED]


def through_chunked_import(transit, path, tmp_path) -> tuple[dict, list, int]:
    errors_path = tmp_path / "errors.csv"
    importer = HistoryImport(
        path=path,
        partner=transit.partner,
        file_format="csv",
        errors_path=errors_path,
        checkpoint_path=tmp_path / "checkpoint.json",
        restart=True,
    )
    with transaction.atomic():
        importer.run()
        seen = state()
        transaction.set_rollback(True)
    with errors_path.open() as handle:
        rejections = [(row["id"], row["code"]) for row in csv.DictReader(handle)]
    return seen, rejections, importer.lines_read_by_python


@pytest.mark.parametrize(
    ("extra_lines", "read_by_python"),
    [
        pytest.param([], 0, id="plain"),
        pytest.param(["x1,T-100,bus, 1 ,2026-01-05T08:00:00+08:00,", "x3,,bus,1,2026-01-05T09:00:00+08:00,",
                      "x4,T-100,bus,1,2026-01-05 10:00:00,", "x5,T-100,bus,1e0,2026-01-05T11:00:00+08:00,"],
                     4, id="odd-fields"),
        pytest.param(["x2,T-100"], 57, id="short-line"),
        pytest.param(["y1,T-100,bus,1,2026-02-30T08:00:00+08:00,"], 57, id="impossible-date"),
    ],
)  # fmt: skip
def test_the_chunked_import_and_the_batch_path_agree(transit, people, tmp_path, extra_lines, read_by_python):
    path = tmp_path / "history.csv"
    path.write_text(csv_text(plain_lines(), extra_lines))

    by_batch, batch_rejections = through_batch_path(transit, path)
    by_import, import_rejections, lines_read_by_python = through_chunked_import(transit, path, tmp_path)

    assert lines_read_by_python == read_by_python
    assert by_import == by_batch
    assert import_rejections == batch_rejections
    statuses = {(r[0], r[8], r[7], r[9]) for r in by_import["records"]}
    assert ("city-transit:r15", "credited", "event", "") in statuses  # 16 × 50 g = the 800 g of the day
    assert ("city-transit:r16", "credited", "day", "") in statuses
    assert ("city-transit:r20", "held", "", "too_many_in_a_day") in statuses
    assert ("city-transit:a2", "held", "", "overlapping_trip") in statuses
    assert ("city-transit:a1", "credited", "event", "") in statuses
    assert [r[4] for r in by_import["records"] if r[0] == "city-transit:d1"] == [at(8, 0).date()]
    assert {code for _, code in import_rejections} >= {
        "unknown_customer", "source_not_authorized", "account_closed", "unknown_behaviour",
        "behaviour_not_allowed", "invalid_quantity", "occurred_in_future", "invalid_record",
        "occurred_before_history_window", "occurred_before_authorization",
    }  # fmt: skip
    assert ("n1", "occurred_before_history_window") in import_rejections
    assert ("o1", "occurred_before_history_window") in import_rejections
    assert ("g1", "occurred_before_authorization") in import_rejections
    assert {r[0] for r in by_import["records"]} >= {"city-transit:o2", "city-transit:g2", "city-transit:g3"}


def test_a_chunked_import_resumes_after_its_last_chunk(transit, people, tmp_path):
    path = tmp_path / "history.csv"
    rows = [
        line(f"h{n}", "T-100", "bus", 1, at(40, 0) + datetime.timedelta(hours=5 * n), 10) for n in range(30)
    ]
    path.write_text(csv_text(rows[:20]))
    arguments = {
        "partner": transit.partner, "file_format": "csv", "errors_path": tmp_path / "errors.csv",
        "checkpoint_path": tmp_path / "checkpoint.json", "chunk_rows": 8,
    }  # fmt: skip
    first = HistoryImport(path=path, **arguments).run()
    path.write_text(csv_text(rows))

    second = HistoryImport(path=path, **arguments).run()

    assert (first["accepted"], second["accepted"], second["duplicate"]) == (20, 30, 0)
    assert ActivityRecord.objects.filter(external_id__startswith="city-transit:h").count() == 30


def test_payments_below_the_minimum_are_rejected_alike(people, tmp_path, authorize):
    bank = services.partner_create(
        code="city-bank",
        name="City Bank",
        source=DataSource.BANK_PAYMENTS,
        behaviour_codes=["utility_payment"],
    )
    authorize(people, DataSource.BANK_PAYMENTS)
    services.partner_customer_link(partner=bank.partner, customer_reference="B-1", user=people)
    path = tmp_path / "payments.csv"
    rows = [
        ("p1", "1.00"), ("p2", "0.99"), ("p3", ""), ("p4", "250.5"),
        ("p5", "0"), ("p6", "1.001"), ("p7", "-3"),
    ]  # fmt: skip
    lines = [
        f"{n},B-1,utility_payment,1,{at(2, 9 + i).isoformat()},{amount}" for i, (n, amount) in enumerate(rows)
    ]
    path.write_text("id,customer_reference,behaviour,quantity,occurred_at,amount\n" + "\n".join(lines) + "\n")

    by_batch, batch_rejections = through_batch_path(bank, path)
    by_import, import_rejections, lines_read_by_python = through_chunked_import(bank, path, tmp_path)

    assert by_import == by_batch
    assert (
        import_rejections
        == batch_rejections
        == [
            ("p2", "payment_below_minimum"),
            ("p3", "invalid_record"),
            ("p5", "payment_below_minimum"),
            ("p6", "invalid_record"),
            ("p7", "invalid_record"),
        ]
    )
    assert lines_read_by_python == 2  # the amounts that are no amount of yuan and fen
    assert [r[0] for r in by_import["records"] if r[0].startswith("city-bank:")] == [
        "city-bank:p1",
        "city-bank:p4",
    ]
