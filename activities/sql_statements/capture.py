"""Capture's batch path (`activities.ingest`): set-based statements over packed columns, with row
locks for concurrent writers; and the few single statements of `activities.services`."""

from __future__ import annotations

import datetime
from collections import Counter

from psycopg import sql

from activities.models import RecordStatus
from activities.sql_statements import packed, packed_array, packed_arrays

CUSTOMER_USERS = sql.SQL(
    "SELECT customer_reference, user_id FROM activities_partnercustomerlink "
    "WHERE partner_id = %s AND customer_reference = ANY({references})"
).format(references=packed_array("text"))

# The people a capture names (`{people}`: a condition on `u.id`; `{grant_people}`: the same people
# as a condition on `a.user_id`) and their active grants of the source (`%(source)s`), locked FOR
# SHARE in id order before anything else of the capture, as the CTEs `people` (id, is_open) and
# `grants` (user_id, granted_at). `{grant_people}` reads `people`, so the people are locked before
# their grants whatever order the plan runs the CTEs in. A merge (NO KEY UPDATE), an erasure
# (UPDATE) or a revocation of the source committing meanwhile is waited for and then seen (a row
# locked after a wait is read as it is now), and one starting meanwhile waits for the capture to
# commit. So no record is stored for an account merged away or erased, or of a source revoked, once
# that has returned; and an erasure never deadlocks with the person's own capture (both take the
# person's row first). Every capture path locks through it: a batch and step sync
# (`PEOPLE_STATE`), the bulk import (`bulk_import.IMPORT_PEOPLE_LOCK`).
PEOPLE_LOCKED = sql.SQL(
    """
    people AS (
        SELECT u.id, (u.is_active AND u.closed_at IS NULL) AS is_open
        FROM accounts_user u
        WHERE {people}
        ORDER BY u.id
        FOR SHARE
    ),
    -- At most one active grant per person and source (a partial unique index).
    grants AS (
        SELECT a.user_id, a.granted_at
        FROM accounts_datasourceauthorization a
        WHERE {grant_people} AND a.source = %(source)s AND a.revoked_at IS NULL
        ORDER BY a.user_id
        FOR SHARE
    )
    """
)

# A batch's people, locked (`PEOPLE_LOCKED`), with their state: (account open, source authorized,
# when the active grant was given).
PEOPLE_STATE = sql.SQL(
    """
    WITH {locked}
    SELECT p.id, p.is_open, g.granted_at IS NOT NULL, g.granted_at
    FROM people p
    LEFT JOIN grants g ON g.user_id = p.id
    """
).format(
    locked=PEOPLE_LOCKED.format(
        people=sql.SQL("u.id = ANY(%(user_ids)s::bigint[])"),
        # The grants by the person's index (not all of the source's joined to the batch), and of the
        # people locked, which makes the people's locks come first.
        grant_people=sql.SQL(
            "a.user_id = ANY(%(user_ids)s::bigint[]) AND a.user_id IN (SELECT id FROM people)"
        ),
    )
)

# Locks a batch's existing counter rows of one period (`{period}`: day or month) and reads them.
_COUNTERS_LOCK = sql.SQL(
    """
    SELECT c.user_id, c.behaviour_id, c.{period}, {columns}
    FROM (
        SELECT * FROM unnest({keys}) AS t(u, b, p) ORDER BY u, b, p
    ) AS t
    -- One index probe per key, locking in key order (never a scan of the whole table).
    CROSS JOIN LATERAL (
        SELECT * FROM {table} c
        WHERE c.user_id = t.u AND c.behaviour_id = t.b AND c.{period} = t.p
        FOR UPDATE
    ) AS c
"""
)

DAY_COUNTERS_LOCK = _COUNTERS_LOCK.format(
    period=sql.Identifier("day"),
    columns=sql.SQL("c.quantity, c.credited_carbon_mg"),
    keys=packed_arrays("bigint", "bigint", "date"),
    table=sql.Identifier("activities_behaviourday"),
)

MONTH_COUNTERS_LOCK = _COUNTERS_LOCK.format(
    period=sql.Identifier("month"),
    columns=sql.SQL("c.credited_carbon_mg"),
    keys=packed_arrays("bigint", "bigint", "date"),
    table=sql.Identifier("activities_behaviourmonth"),
)

DAY_COUNTERS_CREATE = sql.SQL(
    """
    INSERT INTO activities_behaviourday
        (user_id, behaviour_id, day, quantity, record_count, held_count, credited_carbon_mg)
    SELECT u, b, d, 0, 0, 0, 0 FROM unnest({keys}) AS t(u, b, d)
    ORDER BY u, b, d
    ON CONFLICT (user_id, behaviour_id, day) DO NOTHING
    """
).format(keys=packed_arrays("bigint", "bigint", "date"))

MONTH_COUNTERS_CREATE = sql.SQL(
    """
    INSERT INTO activities_behaviourmonth (user_id, behaviour_id, month, credited_carbon_mg)
    SELECT u, b, m, 0 FROM unnest({keys}) AS t(u, b, m)
    ORDER BY u, b, m
    ON CONFLICT (user_id, behaviour_id, month) DO NOTHING
    """
).format(keys=packed_arrays("bigint", "bigint", "date"))

UPSERT_DAYS = sql.SQL(
    """
    INSERT INTO activities_behaviourday AS b
        (user_id, behaviour_id, day, quantity, record_count, held_count, credited_carbon_mg)
    SELECT * FROM unnest({columns})
    ORDER BY 1, 2, 3
    ON CONFLICT (user_id, behaviour_id, day) DO UPDATE
    SET quantity = b.quantity + EXCLUDED.quantity,
        record_count = b.record_count + EXCLUDED.record_count,
        held_count = b.held_count + EXCLUDED.held_count,
        credited_carbon_mg = b.credited_carbon_mg + EXCLUDED.credited_carbon_mg
    RETURNING b.user_id, b.behaviour_id, b.day, (b.xmax = 0)
    """
).format(columns=packed_arrays("bigint", "bigint", "date", "numeric", "integer", "integer", "bigint"))

UPSERT_MONTHS = sql.SQL(
    """
    INSERT INTO activities_behaviourmonth AS m (user_id, behaviour_id, month, credited_carbon_mg)
    SELECT * FROM unnest({columns}) ORDER BY 1, 2, 3
    ON CONFLICT (user_id, behaviour_id, month) DO UPDATE
    SET credited_carbon_mg = m.credited_carbon_mg + EXCLUDED.credited_carbon_mg
    RETURNING m.user_id, m.behaviour_id, m.month, (m.xmax = 0)
    """
).format(columns=packed_arrays("bigint", "bigint", "date", "bigint"))

# A trip `t` (user_id, day, started, ended) overlaps a trip already stored for the same person: the
# hold rule `overlapping_trip` (`capture_rules`) says the same for the import's rows.
OVERLAPPING_TRIPS = sql.SQL(
    """
    SELECT t.position
    FROM unnest({trips}) AS t(position, user_id, day, started, ended)
    -- LATERAL … LIMIT 1: one index probe per incoming trip, never a scan of all records.
    CROSS JOIN LATERAL (
        SELECT 1 FROM activities_activityrecord r
        WHERE r.user_id = t.user_id AND r.local_day BETWEEN t.day - 1 AND t.day + 1
          AND r.behaviour_id = ANY({trip_behaviours}) AND r.ended_at IS NOT NULL AND r.status <> %s
          AND r.occurred_at < t.ended AND r.ended_at > t.started
        LIMIT 1
    ) AS overlapping
    """
).format(
    trips=packed_arrays("integer", "bigint", "date", "timestamptz", "timestamptz"),
    trip_behaviours=packed_array("bigint"),
)

DEVICE_ACCOUNTS_REMEMBER = sql.SQL(
    """
    INSERT INTO activities_deviceaccount (device_id, user_id, first_seen_at)
    SELECT d, u, now() FROM unnest({pairs}) AS t(d, u)
    ON CONFLICT (device_id, user_id) DO NOTHING
    """
).format(pairs=packed_arrays("text", "bigint"))

SHARED_DEVICES = sql.SQL(
    "SELECT device_id FROM activities_deviceaccount WHERE device_id = ANY({devices}) "
    "GROUP BY device_id HAVING count(*) > %s"
).format(devices=packed_array("text"))

EXISTING_IDS = sql.SQL(
    "SELECT external_id FROM activities_activityrecord WHERE source = %s AND external_id = ANY({ids})"
).format(ids=packed_array("text"))

# Stores the new records and, from the rows really inserted, raises DailyCarbon.
STORE_RECORDS = sql.SQL(
    """
    WITH incoming AS (
        SELECT * FROM unnest({columns}) AS t(
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
).format(
    columns=packed_arrays(
        "bigint", "bigint", "bigint", "text", "numeric", "timestamptz", "timestamptz?", "date", "text",
        "bigint", "bigint", "text", "text", "text", "timestamptz?", "text?", "bigint?",
    )
)  # fmt: skip

# The credited report of an instance (a live one: a rejected report holds nothing), for a row `t`
# (user_id, behaviour_id, instance_key, instance_bucket, occurred_at, tolerance in seconds or NULL):
# the same key in the same bucket or, with a tolerance, a neighbouring one within the tolerance. One
# probe of the unique index. The batch path and the bulk import both ask it.
INSTANCE_CREDITED_REPORT = sql.SQL(
    """
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
)

INSTANCE_CREDITED_REPORTS = sql.SQL(
    """
    SELECT t.position, p.id
    FROM unnest({rows})
         AS t(position, user_id, behaviour_id, instance_key, instance_bucket, occurred_at, tolerance)
    CROSS JOIN LATERAL ({credited_report}) AS p
    """
).format(
    rows=packed_arrays("integer", "bigint", "bigint", "text", "bigint", "timestamptz", "integer?"),
    credited_report=INSTANCE_CREDITED_REPORT,
)


def _source_rank(record: str) -> sql.Composable:
    """A record's source's rank in its factor's precedence (1 is preferred); unlisted ones after all."""
    return sql.SQL(
        "coalesce((SELECT e.n FROM jsonb_array_elements_text(f.source_precedence) WITH ORDINALITY"
        " AS e(s, n) WHERE e.s = {source}), 1000000)"
    ).format(source=sql.Identifier(record, "source"))


INSTANCE_CREDIT_MOVES = sql.SQL(
    """
    SELECT DISTINCT ON (p.id) d.id, p.id, p.credited_carbon_mg, p.capped_by, p.credited_at
    FROM activities_activityrecord d
    JOIN activities_activityrecord p ON p.id = d.duplicate_of_id
    JOIN activities_factor f ON f.id = p.factor_id
    WHERE d.id = ANY({ids}) AND p.status = 'credited' AND p.capped_at_merge_mg = 0
      AND p.user_id = d.user_id AND p.local_day = d.local_day AND p.gross_carbon_mg = d.gross_carbon_mg
      AND {second_rank} < {credited_rank}
    ORDER BY p.id, {second_rank}, d.id
    """
).format(ids=packed_array("bigint"), second_rank=_source_rank("d"), credited_rank=_source_rank("p"))

INSTANCE_CREDIT_DEMOTE = sql.SQL(
    """
    UPDATE activities_activityrecord r
    SET status = 'duplicate', credited_carbon_mg = 0, capped_by = '', credited_at = NULL,
        duplicate_of_id = m.new_id
    FROM unnest({moves}) AS m(new_id, old_id)
    WHERE r.id = m.old_id
    """
).format(moves=packed_arrays("bigint", "bigint"))

INSTANCE_CREDIT_PROMOTE = sql.SQL(
    """
    UPDATE activities_activityrecord r
    SET status = 'credited', credited_carbon_mg = m.credited, capped_by = m.capped_by,
        credited_at = m.credited_at, duplicate_of_id = NULL
    FROM unnest({moves}) AS m(new_id, old_id, credited, capped_by, credited_at)
    WHERE r.id = m.new_id
    """
).format(moves=packed_arrays("bigint", "bigint", "bigint", "text", "timestamptz?"))

INSTANCE_REPORTS_REPOINT = sql.SQL(
    """
    UPDATE activities_activityrecord r SET duplicate_of_id = m.new_id
    FROM unnest({moves}) AS m(new_id, old_id)
    WHERE r.duplicate_of_id = m.old_id AND r.id <> m.new_id
    """
).format(moves=packed_arrays("bigint", "bigint"))

# Reports of an instance that something else counts: stored crediting nothing, in no counter and no
# day's carbon, pointing (`{pointer}`) at what counts it.
_REPORTS_STORE = sql.SQL(
    """
    INSERT INTO activities_activityrecord
        (user_id, behaviour_id, factor_id, source, partner_id, external_id, quantity, occurred_at,
         ended_at, local_day, device_id, gross_carbon_mg, credited_carbon_mg, capped_by, status,
         hold_reason, created_at, credited_at, appeal_note, instance_key, instance_bucket, {pointer})
    SELECT user_id, behaviour_id, factor_id, %s, %s, external_id, quantity, occurred_at, ended_at,
           local_day, device_id, gross_carbon_mg, 0, '', 'duplicate', '', %s, NULL, '', instance_key,
           instance_bucket, points_at
    FROM unnest({columns}) AS t(
        user_id, behaviour_id, factor_id, external_id, quantity, occurred_at, ended_at, local_day,
        device_id, gross_carbon_mg, instance_key, instance_bucket, points_at
    )
    ON CONFLICT {conflict_target} DO NOTHING
    RETURNING external_id, id
    """
)
_REPORTS_COLUMNS = packed_arrays(
    "bigint", "bigint", "bigint", "text", "numeric", "timestamptz", "timestamptz?", "date", "text",
    "bigint", "text", "bigint", "bigint",
)  # fmt: skip

# Second reports of instances credited here, pointing at the credited report.
SECOND_REPORTS_STORE = _REPORTS_STORE.format(
    pointer=sql.Identifier("duplicate_of_id"),
    columns=_REPORTS_COLUMNS,
    conflict_target=sql.SQL("(external_id, source)"),
)

# Reports of instances another platform's imported statement counts here, pointing at its
# `ImportedInstance`. No conflict target: a record id, or a report of the instance, stored meanwhile
# leaves the row out, and the batch reruns.
IMPORTED_REPORTS_STORE = _REPORTS_STORE.format(
    pointer=sql.Identifier("imported_duplicate_of_id"),
    columns=_REPORTS_COLUMNS,
    conflict_target=sql.SQL(""),
)

REJECTIONS_ADD = sql.SQL(
    """
    INSERT INTO activities_rejectiontally (source, partner_code, day, code, count)
    SELECT %s, %s, %s, c, n FROM unnest(%s::text[], %s::bigint[]) AS t(c, n) ORDER BY c
    ON CONFLICT (source, partner_code, day, code)
    DO UPDATE SET count = activities_rejectiontally.count + EXCLUDED.count
    """
)

STEP_DAYS_RAISE = sql.SQL(
    """
    INSERT INTO activities_stepday (user_id, day, steps, previous_steps, updated_at)
    SELECT %s, d, s, 0, %s FROM unnest(%s::date[], %s::integer[]) AS t(d, s) ORDER BY d
    ON CONFLICT (user_id, day) DO UPDATE
    SET previous_steps = activities_stepday.steps, steps = EXCLUDED.steps,
        updated_at = EXCLUDED.updated_at
    WHERE activities_stepday.steps < EXCLUDED.steps
    RETURNING day, previous_steps, steps
    """
)

STEP_DAYS_STORED = sql.SQL("SELECT day, steps FROM activities_stepday WHERE user_id = %s AND day = ANY(%s)")

DAILY_CARBON_RAISE = sql.SQL(
    """
    INSERT INTO activities_dailycarbon
        (user_id, day, credited_carbon_mg, settled_carbon_mg, updated_at)
    VALUES (%s, %s, %s, 0, %s)
    ON CONFLICT (user_id, day) DO UPDATE
    SET credited_carbon_mg = activities_dailycarbon.credited_carbon_mg + EXCLUDED.credited_carbon_mg,
        updated_at = EXCLUDED.updated_at
    """
)


class CounterRaceError(Exception):
    """A counter row this batch expected to create was created by a concurrent batch: start again."""


def customer_users(cursor, partner_id: int, references: list[str]) -> dict[str, int]:
    cursor.execute(CUSTOMER_USERS, [partner_id, packed(references)])
    return dict(cursor.fetchall())


def people_state(cursor, source: str, user_ids: list[int]) -> dict[int, tuple]:
    """Per person, locked for the capture's transaction (`PEOPLE_STATE`): (account open, source
    authorized, when the active authorization was granted)."""
    cursor.execute(PEOPLE_STATE, {"source": source, "user_ids": list(user_ids)})
    return {
        user_id: (is_open, is_authorized, granted_at)
        for user_id, is_open, is_authorized, granted_at in cursor.fetchall()
    }


def _key_columns(keys: list[tuple]) -> list[str]:
    return [packed(column) for column in zip(*keys, strict=True)]


def counters_lock(cursor, day_keys: list[tuple], month_keys: list[tuple]) -> tuple[dict, dict]:
    """Locks the existing day (and month) counter rows, in key order; returns what they hold."""
    day_counters: dict = {}
    month_counters: dict = {}
    if day_keys:
        cursor.execute(DAY_COUNTERS_LOCK, _key_columns(day_keys))
        day_counters = {(u, b, d): [quantity, credited] for u, b, d, quantity, credited in cursor.fetchall()}
    if month_keys:
        cursor.execute(MONTH_COUNTERS_LOCK, _key_columns(month_keys))
        month_counters = {(u, b, m): [credited] for u, b, m, credited in cursor.fetchall()}
    return day_counters, month_counters


def counters_create(cursor, day_keys: list[tuple], month_keys: list[tuple]) -> None:
    """Creates the missing day (and month) counter rows empty, in key order."""
    if day_keys:
        cursor.execute(DAY_COUNTERS_CREATE, _key_columns(day_keys))
    if month_keys:
        cursor.execute(MONTH_COUNTERS_CREATE, _key_columns(month_keys))


def counters_raise(cursor, period: str, deltas: dict, created_here: set) -> None:
    """Adds the batch's totals to its counters; a row this batch meant to create but found is a race."""
    keys = sorted(deltas)
    columns = [list(column) for column in zip(*((*key, *deltas[key]) for key in keys), strict=True)]
    cursor.execute(UPSERT_DAYS if period == "day" else UPSERT_MONTHS, [packed(c) for c in columns])
    for user_id, behaviour_id, day_or_month, was_created in cursor.fetchall():
        if (user_id, behaviour_id, day_or_month) in created_here and not was_created:
            raise CounterRaceError


def overlapping_trips(cursor, trips: list[tuple], trip_behaviour_ids: list[int]) -> set[int]:
    """Positions of `trips` (position, person, day, start, end) overlapping a stored trip."""
    cursor.execute(
        OVERLAPPING_TRIPS,
        [*(packed(column) for column in zip(*trips, strict=True)), packed(trip_behaviour_ids),
         RecordStatus.REJECTED],
    )  # fmt: skip
    return {row[0] for row in cursor.fetchall()}


def shared_devices(cursor, pairs: list[tuple[str, int]], max_accounts: int) -> set[str]:
    """Remembers which accounts each phone synced for; returns the phones shared by too many."""
    devices, users = (list(column) for column in zip(*pairs, strict=True))
    cursor.execute(DEVICE_ACCOUNTS_REMEMBER, [packed(devices), packed(users)])
    cursor.execute(SHARED_DEVICES, [packed(sorted(set(devices))), max_accounts])
    return {row[0] for row in cursor.fetchall()}


def existing_ids(cursor, source: str, external_ids: list[str]) -> set[str]:
    cursor.execute(EXISTING_IDS, [source, packed(external_ids)])
    return {row[0] for row in cursor.fetchall()}


def records_store(cursor, rows: list[tuple], source: str, partner_id: int | None, now) -> dict[str, int]:
    """Stores the records and raises DailyCarbon from the rows really inserted; returns their ids."""
    columns = list(zip(*rows, strict=True))
    cursor.execute(STORE_RECORDS, [*(packed(column) for column in columns), source, partner_id, now, now])
    return dict(cursor.fetchall())


def second_reports_store(cursor, rows: list[tuple], source: str, partner_id: int | None, now) -> dict:
    """Stores second reports of instances credited here; returns {external id: id}."""
    return _reports_store(cursor, SECOND_REPORTS_STORE, rows, source, partner_id, now)


def imported_reports_store(cursor, rows: list[tuple], source: str, partner_id: int | None, now) -> dict:
    """Stores the reports of instances an imported statement counts; returns {external id: id}."""
    return _reports_store(cursor, IMPORTED_REPORTS_STORE, rows, source, partner_id, now)


def _reports_store(cursor, statement: sql.Composable, rows: list[tuple], source, partner_id, now) -> dict:
    columns = list(zip(*rows, strict=True))
    cursor.execute(statement, [source, partner_id, now, *(packed(column) for column in columns)])
    return dict(cursor.fetchall())


def instance_credited_reports(cursor, rows: list[tuple]) -> dict[int, int]:
    """Positions of `rows` (position, person, behaviour, key, bucket, time, tolerance) whose
    instance is already credited, with the credited record's id."""
    cursor.execute(INSTANCE_CREDITED_REPORTS, [packed(column) for column in zip(*rows, strict=True)])
    return dict(cursor.fetchall())


def instance_credit_moves(cursor, second_report_ids: list[int]) -> list[tuple]:
    """(second report, credited report, its credit, capped_by, credited_at) for each move the
    precedence allows, and the moves done: see `ingest.instance_credits_move`."""
    cursor.execute(INSTANCE_CREDIT_MOVES, [packed(second_report_ids)])
    moves = cursor.fetchall()
    if moves:
        columns = [packed(column) for column in zip(*moves, strict=True)]
        # In this order: the old credited report stops being the instance's credited one before the
        # new one becomes it (one credited report per instance, a unique index).
        cursor.execute(INSTANCE_CREDIT_DEMOTE, columns[:2])
        cursor.execute(INSTANCE_CREDIT_PROMOTE, columns)
        cursor.execute(INSTANCE_REPORTS_REPOINT, columns[:2])
    return moves


def rejections_add(cursor, source: str, partner_code: str, day: datetime.date, codes: Counter) -> None:
    names = sorted(codes)
    cursor.execute(REJECTIONS_ADD, [source, partner_code, day, names, [codes[name] for name in names]])


def step_days_raise(
    cursor, user_id: int, days: list[datetime.date], steps: list[int], now
) -> tuple[dict, dict]:
    """Raises each day's cumulative step count where it went up. Returns {day: (previous, steps)}
    for the days raised and {day: steps} stored for the others."""
    cursor.execute(STEP_DAYS_RAISE, [user_id, now, days, steps])
    raised = {day: (previous, count) for day, previous, count in cursor.fetchall()}
    unchanged = [day for day in days if day not in raised]
    stored: dict = {}
    if unchanged:
        cursor.execute(STEP_DAYS_STORED, [user_id, unchanged])
        stored = dict(cursor.fetchall())
    return raised, stored


def daily_carbon_raise(cursor, user_id: int, day: datetime.date, carbon_mg: int, now) -> None:
    cursor.execute(DAILY_CARBON_RAISE, [user_id, day, carbon_mg, now])
