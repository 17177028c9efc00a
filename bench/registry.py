"""Benchmark scenario 8: allocating a month of the city into one reduction lot.

Every person of the city is given the pooling consent (one INSERT … SELECT, not timed), then a lot of
every behaviour at its methodology version over the city's last 30 closed days (at most) is
allocated by the real `lot_allocate`. Beside it, in the same run, a bare GROUP BY over the same
records (credited records of those behaviours and days, summed per person, day, behaviour and
version) reads what the allocation writes. The target: the allocation's statements within 3× of it.
The Merkle root over the contributions (a pass in Python) is timed on its own and reported apart.
Three rounds, each on emptied registry tables, the GROUP BY just before the allocation; the round
with the median ratio is reported, every round in the notes.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass

from bench.harness import Report, Row

TARGET_RATIO = 3.0
DAYS = 30
# Rounds of (GROUP BY, allocation), each on empty registry tables; the median ratio is reported.
ROUNDS = 3

REFERENCE = """
SELECT COUNT(*), COALESCE(SUM(carbon), 0) FROM (
    SELECT record.user_id, record.local_day, record.behaviour_id, factor.version_id,
           SUM(record.credited_carbon_mg) AS carbon
    FROM activities_activityrecord AS record
    JOIN activities_factor AS factor ON factor.id = record.factor_id
    WHERE record.local_day BETWEEN %s AND %s AND record.status = 'credited' AND record.credited_carbon_mg > 0
    GROUP BY record.user_id, record.local_day, record.behaviour_id, factor.version_id
) AS grouped
"""


def _execute(sql: str, params: list | None = None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall() if cursor.description else []


def _everyone_consents() -> int:
    from django.utils import timezone

    from accounts.models import AgreementKind
    from accounts.services import agreement_publish

    agreement = agreement_publish(
        kind=AgreementKind.POOLING_CONSENT,
        version="bench",
        title="Pooling (benchmark)",
        effective_at=timezone.now() - datetime.timedelta(days=365),
    )
    _execute(
        "TRUNCATE registry_lotproceedsshare, registry_lotevent, registry_lotexport, registry_lotsale, "
        "registry_lotretirement, "
        "registry_lotcontribution, registry_lotallocation, registry_lotbehaviour, registry_reductionlot, "
        "registry_serialcounter"
    )
    _execute(
        """
        INSERT INTO accounts_poolingconsent (user_id, agreement_id, granted_at)
        SELECT id, %s, now() FROM accounts_user AS person
        WHERE NOT EXISTS (
            SELECT 1 FROM accounts_poolingconsent AS consent
            WHERE consent.user_id = person.id AND consent.revoked_at IS NULL
        )
        """,
        [agreement.pk],
    )
    # A city's consents, gathered over months, have planner statistics (autovacuum); these were
    # written a moment ago. Without them the planner takes the consenting people for a few hundred
    # and merge-joins the month's records with the unsettled days (4× the GROUP BY on the medium city).
    _execute("ANALYZE accounts_poolingconsent")
    return int(_execute("SELECT COUNT(*) FROM accounts_poolingconsent WHERE revoked_at IS NULL")[0][0])


@dataclass(frozen=True)
class Round:
    reference_seconds: float
    allocation_seconds: float
    merkle_seconds: float
    total_seconds: float
    lot: object
    groups: int
    carbon: int
    allocated: int

    @property
    def ratio(self) -> float:
        return self.allocation_seconds / self.reference_seconds if self.reference_seconds else float("inf")


def _round(*, pairs: list, period_start: datetime.date, period_end: datetime.date) -> Round:
    """One round on empty registry tables: the GROUP BY, then a fresh lot allocated, then its root."""
    from registry.merkle import merkle_root
    from registry.selectors import lot_commitment
    from registry.services import lot_allocate, lot_create

    _everyone_consents()
    started = time.perf_counter()
    [(groups, carbon)] = _execute(REFERENCE, [period_start, period_end])
    reference_seconds = time.perf_counter() - started

    lot = lot_create(
        title=f"City {period_start:%Y-%m}", period_start=period_start, period_end=period_end, behaviours=pairs
    )
    started = time.perf_counter()
    lot = lot_allocate(lot=lot, actor="bench")
    total_seconds = time.perf_counter() - started

    started = time.perf_counter()
    _rows, hashes = lot_commitment(lot=lot)
    assert merkle_root(hashes) == lot.merkle_root
    merkle_seconds = time.perf_counter() - started
    allocation_seconds = max(total_seconds - merkle_seconds, 0.0)
    allocated = int(_execute("SELECT COUNT(*) FROM registry_lotallocation WHERE lot_id = %s", [lot.pk])[0][0])
    return Round(
        reference_seconds=reference_seconds,
        allocation_seconds=allocation_seconds,
        merkle_seconds=merkle_seconds,
        total_seconds=total_seconds,
        lot=lot,
        groups=groups,
        carbon=int(carbon),
        allocated=allocated,
    )


def allocation_measure(report: Report, *, last_day: datetime.date, accounts: int, scenario: str) -> None:
    from django.utils import timezone

    from activities.models import Behaviour, MethodologyVersion

    consenting = _everyone_consents()
    period_end = min(last_day, timezone.localdate() - datetime.timedelta(days=1))
    period_start = period_end - datetime.timedelta(days=DAYS - 1)
    version = (
        MethodologyVersion.objects.filter(effective_from__lte=period_start)
        .order_by("-effective_from")
        .first()
    )
    pairs = [
        (behaviour, version)
        for behaviour in Behaviour.objects.filter(factors__version=version).distinct().order_by("pk")
    ]
    _execute("ANALYZE activities_activityrecord")

    rounds = [_round(pairs=pairs, period_start=period_start, period_end=period_end) for _ in range(ROUNDS)]
    # The round of the median ratio: on a shared machine one round's two timings can fall in
    # different minutes of its load.
    median = sorted(rounds, key=lambda one: one.ratio)[len(rounds) // 2]
    ratio, lot = median.ratio, median.lot
    each = ", ".join(f"{one.allocation_seconds:.2f} s / {one.reference_seconds:.2f} s" for one in rounds)
    report.add(
        Row(scenario, "allocation of a month into one lot", median.allocation_seconds, "s",
            "GROUP BY of the same records", median.reference_seconds,
            target=f"≤ {TARGET_RATIO:g}× the GROUP BY", met=ratio <= TARGET_RATIO,
            notes=f"{period_start}…{period_end}: {median.allocated:,} (person, day, behaviour) rows of "
                  f"{median.groups:,} grouped ({lot.volume_mg / 1e9:,.3f} t of {median.carbon / 1e9:,.3f} t "
                  f"credited: only fully settled days enter), {lot.contributor_count:,} contributors "
                  f"of {consenting:,} consenting, {accounts:,} accounts; the median of {ROUNDS} rounds "
                  f"by ratio (allocation / GROUP BY: {each})")
    )  # fmt: skip
    report.add(
        Row(scenario, "Merkle root over the contributions", median.merkle_seconds, "s",
            notes=f"{lot.contributor_count:,} leaves, SHA-256 in Python; part of the allocation's total "
                  f"{median.total_seconds:.2f} s")
    )  # fmt: skip
