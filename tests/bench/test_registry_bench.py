"""Scenario 8 of `make bench` on a tiny city: a month of it allocated into one lot beside its GROUP BY
(not a benchmark: the figures exist, the lot is sound)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from bench.city import city_generate
from bench.harness import Report
from bench.registry import allocation_measure
from operations.invariants import invariant_violations
from registry.models import ReductionLot


@pytest.mark.django_db(transaction=True)
def test_a_month_of_the_city_is_allocated_into_one_lot_beside_its_group_by():
    last_day = timezone.localdate() - datetime.timedelta(days=1)
    city_generate(accounts=300, days=4, seed=1, last_day=last_day)
    report = Report(size="smoke")

    allocation_measure(report, last_day=last_day, accounts=300, scenario="8 registry")

    rows = {row.figure: row for row in report.rows}
    allocation = rows["allocation of a month into one lot"]
    assert allocation.value is not None
    assert allocation.reference_value > 0
    lot = ReductionLot.objects.get()
    assert lot.volume_mg > 0
    assert lot.contributor_count > 0
    assert rows["Merkle root over the contributions"].value >= 0
    assert invariant_violations() == []
