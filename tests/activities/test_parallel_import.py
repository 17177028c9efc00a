"""The chunked import in parts side by side (one connection per part) gives what one connection gives.

A chunk is split by person into parts, each imported on its own thread, connection and
transaction; a person's lines stay in one part in file order, so records, receipts, caps, holds,
counters, DailyCarbon and rejections are those of the partner batch path (which the one-part import
matches rule for rule, see test_bulk_import). The parts commit, so these tests commit too.
"""

from __future__ import annotations

import csv
import datetime
import json

import pytest
from django.db import connection

from accounts.models import DataSource
from activities import services
from activities.history_import import HistoryImport
from activities.models import ActivityRecord, PartnerCustomerLink
from tests.accounts.factories import UserFactory
from tests.activities.test_bulk_import import (
    at,
    csv_text,
    line,
    people,
    plain_lines,
    state,
    through_batch_path,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

__all__ = ["people"]  # the fixture, shared with test_bulk_import


@pytest.fixture
def riders(transit, people, authorize) -> list[str]:
    """Five more consented riders beside T-100, so that every part has people of its own."""
    cards = [f"T-5{n:02d}" for n in range(5)]
    for card in cards:
        user = UserFactory()
        services.partner_customer_link(partner=transit.partner, customer_reference=card, user=user)
        authorize(user, DataSource.TRANSIT_CARD)
    return cards


def lines_of_riders(cards: list[str]) -> list[list[str]]:
    rows = []
    for index, card in enumerate(cards):
        # 20 short bus rides in a day each: the daily cap bites; two overlapping metro rides.
        rows += [
            line(f"{card}-r{n}", card, "bus", 1, at(5 + index, 6) + datetime.timedelta(minutes=30 * n), 10)
            for n in range(20)
        ]
        rows.append(line(f"{card}-m1", card, "metro", 1, at(3, 18), 30))
        rows.append(line(f"{card}-m2", card, "metro", 1, at(3, 18, 10), 30))
        rows.append(line(f"{card}-dup", card, "metro", 1, at(4, 18), 30))
        rows.append(line(f"{card}-dup", card, "metro", 1, at(4, 19), 30))
    return rows


def through_parts(
    transit, path, tmp_path, *, workers: int, chunk_rows: int = 50_000
) -> tuple[dict, list, dict]:
    assert not connection.in_atomic_block  # the parts' connections see only committed rows
    importer = HistoryImport(
        path=path,
        partner=transit.partner,
        file_format="csv",
        errors_path=tmp_path / "errors.csv",
        checkpoint_path=tmp_path / "checkpoint.json",
        chunk_rows=chunk_rows,
        workers=workers,
        restart=True,
    )
    totals = importer.run()
    assert len(importer.chunk_parts.importers) == workers  # every part had lines and ran
    with (tmp_path / "errors.csv").open() as handle:
        rejections = [(row["id"], row["code"]) for row in csv.DictReader(handle)]
    return state(), rejections, totals


def test_parts_side_by_side_give_what_the_batch_path_gives(transit, riders, tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(
        csv_text(plain_lines() + lines_of_riders(riders), ["x1,T-100,bus, 1 ,2026-01-05T08:00:00+08:00,"])
    )

    by_batch, batch_rejections = through_batch_path(transit, path)
    by_parts, parts_rejections, totals = through_parts(transit, path, tmp_path, workers=2)

    assert by_parts == by_batch
    assert parts_rejections == batch_rejections  # in file order, across the parts
    statuses = {(r[0], r[8], r[7], r[9]) for r in by_parts["records"]}
    assert ("city-transit:T-500-r16", "credited", "day", "") in statuses
    assert ("city-transit:T-504-m2", "held", "", "overlapping_trip") in statuses
    assert totals["lines"] == len(plain_lines()) + len(lines_of_riders(riders)) + 1
    assert totals["duplicate"] == len(riders) + 2  # a1 again, stored, and each rider's -dup again


def test_parts_over_many_chunks_credit_each_line_once_even_when_sent_again(transit, riders, tmp_path):
    path = tmp_path / "history.csv"
    rows = lines_of_riders(riders)
    path.write_text(csv_text(rows))

    _, _, totals = through_parts(transit, path, tmp_path, workers=3, chunk_rows=7)
    stored = ActivityRecord.objects.filter(external_id__startswith="city-transit:T-5").count()
    distinct_ids = len({row[0] for row in rows})
    assert stored == distinct_ids
    assert totals["accepted"] + totals["held_for_review"] == distinct_ids
    assert totals["lines"] == len(rows)
    checkpoint = json.loads((tmp_path / "checkpoint.json").read_text())
    assert checkpoint["line"] == len(rows) + 1
    assert checkpoint["totals"] == {
        key: value for key, value in totals.items() if key in checkpoint["totals"]
    }

    # The same file again, from the start: every line a duplicate, nothing credited twice.
    before = state()
    _, _, again = through_parts(transit, path, tmp_path, workers=3, chunk_rows=7)
    assert again["duplicate"] == len(rows)
    assert again["accepted"] == 0
    assert {key: value for key, value in state().items() if key != "rejections"} == {
        key: value for key, value in before.items() if key != "rejections"
    }


def test_a_person_s_two_cards_stay_in_one_part_so_the_cap_takes_their_rides_in_file_order(
    transit, riders, tmp_path
):
    # Given a rider with a second card (whose reference alone hashes to the other part of two), and a
    # day on which the two cards' rides together pass the daily cap, the second card's coming first
    rider = PartnerCustomerLink.objects.get(partner=transit.partner, customer_reference=riders[0]).user
    services.partner_customer_link(partner=transit.partner, customer_reference=f"{riders[0]}-B", user=rider)
    second_card = [
        line(f"B-r{n}", f"{riders[0]}-B", "bus", 1, at(5, 6) + datetime.timedelta(minutes=15 * n), 10)
        for n in range(12)
    ]
    path = tmp_path / "history.csv"
    path.write_text(csv_text(second_card + lines_of_riders(riders)))

    # When the file is imported in two parts side by side, and through the batch path
    by_batch, batch_rejections = through_batch_path(transit, path)
    by_parts, parts_rejections, _totals = through_parts(transit, path, tmp_path, workers=2)

    # Then both give the same: the person's lines were taken in file order, on one connection
    assert by_parts == by_batch
    assert parts_rejections == batch_rejections
