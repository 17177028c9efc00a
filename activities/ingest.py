"""The one path every record takes: phone step syncs, partner batches and bulk imports.

A batch is checked and credited with a handful of set-based statements, whatever its size:

1. who is it (partner customer references → people), are they open, have they authorized the source
   and, for a partner's record, did the activity happen since they did (one query each);
2. lock the per person/behaviour/day counters (and the monthly ones where a monthly cap applies)
   that exist, in key order, reading what is already reported and credited;
3. which external ids are already stored (one query), which trips overlap stored trips (one query),
   which phones are shared by many accounts (two statements, step syncs only);
4. plausibility and caps are worked out in memory, record by record in time order, against the
   locked counters;
5. one statement stores the records (`INSERT … ON CONFLICT DO NOTHING RETURNING`) and raises
   `DailyCarbon` from the rows really inserted; one upsert each adds the batch's totals to the daily
   and monthly counters, creating the rows that did not exist with their final values;
6. one upsert adds the rejections to the rejection counts.

Two batches (or a batch and a phone) for the same person serialize on the counter rows they lock.
When both would create the same missing counter row, the second one's upsert finds it already
there: its batch is rolled back to a savepoint and run again, now against the locked row. So no
cap is ever exceeded, and a counter never counts a record that a concurrent request stored first.
Nothing of a rejected record is stored.

The rules a record is refused or held by are the table `capture_rules.RULES`, checked here in
Python (`record_precheck`, `record_authorization_check`, `_credit`) and by the bulk import in SQL;
the statements are in `sql_statements.capture`.
"""

from __future__ import annotations

import datetime
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

import psycopg
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from activities import errors
from activities.cache_renewals import carbon_changed
from activities.capture_rules import (
    CLOCK_SKEW,
    ENDED_BEFORE_STARTED,
    HOLD_RULES,
    MAX_QUANTITY,
    PERSON_RULES,
    RECORD_RULES,
    HoldFacts,
    PersonFacts,
    RecordFacts,
    first_broken,
)
from activities.instances import instance_midnights_lock
from activities.methodology import FactorInEffect, Methodology, instance_identity, methodology_load
from activities.models import CapKind, RecordStatus, Unit
from activities.sql_statements import capture as statements
from activities.sql_statements.capture import CounterRaceError
from activities.statements.instances import imported_instance_twins
from core.local_time import local_day_of

__all__ = ["CLOCK_SKEW", "ENDED_BEFORE_STARTED", "MAX_QUANTITY", "CounterRaceError"]

MAX_ATTEMPTS = 5

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
# Another report of the same real-world instance (another source, or another id) holds the credit.
DUPLICATE_ACROSS_SOURCES = "duplicate_across_sources"
REJECTED = "rejected"
HELD = "held_for_review"


def shared_device_max_accounts() -> int:
    return int(getattr(settings, "ACTIVITIES_SHARED_DEVICE_MAX_ACCOUNTS", 3))


@dataclass(slots=True)
class Incoming:
    """One record as reported, before any rule has looked at it."""

    external_id: str
    behaviour_code: str
    quantity: Decimal
    occurred_at: datetime.datetime
    user_id: int | None = None
    customer_reference: str | None = None
    ended_at: datetime.datetime | None = None
    device_id: str = ""
    # Yuan paid, for payment behaviours whose factor counts payments from a minimum amount.
    amount: Decimal | None = None
    # The fields that identify the real-world instance across sources (`Factor.instance_fields`).
    instance: dict[str, str] | None = None
    # Set when the record could not even be read (bad field); it is then rejected with this code.
    invalid_code: str = ""
    invalid_detail: str = ""


@dataclass(slots=True)
class Outcome:
    """What happened to one incoming record, in the order the batch came in."""

    external_id: str
    status: str
    code: str = ""
    detail: str = ""
    credited_carbon_mg: int = 0
    gross_carbon_mg: int = 0
    capped_by: str = ""
    hold_reason: str = ""
    # Whose day it credited (stored records only): for callers that act on the days, not for replies.
    user_id: int = 0
    local_day: datetime.date | None = None
    # A second report of an instance: the record holding its credit, and that record's receipt.
    credited_record_id: int = 0
    credited_receipt: str = ""
    # A report of an instance another platform's imported statement counts: that instance.
    imported_instance_id: int = 0

    def as_dict(self) -> dict:
        result: dict = {"id": self.external_id, "status": self.status}
        if self.status == REJECTED:
            result["code"] = self.code
            result["message"] = str(errors.RECORD_CODES[self.code].message)
            if self.detail:
                result["detail"] = self.detail
        elif self.status == ACCEPTED:
            result["credited_carbon_mg"] = self.credited_carbon_mg
            if self.capped_by:
                result["capped_by"] = self.capped_by
        elif self.status == HELD:
            result["hold_reason"] = self.hold_reason
        elif self.status == DUPLICATE_ACROSS_SOURCES:
            result["code"] = self.status
            result["message"] = str(errors.DUPLICATE_ACROSS_SOURCES.message)
            result["credited_receipt"] = self.credited_receipt
        return result


@dataclass(slots=True)
class Candidate:
    position: int
    incoming: Incoming
    behaviour_id: int
    factor: FactorInEffect
    local_day: datetime.date
    gross_carbon_mg: int
    user_id: int = 0
    is_trip: bool = False
    unit: str = ""
    # The instance it reports (`methodology.instance_identity`): key and time bucket.
    instance_key: str | None = None
    instance_bucket: int = 0


def carbon_mg(quantity: Decimal, factor: FactorInEffect) -> int:
    return int((quantity * factor.carbon_mg_per_unit).to_integral_value(rounding=ROUND_FLOOR))


def record_precheck(
    position: int,
    record: Incoming,
    *,
    source: str,
    methodology: Methodology,
    allowed_behaviour_ids: frozenset[int] | None,
    now: datetime.datetime,
    oldest: datetime.datetime | None,
    oldest_code: str = errors.OCCURRED_TOO_LONG_AGO.code,
) -> Candidate | tuple[str, str]:
    """The rules one record meets on its own (`capture_rules.RECORD_RULES`), in order; the first it
    breaks is its rejection (code, detail). The bulk import applies the same table in SQL.
    """
    if record.invalid_code:
        return record.invalid_code, record.invalid_detail
    behaviour = methodology.behaviours_by_code.get(record.behaviour_code)
    try:
        local_day = local_day_of(record.occurred_at)
    except OverflowError:  # a moment at the very edge of the calendar: no factor was in effect then
        local_day = None
    factor = (
        methodology.factor_for(behaviour.id, local_day)
        if behaviour is not None and local_day is not None
        else None
    )
    broken = first_broken(
        RECORD_RULES,
        RecordFacts(
            quantity=record.quantity,
            occurred_at=record.occurred_at,
            ended_at=record.ended_at,
            amount=record.amount,
            behaviour_id=behaviour.id if behaviour is not None else None,
            allowed=(
                allowed_behaviour_ids is None or behaviour is None or behaviour.id in allowed_behaviour_ids
            ),
            factor_id=factor.id if factor is not None else None,
            source_allowed=factor is not None and source in factor.sources,
            minimum_payment_fen=factor.minimum_payment_fen if factor is not None else None,
            latest=now + CLOCK_SKEW,
            oldest=oldest,
        ),
    )
    if broken is not None:
        return broken.code_for(oldest_code), broken.detail
    quantity = record.quantity
    identity = instance_identity(factor, record.instance, record.occurred_at)
    return Candidate(
        position=position,
        incoming=record,
        behaviour_id=behaviour.id,
        factor=factor,
        local_day=local_day,
        gross_carbon_mg=carbon_mg(quantity, factor),
        user_id=record.user_id or 0,
        is_trip=behaviour.is_trip,
        unit=behaviour.unit,
        instance_key=identity[0] if identity else None,
        instance_bucket=identity[1] if identity else 0,
    )


def records_ingest(
    *,
    source: str,
    records: list[Incoming],
    partner_id: int | None = None,
    partner_code: str = "",
    allowed_behaviour_ids: frozenset[int] | None = None,
    window_days: int | None = None,
    window_code: str = errors.OCCURRED_TOO_LONG_AGO.code,
    methodology: Methodology | None = None,
    now: datetime.datetime | None = None,
) -> list[Outcome]:
    """Checks and credits a batch of records of one source; returns one outcome per record, in order.

    `external_id`s must already be namespaced (a partner's ids prefixed with its code). Records name
    their person either by `user_id` (phone) or by `customer_reference` (partners, with `partner_id`).
    Records older than `window_days` are rejected with `window_code`.
    Runs in one transaction; call it inside yours to make it part of a larger change.
    """
    now = now or timezone.now()
    methodology = methodology or methodology_load()
    outcomes: list[Outcome | None] = [None] * len(records)
    candidates: list[Candidate] = []

    def reject(position: int, code: str, detail: str = "") -> None:
        outcomes[position] = Outcome(records[position].external_id, REJECTED, code=code, detail=detail)

    oldest = now - datetime.timedelta(days=window_days) if window_days is not None else None
    for position, record in enumerate(records):
        checked = record_precheck(
            position, record, source=source, methodology=methodology,
            allowed_behaviour_ids=allowed_behaviour_ids, now=now, oldest=oldest, oldest_code=window_code,
        )  # fmt: skip
        if isinstance(checked, Candidate):
            candidates.append(checked)
        else:
            reject(position, *checked)

    with transaction.atomic(), connection.cursor() as cursor:
        if candidates and partner_id is not None:
            candidates = _resolve_customers(cursor, partner_id, candidates, reject)
        if candidates:
            candidates = _check_people(
                cursor, source, candidates, reject, from_partner=partner_id is not None
            )
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if not candidates:
                break
            try:
                with transaction.atomic():
                    # A rerun creates its missing counter rows before locking them: it cannot race again.
                    _credit(
                        cursor, source, partner_id, candidates, outcomes, methodology, now,
                        create_missing=attempt > 1,
                    )  # fmt: skip
                break
            except (CounterRaceError, OperationalError) as error:
                # Another batch created one of our counter rows first (now it exists and we can lock it),
                # or PostgreSQL broke a lock cycle between two batches by failing ours: run it again.
                retriable = isinstance(error, CounterRaceError) or isinstance(
                    error.__cause__, psycopg.errors.DeadlockDetected
                )
                if not retriable or attempt == MAX_ATTEMPTS:
                    raise
        carbon_changed(user_ids=[candidate.user_id for candidate in candidates])
        rejections_count(
            source=source,
            partner_code=partner_code,
            codes=Counter(o.code for o in outcomes if o is not None and o.status == REJECTED),
            now=now,
        )
    return [outcome for outcome in outcomes if outcome is not None]


def _resolve_customers(cursor, partner_id: int, candidates: list[Candidate], reject) -> list[Candidate]:
    references = sorted({c.incoming.customer_reference for c in candidates if c.incoming.customer_reference})
    users = statements.customer_users(cursor, partner_id, references)
    kept = []
    for candidate in candidates:
        user_id = users.get(candidate.incoming.customer_reference)
        if user_id is None:
            reject(candidate.position, record_authorization_check(
                is_known=False, is_open=False, is_authorized=False, granted_at=None,
                occurred_at=candidate.incoming.occurred_at, from_partner=True,
            ))  # fmt: skip
        else:
            candidate.user_id = user_id
            kept.append(candidate)
    return kept


def _check_people(
    cursor, source: str, candidates: list[Candidate], reject, *, from_partner: bool
) -> list[Candidate]:
    """Open account, active authorization of the source and, for a partner's records, activity that
    happened once that authorization was granted (`record_authorization_check`)."""
    state = statements.people_state(cursor, source, sorted({c.user_id for c in candidates}))
    kept = []
    for candidate in candidates:
        is_open, is_authorized, granted_at = state.get(candidate.user_id, (False, False, None))
        code = record_authorization_check(
            is_open=is_open,
            is_authorized=is_authorized,
            granted_at=granted_at,
            occurred_at=candidate.incoming.occurred_at,
            from_partner=from_partner,
        )
        if code:
            reject(candidate.position, code)
        else:
            kept.append(candidate)
    return kept


def record_authorization_check(
    *,
    is_open: bool,
    is_authorized: bool,
    granted_at: datetime.datetime | None,
    occurred_at: datetime.datetime,
    from_partner: bool,
    is_known: bool = True,
) -> str:
    """The person's side of capture (`capture_rules.PERSON_RULES`), in order: the rejection code, or
    "" when the record may count.

    A partner's record counts only for activity from the moment the person authorized that source
    (the active grant's `granted_at`): consent is not retroactive, so a card's rides of the weeks
    before are not the platform's to credit. The phone's own sync is the person acting, with their
    own counts, and keeps its own window (`steps_sync`). The bulk import applies the same table in
    SQL, in the same order.
    """
    broken = first_broken(
        PERSON_RULES,
        PersonFacts(
            is_known=is_known,
            is_open=is_open,
            is_authorized=is_authorized,
            granted_at=granted_at,
            occurred_at=occurred_at,
            from_partner=from_partner,
        ),
    )
    return broken.code if broken is not None else ""


def _month_of(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def _lock_counters(
    cursor, candidates: list[Candidate], *, create_missing: bool = False
) -> tuple[dict, dict, set, set]:
    """Locks the batch's counter rows in key order, creating the missing ones first; returns what they hold.

    The rows that exist are locked in one statement (the common path: a person's counters of the
    day exist after their first record). The missing ones — every person's first record of a day —
    are then created empty, waiting for any concurrent creator instead of racing it, and locked, so
    a batch never finds at the end that another created one of its rows (which would rerun it; two
    partner streams at the start of a day raced on nearly every batch). With `create_missing` (a
    rerun) every row is created first and locked in one pass.
    """
    day_keys = sorted({(c.user_id, c.behaviour_id, c.local_day) for c in candidates})
    month_keys = sorted(
        {(c.user_id, c.behaviour_id, _month_of(c.local_day)) for c in candidates if c.factor.monthly_cap_mg}
    )
    if create_missing:
        statements.counters_create(cursor, day_keys, month_keys)
    day_counters, month_counters = statements.counters_lock(cursor, day_keys, month_keys)
    missing_days = [key for key in day_keys if key not in day_counters]
    missing_months = [key for key in month_keys if key not in month_counters]
    if missing_days or missing_months:
        statements.counters_create(cursor, missing_days, missing_months)
        created_days, created_months = statements.counters_lock(cursor, missing_days, missing_months)
        day_counters.update(created_days)
        month_counters.update(created_months)
    new_days = {key for key in day_keys if key not in day_counters}
    for key in new_days:
        day_counters[key] = [Decimal(0), 0]
    new_months = {key for key in month_keys if key not in month_counters}
    for key in new_months:
        month_counters[key] = [0]
    return day_counters, month_counters, new_days, new_months


def _overlapping_stored_trips(cursor, candidates: list[Candidate], trip_behaviour_ids: list[int]) -> set[int]:
    """Positions of the batch's trips that overlap a trip already stored for the same person."""
    trips = [c for c in candidates if c.is_trip and c.incoming.ended_at is not None]
    if not trips:
        return set()
    return statements.overlapping_trips(
        cursor,
        [(c.position, c.user_id, c.local_day, c.incoming.occurred_at, c.incoming.ended_at) for c in trips],
        trip_behaviour_ids,
    )


def _shared_devices(cursor, candidates: list[Candidate]) -> set[str]:
    pairs = sorted({(c.incoming.device_id, c.user_id) for c in candidates if c.incoming.device_id})
    if not pairs:
        return set()
    return statements.shared_devices(cursor, pairs, shared_device_max_accounts())


def _existing_ids(cursor, source: str, candidates: list[Candidate]) -> set[str]:
    return statements.existing_ids(cursor, source, [c.incoming.external_id for c in candidates])


def _overlaps(intervals: list[tuple], started: datetime.datetime, ended: datetime.datetime) -> bool:
    return any(other_start < ended and other_end > started for other_start, other_end in intervals)


def apply_caps(
    gross_carbon_mg: int, factor: FactorInEffect, day_credited: int, month_credited: int | None
) -> tuple[int, str]:
    """How much of `gross_carbon_mg` the caps let through, given the day and month so far; and why."""
    credited, capped_by = gross_carbon_mg, CapKind.NONE
    if factor.event_cap_mg is not None and credited > factor.event_cap_mg:
        credited, capped_by = factor.event_cap_mg, CapKind.EVENT
    if factor.daily_cap_mg is not None:
        room = max(0, factor.daily_cap_mg - day_credited)
        if credited > room:
            credited, capped_by = room, CapKind.DAY
    if factor.monthly_cap_mg is not None and month_credited is not None:
        room = max(0, factor.monthly_cap_mg - month_credited)
        if credited > room:
            credited, capped_by = room, CapKind.MONTH
    return credited, str(capped_by)


def _credit(
    cursor, source, partner_id, candidates, outcomes, methodology: Methodology, now, *, create_missing=False
) -> None:
    """Duplicates, second reports of instances, holds (`capture_rules.HOLD_RULES`) and caps of the
    batch's candidates, in the order things happened, against the locked counters; then stores."""
    existing = _existing_ids(cursor, source, candidates)
    # Caps and daily thresholds are applied in the order things happened, as if reported one by one.
    in_order = sorted(candidates, key=lambda c: (c.incoming.occurred_at, c.position))
    # The records to store: each id not stored yet, at its first occurrence in time (the others are
    # duplicates). Only their counters are locked and created.
    first_seen: dict[str, Candidate] = {}
    for candidate in in_order:
        if candidate.incoming.external_id not in existing:
            first_seen.setdefault(candidate.incoming.external_id, candidate)
    instance_midnights_lock(cursor, _instance_reports(first_seen.values()))
    day_counters, month_counters, new_days, new_months = _lock_counters(
        cursor, list(first_seen.values()), create_missing=create_missing
    )
    day_deltas: dict[tuple, list] = defaultdict(lambda: [Decimal(0), 0, 0, 0])
    month_deltas: dict[tuple, list] = defaultdict(lambda: [0])
    trip_behaviour_ids = sorted(b.id for b in methodology.behaviours_by_id.values() if b.is_trip)
    overlapping = _overlapping_stored_trips(cursor, candidates, trip_behaviour_ids)
    batch_trips: dict[int, list[tuple]] = defaultdict(list)
    shared_devices = _shared_devices(cursor, candidates)

    twins = _instance_twins(cursor, [c for c in in_order if first_seen.get(c.incoming.external_id) is c])
    imported = imported_instance_twins(
        [c for c in in_order if first_seen.get(c.incoming.external_id) is c and c.instance_key is not None
         and c.position not in twins]
    )  # fmt: skip

    rows: list[tuple] = []
    fresh: list[Candidate] = []
    second_reports: list[tuple[Candidate, int, int | None]] = []
    imported_reports: list[tuple[Candidate, int]] = []
    for candidate in in_order:
        record = candidate.incoming
        if first_seen.get(record.external_id) is not candidate:
            outcomes[candidate.position] = Outcome(record.external_id, DUPLICATE)
            continue
        if candidate.position in imported:
            # Another platform's imported statement counts this instance here already.
            imported_reports.append((candidate, imported[candidate.position]))
            continue
        if candidate.position in twins:
            # Credited once: stored as a report of the instance, crediting nothing and counting in
            # no counter (it is no new activity); its answer points at the credited report.
            second_reports.append((candidate, *twins[candidate.position]))
            continue
        day_counter = day_counters[(candidate.user_id, candidate.behaviour_id, candidate.local_day)]
        month_key = (candidate.user_id, candidate.behaviour_id, _month_of(candidate.local_day))
        month_counter = month_counters.get(month_key)
        factor = candidate.factor

        # The hold rules (`capture_rules.HOLD_RULES`) over what this record adds to the running
        # totals: the day's quantity so far, and the person's trips so far (a trip already held by
        # the threshold joins no interval).
        behaviour = methodology.behaviours_by_id[candidate.behaviour_id]
        threshold = methodology.review_threshold(behaviour, factor)
        over_threshold = threshold is not None and day_counter[0] + record.quantity > threshold
        is_interval = candidate.is_trip and record.ended_at is not None and not over_threshold
        overlaps = False
        if is_interval:
            intervals = batch_trips[candidate.user_id]
            overlaps = candidate.position in overlapping or _overlaps(
                intervals, record.occurred_at, record.ended_at
            )
            intervals.append((record.occurred_at, record.ended_at))
        hold = first_broken(
            HOLD_RULES,
            HoldFacts(
                over_threshold=over_threshold,
                is_step=candidate.unit == Unit.STEP,
                is_interval=is_interval,
                overlaps=overlaps,
                device_shared=bool(record.device_id) and record.device_id in shared_devices,
            ),
        )
        hold_reason = hold.code if hold is not None else ""
        day_counter[0] += record.quantity
        day_key = (candidate.user_id, candidate.behaviour_id, candidate.local_day)
        day_delta = day_deltas[day_key]
        day_delta[0] += record.quantity
        day_delta[1] += 1

        if hold_reason:
            credited, capped_by, status = 0, "", RecordStatus.HELD
            day_delta[2] += 1
        else:
            credited, capped_by = apply_caps(
                candidate.gross_carbon_mg, factor, day_counter[1], month_counter[0] if month_counter else None
            )
            status = RecordStatus.CREDITED
            day_counter[1] += credited
            day_delta[3] += credited
            if month_counter is not None:
                month_counter[0] += credited
                month_deltas[month_key][0] += credited
        outcomes[candidate.position] = Outcome(
            record.external_id,
            HELD if hold_reason else ACCEPTED,
            credited_carbon_mg=credited,
            gross_carbon_mg=candidate.gross_carbon_mg,
            capped_by=capped_by,
            hold_reason=str(hold_reason),
            user_id=candidate.user_id,
            local_day=candidate.local_day,
        )
        fresh.append(candidate)
        rows.append(
            (
                candidate.user_id,
                candidate.behaviour_id,
                factor.id,
                record.external_id,
                record.quantity,
                record.occurred_at,
                record.ended_at,
                candidate.local_day,
                record.device_id,
                candidate.gross_carbon_mg,
                credited,
                capped_by,
                str(status),
                str(hold_reason),
                now if status == RecordStatus.CREDITED else None,
                candidate.instance_key,
                candidate.instance_bucket if candidate.instance_key is not None else None,
            )
        )
    inserted: dict[str, int] = {}
    if rows:
        # Counter rows first, DailyCarbon last: every writer takes its locks in that order (no deadlock).
        statements.counters_raise(cursor, "day", day_deltas, new_days)
        if month_deltas:
            statements.counters_raise(cursor, "month", month_deltas, new_months)
        inserted = statements.records_store(cursor, rows, source, partner_id, now)
        if len(inserted) != len(fresh):
            # A concurrent request stored one of these records (or a report of the same instance)
            # after our checks: start again, and it will be reported as the duplicate it is.
            raise CounterRaceError
    if imported_reports:
        # A later report of the batch of the same instance is a second report of this one.
        inserted |= _imported_reports_store(cursor, imported_reports, source=source, partner_id=partner_id,
                                            outcomes=outcomes, now=now)  # fmt: skip
    if second_reports:
        _second_reports_store(cursor, second_reports, in_batch=inserted, source=source,
                              partner_id=partner_id, outcomes=outcomes, now=now)  # fmt: skip


def _instance_reports(candidates) -> list[tuple]:
    """The instances the candidates report, for `instances.instance_midnights_lock`."""
    return [
        (
            c.user_id,
            c.behaviour_id,
            c.instance_key,
            c.incoming.occurred_at,
            c.factor.instance_time_tolerance_seconds,
        )
        for c in candidates
        if c.instance_key is not None
    ]


def _instance_twins(cursor, candidates: list[Candidate]) -> dict[int, tuple[int, int | None]]:
    """The second reports of instances among `candidates` (in time order), by position: (the stored
    record holding the credit, 0 if none; or the position of the batch's first report).

    A report of an instance already credited (`INSTANCE_CREDITED_REPORT`: same key, and within the
    time tolerance where there is one) is a second report of it. Of the others, the reports of one
    instance in the batch follow each other within the tolerance (any gap, without one): the first
    is credited, the rest are second reports. The bulk import does the same in SQL
    (`bulk_import.ChunkImporter._check_people_and_duplicates`).
    """
    keyed = [c for c in candidates if c.instance_key is not None]
    if not keyed:
        return {}
    stored = statements.instance_credited_reports(
        cursor,
        [
            (c.position, c.user_id, c.behaviour_id, c.instance_key, c.instance_bucket,
             c.incoming.occurred_at, c.factor.instance_time_tolerance_seconds)
            for c in keyed
        ],
    )  # fmt: skip
    twins: dict[int, tuple[int, int | None]] = {}
    clusters: dict[tuple, tuple[int, datetime.datetime]] = {}  # instance → (first position, latest time)
    for candidate in keyed:
        if candidate.position in stored:
            twins[candidate.position] = (stored[candidate.position], None)
            continue
        instance = (candidate.user_id, candidate.behaviour_id, candidate.instance_key)
        tolerance = candidate.factor.instance_time_tolerance_seconds
        occurred_at = candidate.incoming.occurred_at
        cluster = clusters.get(instance)
        if cluster is not None and (
            tolerance is None or occurred_at - cluster[1] <= datetime.timedelta(seconds=tolerance)
        ):
            twins[candidate.position] = (0, cluster[0])
            clusters[instance] = (cluster[0], occurred_at)
        else:
            clusters[instance] = (candidate.position, occurred_at)
    return twins


def _second_reports_store(
    cursor, reports: list, *, in_batch: dict[str, int], source: str, partner_id, outcomes, now
) -> None:
    """Stores the second reports of instances, each pointing at the credited one, and answers for them."""
    rows = []
    credited_ids: dict[str, int] = {}
    for candidate, stored_id, first_position in reports:
        record = candidate.incoming
        credited_id = stored_id or in_batch[records_external_id(outcomes, first_position)]
        credited_ids[record.external_id] = credited_id
        rows.append(
            (candidate.user_id, candidate.behaviour_id, candidate.factor.id, record.external_id,
             record.quantity, record.occurred_at, record.ended_at, candidate.local_day, record.device_id,
             candidate.gross_carbon_mg, candidate.instance_key, candidate.instance_bucket, credited_id)
        )  # fmt: skip
    stored = statements.second_reports_store(cursor, rows, source, partner_id, now)
    if len(stored) != len(rows):
        raise CounterRaceError
    moved = instance_credits_move(cursor, sorted(stored.values()))
    for candidate, _, _ in reports:
        record_id = stored[candidate.incoming.external_id]
        outcome = Outcome(
            candidate.incoming.external_id,
            DUPLICATE_ACROSS_SOURCES,
            gross_carbon_mg=candidate.gross_carbon_mg,
            user_id=candidate.user_id,
            local_day=candidate.local_day,
            credited_record_id=credited_ids[candidate.incoming.external_id],
        )
        if record_id in moved:
            # The preferred source's report took the credit over: it is this one's answer now.
            outcome.status, outcome.credited_carbon_mg = ACCEPTED, moved[record_id]
            outcome.credited_record_id = 0
        outcomes[candidate.position] = outcome


def _imported_reports_store(
    cursor, reports: list, *, source: str, partner_id, outcomes, now
) -> dict[str, int]:
    """Stores the reports of instances an imported statement counts, and answers for them; returns
    their ids by record id."""
    rows = [
        (c.user_id, c.behaviour_id, c.factor.id, c.incoming.external_id, c.incoming.quantity,
         c.incoming.occurred_at, c.incoming.ended_at, c.local_day, c.incoming.device_id,
         c.gross_carbon_mg, c.instance_key, c.instance_bucket, imported_id)
        for c, imported_id in reports
    ]  # fmt: skip
    stored = statements.imported_reports_store(cursor, rows, source, partner_id, now)
    if len(stored) != len(reports):
        # A record id, or a report of the instance, stored meanwhile: the batch reruns.
        raise CounterRaceError
    for candidate, imported_id in reports:
        outcomes[candidate.position] = Outcome(
            candidate.incoming.external_id,
            DUPLICATE_ACROSS_SOURCES,
            gross_carbon_mg=candidate.gross_carbon_mg,
            user_id=candidate.user_id,
            local_day=candidate.local_day,
            imported_instance_id=imported_id,
        )
    return stored


def records_external_id(outcomes: list, position: int) -> str:
    return outcomes[position].external_id


def instance_credits_move(cursor, second_report_ids: list[int]) -> dict[int, int]:
    """Moves an instance's credit to a second report of a preferred source, where nothing changes.

    The methodology's `source_precedence` says which source's report should hold an instance's
    credit. When the preferred report comes second, the credit moves to it only if nothing it stands
    for changes: the credited report is a plain credit (not held, not reduced at a merge) of the same
    person's same day with the same gross carbon. Then the counters, the day's carbon and any coins
    settled for it are untouched (exactly once); otherwise the credit stays where it first landed.
    The two records swap roles, and the instance's other reports point at the new credited one.
    Returns {second report id: the credit it took}. Every capture path calls this.
    """
    if not second_report_ids:
        return {}
    moves = statements.instance_credit_moves(cursor, second_report_ids)
    return {new_id: credited for new_id, _, credited, _, _ in moves}


def rejections_count(*, source: str, partner_code: str, codes: Counter, now: datetime.datetime) -> None:
    """Adds rejected records to the day's rejection counts: the only trace a rejected record leaves."""
    if not codes:
        return
    with connection.cursor() as cursor:
        statements.rejections_add(cursor, source, partner_code, local_day_of(now), codes)
