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
"""

from __future__ import annotations

import datetime
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

import psycopg
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from psycopg import sql as psql

from activities import errors
from activities.instances import instance_midnights_lock
from activities.methodology import FactorInEffect, Methodology, instance_identity, methodology_load
from activities.models import CapKind, HoldReason, RecordStatus, Unit
from activities.statements.instances import imported_instance_twins
from core.local_time import local_day_of

CLOCK_SKEW = datetime.timedelta(minutes=5)
# Far beyond any real record (a billion steps, km or kg), and within the columns' range.
MAX_QUANTITY = Decimal(10**9)
MAX_ATTEMPTS = 5

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
# Another report of the same real-world instance (another source, or another id) holds the credit.
DUPLICATE_ACROSS_SOURCES = "duplicate_across_sources"
REJECTED = "rejected"
HELD = "held_for_review"
ENDED_BEFORE_STARTED = "ended_at is before occurred_at"


# Arrays travel to PostgreSQL as one string per column, split on the unit separator by the server
# (`string_to_array`): far cheaper than adapting thousands of Python values one by one. The string
# starts with a separator and the SQL drops the first element, so a one-element array of '' survives.
SEPARATOR = "\x1f"


def _text(value) -> str:
    if value.__class__ is str:
        return value
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, datetime.date) else str(value)


def packed(values) -> str:
    """A column of values as one string for `arr()`; None becomes SQL NULL where the column allows it."""
    values = list(values)
    if not values:
        return ""
    kinds = {value.__class__ for value in values}
    # The common columns in one C-level pass each; anything mixed goes value by value.
    if kinds == {str}:
        texts = values
    elif kinds == {int}:
        texts = map(str, values)
    elif len(kinds) == 1 and issubclass(next(iter(kinds)), datetime.date):
        texts = (value.isoformat() for value in values)
    else:
        texts = map(_text, values)
    return SEPARATOR + SEPARATOR.join(texts)


def arr(sql_type: str, *, nullable: bool = False) -> str:
    """The SQL that turns one `packed()` parameter back into an array of `sql_type`."""
    nulls = ", ''" if nullable else ""
    return f"((string_to_array(%s, chr(31){nulls}))[2:])::{sql_type}[]"


def sql(template: str) -> str:
    """A statement whose `[[type]]` (or `[[type?]]`, nullable) marks stand for `packed()` arrays."""
    return re.sub(r"\[\[(\w+)(\??)\]\]", lambda m: arr(m.group(1), nullable=bool(m.group(2))), template)


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
class _Candidate:
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
) -> _Candidate | tuple[str, str]:
    """The rules one record meets on its own, in order; the first it breaks is its rejection (code, detail).

    The bulk import applies the same rules in SQL (`activities.bulk_import`), in the same order.
    """
    if record.invalid_code:
        return record.invalid_code, record.invalid_detail
    behaviour = methodology.behaviours_by_code.get(record.behaviour_code)
    if behaviour is None:
        return errors.UNKNOWN_BEHAVIOUR.code, ""
    if allowed_behaviour_ids is not None and behaviour.id not in allowed_behaviour_ids:
        return errors.BEHAVIOUR_NOT_ALLOWED.code, ""
    quantity = record.quantity
    if (
        not quantity.is_finite()
        or quantity <= 0
        or quantity > MAX_QUANTITY
        or quantity.as_tuple().exponent < -3  # type: ignore[operator]
    ):
        return errors.INVALID_QUANTITY.code, ""
    if record.occurred_at > now + CLOCK_SKEW or (record.ended_at and record.ended_at > now + CLOCK_SKEW):
        return errors.OCCURRED_IN_FUTURE.code, ""
    if record.ended_at is not None and record.ended_at < record.occurred_at:
        return errors.INVALID_RECORD.code, ENDED_BEFORE_STARTED
    if oldest is not None and record.occurred_at < oldest:
        return oldest_code, ""
    local_day = local_day_of(record.occurred_at)
    factor = methodology.factor_for(behaviour.id, local_day)
    if factor is None:
        return errors.NO_FACTOR_IN_EFFECT.code, ""
    if source not in factor.sources:
        return errors.BEHAVIOUR_NOT_ALLOWED.code, ""
    if factor.minimum_payment_fen is not None:
        if record.amount is None:
            return errors.INVALID_RECORD.code, "amount"
        if record.amount * 100 < factor.minimum_payment_fen:
            return errors.PAYMENT_BELOW_MINIMUM.code, ""
    identity = instance_identity(factor, record.instance, record.occurred_at)
    return _Candidate(
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
    candidates: list[_Candidate] = []

    def reject(position: int, code: str, detail: str = "") -> None:
        outcomes[position] = Outcome(records[position].external_id, REJECTED, code=code, detail=detail)

    oldest = now - datetime.timedelta(days=window_days) if window_days is not None else None
    for position, record in enumerate(records):
        checked = record_precheck(
            position, record, source=source, methodology=methodology,
            allowed_behaviour_ids=allowed_behaviour_ids, now=now, oldest=oldest, oldest_code=window_code,
        )  # fmt: skip
        if isinstance(checked, _Candidate):
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
        rejections_count(
            source=source,
            partner_code=partner_code,
            codes=Counter(o.code for o in outcomes if o is not None and o.status == REJECTED),
            now=now,
        )
    return [outcome for outcome in outcomes if outcome is not None]


def _resolve_customers(cursor, partner_id: int, candidates: list[_Candidate], reject) -> list[_Candidate]:
    references = sorted({c.incoming.customer_reference for c in candidates if c.incoming.customer_reference})
    users = statements().customer_users(cursor, partner_id, references)
    kept = []
    for candidate in candidates:
        user_id = users.get(candidate.incoming.customer_reference)
        if user_id is None:
            reject(candidate.position, errors.UNKNOWN_CUSTOMER.code)
        else:
            candidate.user_id = user_id
            kept.append(candidate)
    return kept


def _check_people(
    cursor, source: str, candidates: list[_Candidate], reject, *, from_partner: bool
) -> list[_Candidate]:
    """Open account, active authorization of the source and, for a partner's records, activity that
    happened once that authorization was granted (`record_authorization_check`)."""
    state = statements().people_state(cursor, source, sorted({c.user_id for c in candidates}))
    kept = []
    for candidate in candidates:
        # PostgreSQL's statement also gives the grant's time; the embedded SQLite's twin does not.
        is_open, is_authorized, *granted = state.get(candidate.user_id, (False, False))
        code = record_authorization_check(
            is_open=is_open,
            is_authorized=is_authorized,
            granted_at=granted[0] if granted else None,
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
) -> str:
    """The person's side of capture, in order: the rejection code, or "" when the record may count.

    A partner's record counts only for activity from the moment the person authorized that source
    (the active grant's `granted_at`): consent is not retroactive, so a card's rides of the weeks
    before are not the platform's to credit. The phone's own sync is the person acting, with their
    own counts, and keeps its own window (`steps_sync`). The bulk import applies the same rules in
    SQL (`bulk_import.ChunkImporter._check_people_and_duplicates`), in the same order.
    """
    if not is_open:
        return errors.ACCOUNT_CLOSED.code
    if not is_authorized:
        return errors.SOURCE_NOT_AUTHORIZED.code
    if from_partner and granted_at is not None and occurred_at < granted_at:
        return errors.OCCURRED_BEFORE_AUTHORIZATION.code
    return ""


def _month_of(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


class CounterRaceError(Exception):
    """A counter row this batch expected to create was created by a concurrent batch: start again."""


def _lock_counters(
    cursor, candidates: list[_Candidate], *, create_missing: bool = False
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
        statements().counters_create(cursor, day_keys, month_keys)
    day_counters, month_counters = statements().counters_lock(cursor, day_keys, month_keys)
    missing_days = [key for key in day_keys if key not in day_counters]
    missing_months = [key for key in month_keys if key not in month_counters]
    if missing_days or missing_months:
        statements().counters_create(cursor, missing_days, missing_months)
        created_days, created_months = statements().counters_lock(cursor, missing_days, missing_months)
        day_counters.update(created_days)
        month_counters.update(created_months)
    new_days = {key for key in day_keys if key not in day_counters}
    for key in new_days:
        day_counters[key] = [Decimal(0), 0]
    new_months = {key for key in month_keys if key not in month_counters}
    for key in new_months:
        month_counters[key] = [0]
    return day_counters, month_counters, new_days, new_months


def _overlapping_stored_trips(
    cursor, candidates: list[_Candidate], trip_behaviour_ids: list[int]
) -> set[int]:
    """Positions of the batch's trips that overlap a trip already stored for the same person."""
    trips = [c for c in candidates if c.is_trip and c.incoming.ended_at is not None]
    if not trips:
        return set()
    return statements().overlapping_trips(
        cursor,
        [(c.position, c.user_id, c.local_day, c.incoming.occurred_at, c.incoming.ended_at) for c in trips],
        trip_behaviour_ids,
    )


def _shared_devices(cursor, candidates: list[_Candidate]) -> set[str]:
    pairs = sorted({(c.incoming.device_id, c.user_id) for c in candidates if c.incoming.device_id})
    if not pairs:
        return set()
    return statements().shared_devices(cursor, pairs, shared_device_max_accounts())


def _existing_ids(cursor, source: str, candidates: list[_Candidate]) -> set[str]:
    return statements().existing_ids(cursor, source, [c.incoming.external_id for c in candidates])


UPSERT_DAYS = sql(
    """
    INSERT INTO activities_behaviourday AS b
        (user_id, behaviour_id, day, quantity, record_count, held_count, credited_carbon_mg)
    SELECT * FROM unnest([[bigint]], [[bigint]], [[date]], [[numeric]], [[integer]], [[integer]], [[bigint]])
    ORDER BY 1, 2, 3
    ON CONFLICT (user_id, behaviour_id, day) DO UPDATE
    SET quantity = b.quantity + EXCLUDED.quantity,
        record_count = b.record_count + EXCLUDED.record_count,
        held_count = b.held_count + EXCLUDED.held_count,
        credited_carbon_mg = b.credited_carbon_mg + EXCLUDED.credited_carbon_mg
    RETURNING b.user_id, b.behaviour_id, b.day, (b.xmax = 0)
    """
)

UPSERT_MONTHS = sql(
    """
    INSERT INTO activities_behaviourmonth AS m (user_id, behaviour_id, month, credited_carbon_mg)
    SELECT * FROM unnest([[bigint]], [[bigint]], [[date]], [[bigint]]) ORDER BY 1, 2, 3
    ON CONFLICT (user_id, behaviour_id, month) DO UPDATE
    SET credited_carbon_mg = m.credited_carbon_mg + EXCLUDED.credited_carbon_mg
    RETURNING m.user_id, m.behaviour_id, m.month, (m.xmax = 0)
    """
)


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


# Stores the new records and, from the rows really inserted, raises DailyCarbon.
STORE_RECORDS = sql(
    """
        WITH incoming AS (
            SELECT * FROM unnest(
                [[bigint]], [[bigint]], [[bigint]], [[text]], [[numeric]], [[timestamptz]], [[timestamptz?]],
                [[date]], [[text]], [[bigint]], [[bigint]], [[text]], [[text]], [[text]], [[timestamptz?]],
                [[text?]], [[bigint?]]
            ) AS t(
                user_id, behaviour_id, factor_id, external_id, quantity, occurred_at, ended_at, local_day,
                device_id, gross_carbon_mg, credited_carbon_mg, capped_by, status, hold_reason, credited_at,
                instance_key, instance_bucket
            )
        ),
        inserted AS (
            INSERT INTO activities_activityrecord
                (user_id, behaviour_id, factor_id, source, partner_id, external_id, quantity, occurred_at,
                 ended_at, local_day, device_id, gross_carbon_mg, credited_carbon_mg, capped_by, status,
                 hold_reason, created_at, credited_at, appeal_note, instance_key, instance_bucket)
            SELECT user_id, behaviour_id, factor_id, %s, %s, external_id, quantity, occurred_at, ended_at,
                   local_day, device_id, gross_carbon_mg, credited_carbon_mg, capped_by, status, hold_reason,
                   %s, credited_at, '', instance_key, instance_bucket
            FROM incoming
            -- No conflict target: a record id stored meanwhile, or a credited report of the same
            -- instance stored meanwhile (`one_credited_report_per_instance`), leaves the row out.
            ON CONFLICT DO NOTHING
            RETURNING id, external_id, user_id, behaviour_id, local_day, quantity, credited_carbon_mg, status
        ),
        daily AS (
            INSERT INTO activities_dailycarbon
                (user_id, day, credited_carbon_mg, settled_carbon_mg, updated_at)
            SELECT user_id, local_day, sum(credited_carbon_mg), 0, %s
            FROM inserted WHERE credited_carbon_mg > 0
            GROUP BY user_id, local_day ORDER BY user_id, local_day
            ON CONFLICT (user_id, day) DO UPDATE
            SET credited_carbon_mg = activities_dailycarbon.credited_carbon_mg + EXCLUDED.credited_carbon_mg,
                updated_at = EXCLUDED.updated_at
        )
        SELECT external_id, id FROM inserted
        """
)


def _credit(
    cursor, source, partner_id, candidates, outcomes, methodology: Methodology, now, *, create_missing=False
) -> None:
    existing = _existing_ids(cursor, source, candidates)
    # Caps and daily thresholds are applied in the order things happened, as if reported one by one.
    in_order = sorted(candidates, key=lambda c: (c.incoming.occurred_at, c.position))
    # The records to store: each id not stored yet, at its first occurrence in time (the others are
    # duplicates). Only their counters are locked and created.
    first_seen: dict[str, _Candidate] = {}
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
    fresh: list[_Candidate] = []
    second_reports: list[tuple[_Candidate, int, int | None]] = []
    imported_reports: list[tuple[_Candidate, int]] = []
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

        hold_reason = ""
        behaviour = methodology.behaviours_by_id[candidate.behaviour_id]
        threshold = methodology.review_threshold(behaviour, factor)
        if threshold is not None and day_counter[0] + record.quantity > threshold:
            hold_reason = (
                HoldReason.SUPERHUMAN_STEPS if candidate.unit == Unit.STEP else HoldReason.TOO_MANY_IN_A_DAY
            )
        elif candidate.is_trip and record.ended_at is not None:
            intervals = batch_trips[candidate.user_id]
            if candidate.position in overlapping or _overlaps(intervals, record.occurred_at, record.ended_at):
                hold_reason = HoldReason.OVERLAPPING_TRIP
            intervals.append((record.occurred_at, record.ended_at))
        if not hold_reason and record.device_id and record.device_id in shared_devices:
            hold_reason = HoldReason.SHARED_DEVICE
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
    dialect = statements()
    inserted: dict[str, int] = {}
    if rows:
        # Counter rows first, DailyCarbon last: every writer takes its locks in that order (no deadlock).
        dialect.counters_raise(cursor, "day", day_deltas, new_days)
        if month_deltas:
            dialect.counters_raise(cursor, "month", month_deltas, new_months)
        inserted = dialect.records_store(cursor, rows, source, partner_id, now)
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


def _instance_twins(cursor, candidates: list[_Candidate]) -> dict[int, tuple[int, int | None]]:
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
    stored = statements().instance_credited_reports(
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
    stored = statements().second_reports_store(cursor, rows, source, partner_id, now)
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


# Reports of instances an imported statement counts: stored crediting nothing, in no counter. `rows` is a
# relation of the columns of `t` below; the bulk import stores its staged reports with it too.
_IMPORTED_REPORTS_INSERT = """
    INSERT INTO activities_activityrecord
        (user_id, behaviour_id, factor_id, source, partner_id, external_id, quantity, occurred_at,
         ended_at, local_day, device_id, gross_carbon_mg, credited_carbon_mg, capped_by, status,
         hold_reason, created_at, credited_at, appeal_note, instance_key, instance_bucket,
         imported_duplicate_of_id)
    SELECT user_id, behaviour_id, factor_id, {source}, {partner}, external_id, quantity, occurred_at,
           ended_at, local_day, device_id, gross_carbon_mg, 0, '', 'duplicate', '', {now}, NULL, '',
           instance_key, instance_bucket, imported_id
    FROM {rows}
         AS t(user_id, behaviour_id, factor_id, external_id, quantity, occurred_at, ended_at, local_day,
              device_id, gross_carbon_mg, instance_key, instance_bucket, imported_id)
    -- A record id, or a report of the instance stored meanwhile, leaves the row out: the batch reruns.
    ON CONFLICT DO NOTHING
    RETURNING external_id, id
"""


def imported_reports_store_statement(rows: psql.Composable) -> psql.Composed:
    """The statement storing the reports of `rows`; parameters `source`, `partner` and `now`."""
    return psql.SQL(_IMPORTED_REPORTS_INSERT).format(
        rows=rows, **{name: psql.Placeholder(name) for name in ("source", "partner", "now")}
    )


IMPORTED_REPORTS_STORE = imported_reports_store_statement(
    psql.SQL(
        """unnest({users}::bigint[], {behaviours}::bigint[], {factors}::bigint[], {ids}::text[],
                  {quantities}::numeric[], {occurred}::timestamptz[], {ended}::timestamptz[], {days}::date[],
                  {devices}::text[], {gross}::bigint[], {keys}::text[], {buckets}::bigint[],
                  {imported}::bigint[])"""
    ).format(
        **{
            name: psql.Placeholder(name)
            for name in ("users", "behaviours", "factors", "ids", "quantities", "occurred", "ended", "days",
                         "devices", "gross", "keys", "buckets", "imported")
        }
    )
)  # fmt: skip


def _imported_reports_store(
    cursor, reports: list, *, source: str, partner_id, outcomes, now
) -> dict[str, int]:
    """Stores the reports of instances an imported statement counts, and answers for them; returns
    their ids by record id."""
    columns = list(
        zip(
            *(
                (c.user_id, c.behaviour_id, c.factor.id, c.incoming.external_id, c.incoming.quantity,
                 c.incoming.occurred_at, c.incoming.ended_at, c.local_day, c.incoming.device_id,
                 c.gross_carbon_mg, c.instance_key, c.instance_bucket, imported_id)
                for c, imported_id in reports
            ),
            strict=True,
        )
    )  # fmt: skip
    names = ("users", "behaviours", "factors", "ids", "quantities", "occurred", "ended", "days", "devices",
             "gross", "keys", "buckets", "imported")  # fmt: skip
    cursor.execute(
        IMPORTED_REPORTS_STORE,
        {
            "source": source,
            "partner": partner_id,
            "now": now,
            **{n: list(c) for n, c in zip(names, columns, strict=True)},
        },
    )
    stored = dict(cursor.fetchall())
    if len(stored) != len(reports):
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
    cursor.execute(INSTANCE_CREDIT_MOVES, [packed(second_report_ids)])
    moves = cursor.fetchall()
    if not moves:
        return {}
    columns = [packed(column) for column in zip(*moves, strict=True)]
    # In this order: the old credited report stops being the instance's credited one before the
    # new one becomes it (one credited report per instance, a unique index).
    cursor.execute(INSTANCE_CREDIT_DEMOTE, columns[:2])
    cursor.execute(INSTANCE_CREDIT_PROMOTE, columns)
    cursor.execute(INSTANCE_REPORTS_REPOINT, columns[:2])
    return {new_id: credited for new_id, _, credited, _, _ in moves}


# The credited report of an instance (a live one: a rejected report holds nothing), for a row `t`
# (user_id, behaviour_id, instance_key, instance_bucket, occurred_at, tolerance in seconds or NULL):
# the same key in the same bucket or, with a tolerance, a neighbouring one within the tolerance. One
# probe of the unique index.
INSTANCE_CREDITED_REPORT = """
    SELECT r.id FROM activities_activityrecord r
    WHERE r.user_id = t.user_id AND r.behaviour_id = t.behaviour_id AND r.instance_key = t.instance_key
      AND r.duplicate_of_id IS NULL AND r.status <> 'rejected'
      AND r.instance_bucket BETWEEN t.instance_bucket - (t.tolerance IS NOT NULL)::int
                                AND t.instance_bucket + (t.tolerance IS NOT NULL)::int
      AND (t.tolerance IS NULL OR r.occurred_at BETWEEN t.occurred_at - make_interval(secs => t.tolerance)
                                                    AND t.occurred_at + make_interval(secs => t.tolerance))
    ORDER BY r.occurred_at, r.id
    LIMIT 1
"""

INSTANCE_CREDITED_REPORTS = sql(
    f"""
    SELECT t.position, p.id
    FROM unnest([[integer]], [[bigint]], [[bigint]], [[text]], [[bigint]], [[timestamptz]], [[integer?]])
         AS t(position, user_id, behaviour_id, instance_key, instance_bucket, occurred_at, tolerance)
    CROSS JOIN LATERAL ({INSTANCE_CREDITED_REPORT}) AS p
    """  # noqa: S608 - a constant fragment
)

# A source's rank in a factor's precedence (1 is preferred); unlisted sources after every listed one.
_RANK = """coalesce((SELECT e.n FROM jsonb_array_elements_text(f.source_precedence) WITH ORDINALITY
                     AS e(s, n) WHERE e.s = {}), 1000000)"""

INSTANCE_CREDIT_MOVES = sql(
    f"""
    SELECT DISTINCT ON (p.id) d.id, p.id, p.credited_carbon_mg, p.capped_by, p.credited_at
    FROM activities_activityrecord d
    JOIN activities_activityrecord p ON p.id = d.duplicate_of_id
    JOIN activities_factor f ON f.id = p.factor_id
    WHERE d.id = ANY([[bigint]]) AND p.status = 'credited' AND p.capped_at_merge_mg = 0
      AND p.user_id = d.user_id AND p.local_day = d.local_day AND p.gross_carbon_mg = d.gross_carbon_mg
      AND {_RANK.format("d.source")} < {_RANK.format("p.source")}
    ORDER BY p.id, {_RANK.format("d.source")}, d.id
    """  # noqa: S608 - constant fragments
)

INSTANCE_CREDIT_DEMOTE = sql(
    """
    UPDATE activities_activityrecord r
    SET status = 'duplicate', credited_carbon_mg = 0, capped_by = '', credited_at = NULL,
        duplicate_of_id = m.new_id
    FROM unnest([[bigint]], [[bigint]]) AS m(new_id, old_id)
    WHERE r.id = m.old_id
    """
)

INSTANCE_CREDIT_PROMOTE = sql(
    """
    UPDATE activities_activityrecord r
    SET status = 'credited', credited_carbon_mg = m.credited, capped_by = m.capped_by,
        credited_at = m.credited_at, duplicate_of_id = NULL
    FROM unnest([[bigint]], [[bigint]], [[bigint]], [[text]], [[timestamptz?]])
         AS m(new_id, old_id, credited, capped_by, credited_at)
    WHERE r.id = m.new_id
    """
)

INSTANCE_REPORTS_REPOINT = sql(
    """
    UPDATE activities_activityrecord r SET duplicate_of_id = m.new_id
    FROM unnest([[bigint]], [[bigint]]) AS m(new_id, old_id)
    WHERE r.duplicate_of_id = m.old_id AND r.id <> m.new_id
    """
)

# Second reports of instances: stored crediting nothing, pointing at the credited report. No counter
# and no day's carbon changes.
SECOND_REPORTS_STORE = sql(
    """
    INSERT INTO activities_activityrecord
        (user_id, behaviour_id, factor_id, source, partner_id, external_id, quantity, occurred_at,
         ended_at, local_day, device_id, gross_carbon_mg, credited_carbon_mg, capped_by, status,
         hold_reason, created_at, credited_at, appeal_note, instance_key, instance_bucket, duplicate_of_id)
    SELECT user_id, behaviour_id, factor_id, %s, %s, external_id, quantity, occurred_at, ended_at,
           local_day, device_id, gross_carbon_mg, 0, '', 'duplicate', '', %s, NULL, '', instance_key,
           instance_bucket, duplicate_of_id
    FROM unnest(
        [[bigint]], [[bigint]], [[bigint]], [[text]], [[numeric]], [[timestamptz]], [[timestamptz?]],
        [[date]], [[text]], [[bigint]], [[text]], [[bigint]], [[bigint]]
    ) AS t(
        user_id, behaviour_id, factor_id, external_id, quantity, occurred_at, ended_at, local_day,
        device_id, gross_carbon_mg, instance_key, instance_bucket, duplicate_of_id
    )
    ON CONFLICT (external_id, source) DO NOTHING
    RETURNING external_id, id
    """
)


def rejections_count(*, source: str, partner_code: str, codes: Counter, now: datetime.datetime) -> None:
    """Adds rejected records to the day's rejection counts: the only trace a rejected record leaves."""
    if not codes:
        return
    with connection.cursor() as cursor:
        statements().rejections_add(cursor, source, partner_code, local_day_of(now), codes)


# --- The statements ------------------------------------------------------------------------------


def statements():
    """The few statements that touch the tables: set-based, with row locks for concurrent writers."""
    return PostgresStatements


class PostgresStatements:
    @staticmethod
    def customer_users(cursor, partner_id: int, references: list[str]) -> dict[str, int]:
        cursor.execute(
            sql(
                "SELECT customer_reference, user_id FROM activities_partnercustomerlink "
                "WHERE partner_id = %s AND customer_reference = ANY([[text]])"
            ),
            [partner_id, packed(references)],
        )
        return dict(cursor.fetchall())

    @staticmethod
    def people_state(cursor, source: str, user_ids: list[int]) -> dict[int, tuple]:
        """Per person: (account open, source authorized, when the active authorization was granted)."""
        cursor.execute(
            sql(
                """
                SELECT u.id, (u.is_active AND u.closed_at IS NULL), a.granted_at IS NOT NULL, a.granted_at
                FROM accounts_user u
                -- At most one active grant per person and source (a partial unique index).
                LEFT JOIN accounts_datasourceauthorization a
                    ON a.user_id = u.id AND a.source = %s AND a.revoked_at IS NULL
                WHERE u.id = ANY([[bigint]])
                """
            ),
            [source, packed(user_ids)],
        )
        return {
            user_id: (is_open, is_authorized, granted_at)
            for user_id, is_open, is_authorized, granted_at in cursor.fetchall()
        }

    @staticmethod
    def counters_lock(cursor, day_keys: list[tuple], month_keys: list[tuple]) -> tuple[dict, dict]:
        """Locks the existing day (and month) counter rows, in key order; returns what they hold."""
        day_counters: dict = {}
        month_counters: dict = {}
        if day_keys:
            users, behaviours, days = (list(column) for column in zip(*day_keys, strict=True))
            cursor.execute(
                sql(
                    """
                    SELECT c.user_id, c.behaviour_id, c.day, c.quantity, c.credited_carbon_mg
                    FROM (
                        SELECT * FROM unnest([[bigint]], [[bigint]], [[date]]) AS t(u, b, d) ORDER BY u, b, d
                    ) AS t
                    -- One index probe per key, locking in key order (never a scan of the whole table).
                    CROSS JOIN LATERAL (
                        SELECT * FROM activities_behaviourday c
                        WHERE c.user_id = t.u AND c.behaviour_id = t.b AND c.day = t.d
                        FOR UPDATE
                    ) AS c
                    """
                ),
                [packed(users), packed(behaviours), packed(days)],
            )
            day_counters = {
                (u, b, d): [quantity, credited] for u, b, d, quantity, credited in cursor.fetchall()
            }
        if month_keys:
            users, behaviours, months = (list(column) for column in zip(*month_keys, strict=True))
            cursor.execute(
                sql(
                    """
                    SELECT c.user_id, c.behaviour_id, c.month, c.credited_carbon_mg
                    FROM (
                        SELECT * FROM unnest([[bigint]], [[bigint]], [[date]]) AS t(u, b, m)
                        ORDER BY u, b, m
                    ) AS t
                    CROSS JOIN LATERAL (
                        SELECT * FROM activities_behaviourmonth c
                        WHERE c.user_id = t.u AND c.behaviour_id = t.b AND c.month = t.m
                        FOR UPDATE
                    ) AS c
                    """
                ),
                [packed(users), packed(behaviours), packed(months)],
            )
            month_counters = {(u, b, m): [credited] for u, b, m, credited in cursor.fetchall()}
        return day_counters, month_counters

    @staticmethod
    def counters_create(cursor, day_keys: list[tuple], month_keys: list[tuple]) -> None:
        """Creates the missing day (and month) counter rows empty, in key order."""
        if day_keys:
            cursor.execute(
                sql(
                    """
                    INSERT INTO activities_behaviourday
                        (user_id, behaviour_id, day, quantity, record_count, held_count, credited_carbon_mg)
                    SELECT u, b, d, 0, 0, 0, 0 FROM unnest([[bigint]], [[bigint]], [[date]]) AS t(u, b, d)
                    ORDER BY u, b, d
                    ON CONFLICT (user_id, behaviour_id, day) DO NOTHING
                    """
                ),
                [packed(list(column)) for column in zip(*day_keys, strict=True)],
            )
        if month_keys:
            cursor.execute(
                sql(
                    """
                    INSERT INTO activities_behaviourmonth (user_id, behaviour_id, month, credited_carbon_mg)
                    SELECT u, b, m, 0 FROM unnest([[bigint]], [[bigint]], [[date]]) AS t(u, b, m)
                    ORDER BY u, b, m
                    ON CONFLICT (user_id, behaviour_id, month) DO NOTHING
                    """
                ),
                [packed(list(column)) for column in zip(*month_keys, strict=True)],
            )

    @staticmethod
    def counters_raise(cursor, period: str, deltas: dict, created_here: set) -> None:
        """Adds the batch's totals to its counters; a row this batch meant to create but found is a race."""
        keys = sorted(deltas)
        columns = [list(column) for column in zip(*((*key, *deltas[key]) for key in keys), strict=True)]
        cursor.execute(UPSERT_DAYS if period == "day" else UPSERT_MONTHS, [packed(c) for c in columns])
        for user_id, behaviour_id, day_or_month, was_created in cursor.fetchall():
            if (user_id, behaviour_id, day_or_month) in created_here and not was_created:
                raise CounterRaceError

    @staticmethod
    def overlapping_trips(cursor, trips: list[tuple], trip_behaviour_ids: list[int]) -> set[int]:
        """Positions of `trips` (position, person, day, start, end) overlapping a stored trip."""
        positions, users, days, starts, ends = zip(*trips, strict=True)
        cursor.execute(
            sql(
                """
                SELECT t.position
                FROM unnest([[integer]], [[bigint]], [[date]], [[timestamptz]], [[timestamptz]])
                     AS t(position, user_id, day, started, ended)
                -- LATERAL … LIMIT 1: one index probe per incoming trip, never a scan of all records.
                CROSS JOIN LATERAL (
                    SELECT 1 FROM activities_activityrecord r
                    WHERE r.user_id = t.user_id AND r.local_day BETWEEN t.day - 1 AND t.day + 1
                      AND r.behaviour_id = ANY([[bigint]]) AND r.ended_at IS NOT NULL AND r.status <> %s
                      AND r.occurred_at < t.ended AND r.ended_at > t.started
                    LIMIT 1
                ) AS overlapping
                """
            ),
            [
                packed(positions),
                packed(users),
                packed(days),
                packed(starts),
                packed(ends),
                packed(trip_behaviour_ids),
                RecordStatus.REJECTED,
            ],
        )
        return {row[0] for row in cursor.fetchall()}

    @staticmethod
    def shared_devices(cursor, pairs: list[tuple[str, int]], max_accounts: int) -> set[str]:
        """Remembers which accounts each phone synced for; returns the phones shared by too many."""
        devices, users = (list(column) for column in zip(*pairs, strict=True))
        cursor.execute(
            sql(
                """
                INSERT INTO activities_deviceaccount (device_id, user_id, first_seen_at)
                SELECT d, u, now() FROM unnest([[text]], [[bigint]]) AS t(d, u)
                ON CONFLICT (device_id, user_id) DO NOTHING
                """
            ),
            [packed(devices), packed(users)],
        )
        cursor.execute(
            sql(
                "SELECT device_id FROM activities_deviceaccount WHERE device_id = ANY([[text]]) "
                "GROUP BY device_id HAVING count(*) > %s"
            ),
            [packed(sorted(set(devices))), max_accounts],
        )
        return {row[0] for row in cursor.fetchall()}

    @staticmethod
    def existing_ids(cursor, source: str, external_ids: list[str]) -> set[str]:
        cursor.execute(
            sql(
                "SELECT external_id FROM activities_activityrecord "
                "WHERE source = %s AND external_id = ANY([[text]])"
            ),
            [source, packed(external_ids)],
        )
        return {row[0] for row in cursor.fetchall()}

    @staticmethod
    def records_store(cursor, rows: list[tuple], source: str, partner_id: int | None, now) -> dict[str, int]:
        """Stores the records and raises DailyCarbon from the rows really inserted; returns their ids."""
        columns = list(zip(*rows, strict=True))
        cursor.execute(STORE_RECORDS, [*(packed(column) for column in columns), source, partner_id, now, now])
        return dict(cursor.fetchall())

    @staticmethod
    def second_reports_store(cursor, rows: list[tuple], source: str, partner_id: int | None, now) -> dict:
        columns = list(zip(*rows, strict=True))
        cursor.execute(
            SECOND_REPORTS_STORE, [source, partner_id, now, *(packed(column) for column in columns)]
        )
        return dict(cursor.fetchall())

    @staticmethod
    def instance_credited_reports(cursor, rows: list[tuple]) -> dict[int, int]:
        """Positions of `rows` (position, person, behaviour, key, bucket, time, tolerance) whose
        instance is already credited, with the credited record's id."""
        columns = list(zip(*rows, strict=True))
        cursor.execute(INSTANCE_CREDITED_REPORTS, [packed(column) for column in columns])
        return dict(cursor.fetchall())

    @staticmethod
    def rejections_add(cursor, source: str, partner_code: str, day: datetime.date, codes: Counter) -> None:
        names = sorted(codes)
        cursor.execute(
            """
            INSERT INTO activities_rejectiontally (source, partner_code, day, code, count)
            SELECT %s, %s, %s, c, n FROM unnest(%s::text[], %s::bigint[]) AS t(c, n) ORDER BY c
            ON CONFLICT (source, partner_code, day, code)
            DO UPDATE SET count = activities_rejectiontally.count + EXCLUDED.count
            """,
            [source, partner_code, day, names, [codes[name] for name in names]],
        )

    @staticmethod
    def step_days_raise(
        cursor, user_id: int, days: list[datetime.date], steps: list[int], now
    ) -> tuple[dict, dict]:
        """Raises each day's cumulative step count where it went up. Returns {day: (previous, steps)}
        for the days raised and {day: steps} stored for the others."""
        cursor.execute(
            """
            INSERT INTO activities_stepday (user_id, day, steps, previous_steps, updated_at)
            SELECT %s, d, s, 0, %s FROM unnest(%s::date[], %s::integer[]) AS t(d, s) ORDER BY d
            ON CONFLICT (user_id, day) DO UPDATE
            SET previous_steps = activities_stepday.steps, steps = EXCLUDED.steps,
                updated_at = EXCLUDED.updated_at
            WHERE activities_stepday.steps < EXCLUDED.steps
            RETURNING day, previous_steps, steps
            """,
            [user_id, now, days, steps],
        )
        raised = {day: (previous, count) for day, previous, count in cursor.fetchall()}
        unchanged = [day for day in days if day not in raised]
        stored: dict = {}
        if unchanged:
            cursor.execute(
                "SELECT day, steps FROM activities_stepday WHERE user_id = %s AND day = ANY(%s)",
                [user_id, unchanged],
            )
            stored = dict(cursor.fetchall())
        return raised, stored
