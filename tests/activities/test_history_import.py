"""Bulk history import: same rules as the API, an error file, resumable from its checkpoint."""

from __future__ import annotations

import csv
import datetime
import json

import pytest
from django.core.management import call_command

from activities.models import ActivityRecord, DailyCarbon
from tests.activities.conftest import ago

pytestmark = pytest.mark.django_db


def write_csv(path, rows):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "customer_reference", "behaviour", "quantity", "occurred_at", "ended_at"])
        writer.writerows(rows)


def history(count: int, start_days_ago: int = 60):
    start = ago(days=start_days_ago)
    return [
        [f"H{n}", "T-100", "bus", "1", (start + datetime.timedelta(hours=6 * n)).isoformat(), ""]
        for n in range(count)
    ]


def test_a_csv_history_is_imported_with_an_error_file(tmp_path, transit, rider):
    path = tmp_path / "rides.csv"
    rows = history(30)
    rows[3][1] = "T-UNKNOWN"
    rows[7][3] = "-2"
    rows.append(["H1", "T-100", "bus", "1", rows[1][4], ""])  # a duplicate line
    write_csv(path, rows)

    call_command("import_activity_history", str(path), partner="city-transit", batch_size=8, no_progress=True)

    assert ActivityRecord.objects.filter(user=rider).count() == 28
    assert (
        sum(DailyCarbon.objects.filter(user=rider).values_list("credited_carbon_mg", flat=True))
        == 28 * 80_000
    )
    with (tmp_path / "rides.csv.errors.csv").open() as handle:
        errors = list(csv.DictReader(handle))
    assert [(e["line"], e["id"], e["code"]) for e in errors] == [
        ("5", "H3", "unknown_customer"),
        ("9", "H7", "invalid_quantity"),
    ]
    assert errors[0]["reason"]
    assert "T-UNKNOWN" in errors[0]["content"]
    checkpoint = json.loads((tmp_path / "rides.csv.checkpoint.json").read_text())
    assert checkpoint["totals"] == {
        "lines": 31,
        "accepted": 28,
        "duplicate": 1,
        "duplicate_across_sources": 0,
        "held_for_review": 0,
        "rejected": 2,
    }


def test_an_interrupted_import_resumes_where_it_stopped(tmp_path, transit, rider):
    path = tmp_path / "rides.jsonl"
    rows = history(20)
    lines = [
        json.dumps(
            {"id": r[0], "customer_reference": r[1], "behaviour": r[2], "quantity": r[3], "occurred_at": r[4]}
        )
        for r in rows
    ]
    path.write_text("\n".join(lines[:10]) + "\n")
    call_command("import_activity_history", str(path), partner="city-transit", batch_size=4, no_progress=True)
    assert ActivityRecord.objects.count() == 10

    # The file grows (the rest of the back file arrives); the next run starts after line 10.
    with path.open("a") as handle:
        handle.write("\n".join(lines[10:]) + "\nnot json\n")
    call_command("import_activity_history", str(path), partner="city-transit", batch_size=4, no_progress=True)

    assert ActivityRecord.objects.count() == 20
    checkpoint = json.loads((tmp_path / "rides.jsonl.checkpoint.json").read_text())
    assert checkpoint["totals"]["accepted"] == 20
    assert checkpoint["totals"]["duplicate"] == 0
    assert checkpoint["totals"]["rejected"] == 1
    assert "invalid_record" in (tmp_path / "rides.jsonl.errors.csv").read_text()


def test_reimporting_from_scratch_credits_nothing_twice(tmp_path, transit, rider):
    path = tmp_path / "rides.csv"
    write_csv(path, history(12))
    call_command("import_activity_history", str(path), partner="city-transit", no_progress=True)

    call_command("import_activity_history", str(path), partner="city-transit", restart=True, no_progress=True)

    assert ActivityRecord.objects.count() == 12
    checkpoint = json.loads((tmp_path / "rides.csv.checkpoint.json").read_text())
    assert checkpoint["totals"]["duplicate"] == 12


def test_consent_applies_to_imports_too(tmp_path, transit, rider):
    from accounts import services as accounts_services

    accounts_services.data_source_revoke(user=rider, source="transit_card")
    path = tmp_path / "rides.csv"
    write_csv(path, history(3))

    call_command("import_activity_history", str(path), partner="city-transit", no_progress=True)

    assert not ActivityRecord.objects.exists()
    assert (tmp_path / "rides.csv.errors.csv").read_text().count("source_not_authorized") == 3
