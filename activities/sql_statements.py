"""Every raw SQL statement of activities, composed with `psycopg.sql`, and the functions that run them.

Named `sql_statements` rather than `statements` because `activities/statements/` is the package of
signed carbon statements (issued, verified and imported between platforms), which has nothing to do
with SQL. Three parts: capture's batch path (`ingest`), the bulk history import (`bulk_import`,
whose staging tables are its own), and the merge of two accounts (`personal_data`). Values always
travel as parameters; the only things composed into the text are constants of this module and of
`capture_rules`, the staging table's column names (`sql.Identifier`) and literals (`sql.Literal`).

Arrays go to PostgreSQL as one string per column, split on the unit separator by the server
(`string_to_array`): far cheaper than adapting thousands of Python values one by one. The string
starts with a separator and the SQL drops the first element, so a one-element array of '' survives.
"""

from __future__ import annotations

import datetime
from collections import Counter

from psycopg import sql

from activities.capture_rules import HOLD_RULES, first_broken_sql
from activities.models import RecordStatus

SEPARATOR = "\x1f"

# The element types a packed array may have (a type name is composed into the text, so only these).
_ARRAY_TYPES = {
    name: sql.SQL(name) for name in ("bigint", "integer", "numeric", "date", "text", "timestamptz")
}


def _text(value) -> str:
    if value.__class__ is str:
        return value
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, datetime.date) else str(value)


def packed(values) -> str:
    """A column of values as one string for `packed_array()`; None becomes NULL where the array allows it."""
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


def packed_array(sql_type: str) -> sql.Composable:
    """The SQL that turns one `packed()` parameter (`%s`) back into an array of `sql_type`; a type
    ending in `?` (`text?`) reads empty elements as NULL."""
    nullable = sql_type.endswith("?")
    return sql.SQL("((string_to_array(%s, chr(31){nulls}))[2:])::{type}[]").format(
        nulls=sql.SQL(", ''") if nullable else sql.SQL(""), type=_ARRAY_TYPES[sql_type.rstrip("?")]
    )


def packed_arrays(*sql_types: str) -> sql.Composable:
    """`packed_array` of each type, comma-separated: the arguments of an `unnest(…)`."""
    return sql.SQL(", ").join(packed_array(sql_type) for sql_type in sql_types)


# --- Capture: the batch path (`ingest`) -----------------------------------------------------------

CUSTOMER_USERS = sql.SQL(
    "SELECT customer_reference, user_id FROM activities_partnercustomerlink "
    "WHERE partner_id = %s AND customer_reference = ANY({references})"
).format(references=packed_array("text"))

PEOPLE_STATE = sql.SQL(
    """
    SELECT u.id, (u.is_active AND u.closed_at IS NULL), a.granted_at IS NOT NULL, a.granted_at
    FROM accounts_user u
    -- At most one active grant per person and source (a partial unique index).
    LEFT JOIN accounts_datasourceauthorization a
        ON a.user_id = u.id AND a.source = %s AND a.revoked_at IS NULL
    WHERE u.id = ANY({user_ids})
    """
).format(user_ids=packed_array("bigint"))

_COUNTERS_LOCK = """
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

DAY_COUNTERS_LOCK = sql.SQL(_COUNTERS_LOCK).format(
    period=sql.Identifier("day"),
    columns=sql.SQL("c.quantity, c.credited_carbon_mg"),
    keys=packed_arrays("bigint", "bigint", "date"),
    table=sql.Identifier("activities_behaviourday"),
)

MONTH_COUNTERS_LOCK = sql.SQL(_COUNTERS_LOCK).format(
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

# The credited report of an instance, for a row `t` (user_id, behaviour_id, instance_key,
# instance_bucket, occurred_at, tolerance in seconds or NULL): the same key in the same bucket or,
# with a tolerance, a neighbouring one within the tolerance. One probe of the unique index. The
# batch path and the bulk import both ask it.
INSTANCE_CREDITED_REPORT = sql.SQL(
    """
    SELECT r.id FROM activities_activityrecord r
    WHERE r.user_id = t.user_id AND r.behaviour_id = t.behaviour_id AND r.instance_key = t.instance_key
      AND r.duplicate_of_id IS NULL
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

# Second reports of instances: stored crediting nothing, pointing at the credited report. No counter
# and no day's carbon changes.
SECOND_REPORTS_STORE = sql.SQL(
    """
    INSERT INTO activities_activityrecord
        (user_id, behaviour_id, factor_id, source, partner_id, external_id, quantity, occurred_at,
         ended_at, local_day, device_id, gross_carbon_mg, credited_carbon_mg, capped_by, status,
         hold_reason, created_at, credited_at, appeal_note, instance_key, instance_bucket, duplicate_of_id)
    SELECT user_id, behaviour_id, factor_id, %s, %s, external_id, quantity, occurred_at, ended_at,
           local_day, device_id, gross_carbon_mg, 0, '', 'duplicate', '', %s, NULL, '', instance_key,
           instance_bucket, duplicate_of_id
    FROM unnest({columns}) AS t(
        user_id, behaviour_id, factor_id, external_id, quantity, occurred_at, ended_at, local_day,
        device_id, gross_carbon_mg, instance_key, instance_bucket, duplicate_of_id
    )
    ON CONFLICT (external_id, source) DO NOTHING
    RETURNING external_id, id
    """
).format(
    columns=packed_arrays(
        "bigint", "bigint", "bigint", "text", "numeric", "timestamptz", "timestamptz?", "date", "text",
        "bigint", "text", "bigint", "bigint",
    )
)  # fmt: skip

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
    """Per person: (account open, source authorized, when the active authorization was granted)."""
    cursor.execute(PEOPLE_STATE, [source, packed(user_ids)])
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
    columns = list(zip(*rows, strict=True))
    cursor.execute(SECOND_REPORTS_STORE, [source, partner_id, now, *(packed(column) for column in columns)])
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


# --- Capture: the bulk history import (`bulk_import`) ---------------------------------------------
#
# A chunk's staging tables are temporary and emptied by its commit (in place: no new files, no
# catalog changes per chunk, which parts side by side would contend on). `import_raw` has one text
# column per column of the file's header (c0, c1, …).

IMPORT_TABLES_DROP = sql.SQL(
    "DROP TABLE IF EXISTS import_raw, import_rows, import_checked, import_outcomes, import_factors, "
    "import_behaviours, import_factor_days, import_day_now, import_month_now"
)

IMPORT_TABLES_CREATE = sql.SQL(
    """
    CREATE TEMP TABLE import_raw (ordinal bigint, {raw_columns}) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE import_rows (
        ordinal bigint, record_id text, external_id text, customer_reference text,
        behaviour_id bigint, factor_id bigint, quantity numeric, occurred_at timestamptz,
        ended_at timestamptz, local_day date, gross_carbon_mg bigint, code text, detail text,
        instance_key text, instance_bucket bigint, tolerance integer
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE import_checked (
        ordinal bigint, record_id text, external_id text, behaviour_id bigint, factor_id bigint,
        quantity numeric, occurred_at timestamptz, ended_at timestamptz, local_day date,
        gross_carbon_mg bigint, detail text, instance_key text, instance_bucket bigint,
        tolerance integer, user_id bigint, code text, is_duplicate boolean,
        -- A second report of an instance: the stored record holding its credit, or the
        -- ordinal of the chunk's first report of it.
        credited_record_id bigint, first_report_ordinal bigint
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE import_outcomes (
        user_id bigint, behaviour_id bigint, factor_id bigint, external_id text, quantity numeric,
        occurred_at timestamptz, ended_at timestamptz, local_day date, month date,
        has_monthly_cap boolean, gross_carbon_mg bigint, credited_carbon_mg bigint, capped_by text,
        status text, hold_reason text, instance_key text, instance_bucket bigint
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE import_factors (
        factor_id bigint, behaviour_id bigint, behaviour_code text, allowed boolean,
        effective_from date, effective_until date, carbon_mg_per_unit bigint, daily_cap_mg bigint,
        monthly_cap_mg bigint, event_cap_mg bigint, sources text[], threshold numeric,
        is_trip boolean, is_step boolean, minimum_payment_fen bigint, instance_fields text[],
        tolerance integer
    );
    CREATE TEMP TABLE import_day_now (
        user_id bigint, behaviour_id bigint, day date, quantity numeric, credited_carbon_mg bigint
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE import_month_now (
        user_id bigint, behaviour_id bigint, month date, credited_carbon_mg bigint
    ) ON COMMIT DELETE ROWS;
    """
)

IMPORT_FACTORS_ADD = sql.SQL("INSERT INTO import_factors VALUES ({})").format(
    sql.SQL(", ").join([sql.Placeholder()] * 17)
)

# Each line finds its behaviour by code through this key (a probe per line, however the planner
# guesses the size of a fresh staging table); the planner learns both are small.
IMPORT_BEHAVIOURS_CREATE = sql.SQL(
    """
    CREATE TEMP TABLE import_behaviours (
        behaviour_code text PRIMARY KEY, behaviour_id bigint, allowed boolean
    );
    INSERT INTO import_behaviours
    SELECT DISTINCT behaviour_code, behaviour_id, allowed FROM import_factors;
    ANALYZE import_factors, import_behaviours;
    """
)

# The factor of each behaviour on each day from the first factor to today: one probe by key per
# line (a range join over the factors costs a comparison per factor and line). Lines of other
# days find their behaviour in import_behaviours and have no factor, or lie in the future.
IMPORT_FACTOR_DAYS_CREATE = sql.SQL(
    """
    CREATE TEMP TABLE import_factor_days (
        behaviour_code text, day date, behaviour_id bigint, allowed boolean, factor_id bigint,
        carbon_mg_per_unit bigint, source_allowed boolean, minimum_payment_fen bigint,
        instance_fields text[], tolerance integer,
        PRIMARY KEY (behaviour_code, day)
    );
    INSERT INTO import_factor_days
    SELECT b.behaviour_code, d.day::date, b.behaviour_id, b.allowed, f.factor_id,
           f.carbon_mg_per_unit, %(source)s = ANY(f.sources), f.minimum_payment_fen,
           nullif(f.instance_fields, '{}'), f.tolerance
    FROM import_behaviours b
    CROSS JOIN generate_series(
        (SELECT min(effective_from) FROM import_factors), %(last_day)s::date, interval '1 day'
    ) AS d(day)
    LEFT JOIN import_factors f
        ON f.behaviour_id = b.behaviour_id AND f.effective_from <= d.day
       AND (f.effective_until IS NULL OR d.day < f.effective_until)
    ORDER BY 1, 2;
    ANALYZE import_factor_days;
    """
)

# Mid-sized statements over temporary tables: compiling them (JIT) costs more than it saves, and
# their sorts fit in memory.
IMPORT_SESSION = sql.SQL(
    "SET LOCAL synchronous_commit = off; SET LOCAL jit = off; SET LOCAL work_mem = '64MB'"
)

IMPORT_STAGING_EMPTY = sql.SQL(
    "TRUNCATE import_raw, import_rows, import_checked, import_outcomes, import_day_now, import_month_now"
)

IMPORT_RAW_EMPTY = sql.SQL("TRUNCATE import_raw")
IMPORT_RAW_COUNT = sql.SQL("SELECT count(*) FROM import_raw")

IMPORT_LINES_UNTYPED = sql.SQL(
    "SELECT ordinal FROM import_raw r "
    "WHERE NOT EXISTS (SELECT 1 FROM import_rows i WHERE i.ordinal = r.ordinal)"
)

IMPORT_ROWS_COPY = sql.SQL(
    "COPY import_rows (ordinal, record_id, external_id, customer_reference, behaviour_id, factor_id, "
    "quantity, occurred_at, ended_at, local_day, gross_carbon_mg, code, detail, instance_key, "
    "instance_bucket, tolerance) FROM STDIN"
)

IMPORT_CREDITED_DAYS = sql.SQL(
    "SELECT DISTINCT user_id, local_day FROM import_outcomes "
    "WHERE status = %s AND credited_carbon_mg > 0 ORDER BY 1, 2"
)

IMPORT_TOTALS = sql.SQL(
    """
    SELECT (SELECT count(*) FILTER (WHERE status = 'credited') FROM import_outcomes),
           (SELECT count(*) FILTER (WHERE status = 'held') FROM import_outcomes),
           (SELECT count(*) FILTER (WHERE is_duplicate) FROM import_checked),
           (SELECT count(*) FILTER (WHERE code IS NULL AND NOT is_duplicate
                AND (credited_record_id IS NOT NULL OR first_report_ordinal IS NOT NULL))
            FROM import_checked)
    """
)

IMPORT_REJECTED = sql.SQL(
    "SELECT ordinal, record_id, code, detail FROM import_checked WHERE code IS NOT NULL ORDER BY ordinal"
)


def import_raw_column(header: list[str] | None, name: str) -> sql.Composable:
    """The staging column holding the file's column `name`, or NULL when the file has none."""
    if header and name in header:
        return sql.Identifier(f"c{header.index(name)}")
    return sql.SQL("NULL::text")


def import_raw_columns(width: int) -> list[sql.Composable]:
    return [sql.Identifier(f"c{index}") for index in range(width)]


def import_tables_create(width: int) -> sql.Composable:
    raw_columns = sql.SQL(", ").join(
        sql.SQL("{} text").format(column) for column in import_raw_columns(width)
    )
    return IMPORT_TABLES_CREATE.format(raw_columns=raw_columns)


def import_raw_copy(width: int) -> sql.Composable:
    return sql.SQL("COPY import_raw (ordinal, {}) FROM STDIN (FORMAT csv)").format(
        sql.SQL(", ").join(import_raw_columns(width))
    )


# Plainly well-formed fields: what PostgreSQL reads exactly as Python's parser does; anything else is
# read by Python. Checked with cheap string functions (bounded regular expressions are slow in
# PostgreSQL). A moment of that shape that is no date (30 February) fails its cast: the whole chunk
# is then read by Python.
DECIMAL = r"^[0-9]{1,12}(\.[0-9]{1,3})?$"
AMOUNT = r"^[0-9]{1,9}(\.[0-9]{1,2})?$"
MOMENT_SHAPES = sql.SQL(", ").join(
    sql.Literal(f"0000-00-00T00:00:00{fraction}{offset}")
    for fraction in ["", *("." + "0" * digits for digits in range(1, 7))]
    for offset in ("Z", "+00:00", "-00:00")
)


def _printable(column: sql.Composable, longest: int) -> sql.Composable:
    return sql.SQL("({column} !~ '[^ -~]' AND length({column}) BETWEEN 1 AND {longest})").format(
        column=column, longest=sql.Literal(longest)
    )


def _moment(column: sql.Composable) -> sql.Composable:
    return sql.SQL(
        "(translate({column}, '0123456789', '0000000000') IN ({shapes}) "
        "AND substr({column}, 1, 1) <> '0' AND substr({column}, 12, 2) < '24' "
        "AND substr({column}, 18, 2) < '60')"
    ).format(column=column, shapes=MOMENT_SHAPES)


def _plain_lines(header: list[str], instance_columns: list[sql.Composable], longest_instance_value: int):
    """The lines whose every field is plainly well-formed (the others are read by Python)."""
    column = lambda name: import_raw_column(header, name)  # noqa: E731
    ended_at, amount = column("ended_at"), column("amount")
    conditions = [
        _printable(column("id"), 100),
        _printable(column("customer_reference"), 64),
        sql.SQL("{} IS NOT NULL").format(column("behaviour")),
        sql.SQL("{} ~ {}").format(column("quantity"), sql.Literal(DECIMAL)),
        _moment(column("occurred_at")),
        sql.SQL("({ended_at} IS NULL OR {ended_at} = '' OR {moment})").format(
            ended_at=ended_at, moment=_moment(ended_at)
        ),
        sql.SQL("({amount} IS NULL OR {amount} = '' OR {amount} ~ {pattern})").format(
            amount=amount, pattern=sql.Literal(AMOUNT)
        ),
        *(
            sql.SQL("(coalesce({column}, '') = '' OR {printable})").format(
                column=instance, printable=_printable(instance, longest_instance_value)
            )
            for instance in instance_columns
        ),
    ]
    return sql.SQL(" AND ").join(conditions)


# A line's instance key from its values (the rule of `methodology.instance_identity`): every declared
# field present and not blank once trimmed, or no key; ASCII letters upper-cased.
_INSTANCE_KEY = sql.SQL(
    """
    (SELECT CASE WHEN count(*) = count(v) THEN encode(sha256(convert_to(
                string_agg(v, chr(31) ORDER BY n), 'UTF8')), 'hex') END
     FROM (SELECT nullif(translate(btrim(r.instance_values ->> u.f, ' '),
                                   'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'), '')
                  AS v, u.n
           FROM unnest(r.instance_fields) WITH ORDINALITY AS u(f, n)) AS vals)
    """
)


def _instance(instance_columns: dict[str, sql.Composable]) -> tuple[sql.Composable, sql.Composable, dict]:
    """A line's instance values (jsonb), the SQL of its instance key and time bucket, and their
    parameters: the header's field names go in as values, never as SQL text."""
    if not instance_columns:
        return (
            sql.SQL("NULL::jsonb"),
            sql.SQL("NULL::text AS instance_key, NULL::bigint AS instance_bucket"),
            {},
        )
    values = sql.SQL("jsonb_build_object({})").format(
        sql.SQL(", ").join(
            sql.SQL("{}::text, {}").format(sql.Placeholder(f"instance_field_{n}"), column)
            for n, column in enumerate(instance_columns.values())
        )
    )
    parameters = {f"instance_field_{n}": name for n, name in enumerate(instance_columns)}
    key_and_bucket = sql.SQL(
        """CASE WHEN r.instance_fields IS NOT NULL AND r.broken IS NULL THEN {key} END AS instance_key,
           CASE WHEN r.tolerance IS NULL THEN 0
                ELSE floor(extract(epoch FROM r.occurred_at) / r.tolerance)::bigint
           END AS instance_bucket"""
    ).format(key=_INSTANCE_KEY)
    return values, key_and_bucket, parameters


# Types and checks the plainly well-formed lines: the record rules of `capture_rules`, in their
# order (the first broken one's code and detail come from the arrays `rule_codes`, `rule_details`).
# `OFFSET 0` keeps each typed field computed once per line (a flattened subquery would cast the
# moment again in every expression that uses it).
_IMPORT_PLAIN_LINES_TYPE = sql.SQL(
    """
    INSERT INTO import_rows
    SELECT ordinal, record_id, external_id, customer_reference, behaviour_id, factor_id, quantity,
           occurred_at, ended_at, local_day, gross_carbon_mg,
           (%(rule_codes)s::text[])[broken],
           coalesce((%(rule_details)s::text[])[broken], ''),
           CASE WHEN broken IS NULL THEN instance_key END,
           CASE WHEN broken IS NULL THEN instance_bucket END,
           CASE WHEN broken IS NULL THEN tolerance END
    FROM (
    SELECT r.*, {instance_key_and_bucket}
    FROM (
    SELECT r.ordinal, r.record_id, %(prefix)s || r.record_id AS external_id, r.customer_reference,
           r.behaviour_id, r.factor_id, r.quantity, r.occurred_at, r.ended_at, r.local_day,
           floor(r.quantity * r.carbon_mg_per_unit) AS gross_carbon_mg,
           r.instance_fields, r.tolerance, r.instance_values,
           {record_rules} AS broken
    FROM (
        SELECT t.*,
               -- Only a line of a day outside the factor days looks its behaviour up by code.
               coalesce(d.behaviour_id, (
                   SELECT b.behaviour_id FROM import_behaviours b WHERE b.behaviour_code = t.behaviour
               )) AS behaviour_id,
               coalesce(d.allowed, (
                   SELECT b.allowed FROM import_behaviours b WHERE b.behaviour_code = t.behaviour
               )) AS allowed,
               d.factor_id, d.carbon_mg_per_unit, d.source_allowed, d.minimum_payment_fen,
               d.instance_fields, d.tolerance
        FROM (
            SELECT *, (occurred_at AT TIME ZONE %(time_zone)s)::date AS local_day
            FROM (
                SELECT ordinal, {id} AS record_id, {customer_reference} AS customer_reference,
                       {behaviour} AS behaviour, {quantity}::numeric AS quantity,
                       {occurred_at}::timestamptz AS occurred_at,
                       nullif({ended_at}, '')::timestamptz AS ended_at,
                       nullif({amount}, '')::numeric AS amount,
                       {instance_values} AS instance_values
                FROM import_raw WHERE {plain}
                OFFSET 0
            ) AS typed
        ) AS t
        LEFT JOIN import_factor_days AS d ON d.behaviour_code = t.behaviour AND d.day = t.local_day
        OFFSET 0
    ) AS r
    OFFSET 0
    ) AS r
    OFFSET 0
    ) AS checked
    """
)


def import_plain_lines_type(
    header: list[str], record_rules: sql.Composable, longest_instance_value: int
) -> tuple[sql.Composable, dict]:
    """The statement typing and checking the plain lines of a file with this header, and the
    parameters it needs besides the rules' (`instance_field_<n>`: the header's instance fields)."""
    instance_columns = {
        name.removeprefix("instance."): sql.Identifier(f"c{index}")
        for index, name in enumerate(header)
        if name.startswith("instance.")
    }
    instance_values, key_and_bucket, parameters = _instance(instance_columns)
    column = lambda name: import_raw_column(header, name)  # noqa: E731
    statement = _IMPORT_PLAIN_LINES_TYPE.format(
        instance_key_and_bucket=key_and_bucket,
        record_rules=record_rules,
        id=column("id"),
        customer_reference=column("customer_reference"),
        behaviour=column("behaviour"),
        quantity=column("quantity"),
        occurred_at=column("occurred_at"),
        ended_at=column("ended_at"),
        amount=column("amount"),
        instance_values=instance_values,
        plain=_plain_lines(header, list(instance_columns.values()), longest_instance_value),
    )
    return statement, parameters


# Customers, consent and account state (the person rules of `capture_rules`, as the row `p`), and
# duplicates: stored, or earlier in the chunk.
_IMPORT_PEOPLE_AND_DUPLICATES_CHECK = sql.SQL(
    """
    INSERT INTO import_checked
    WITH c AS MATERIALIZED (
        SELECT r.ordinal, r.record_id, r.external_id, r.behaviour_id, r.factor_id, r.quantity,
               r.occurred_at, r.ended_at, r.local_day, r.gross_carbon_mg, r.detail, r.instance_key,
               r.instance_bucket, r.tolerance, l.user_id,
               CASE WHEN r.code IS NOT NULL THEN r.code
                    ELSE (%(person_codes)s::text[])[{person_rules}] END AS code
        FROM import_rows r
        LEFT JOIN activities_partnercustomerlink l
            ON r.code IS NULL AND l.partner_id = %(partner)s
           AND l.customer_reference = r.customer_reference
        LEFT JOIN accounts_user u ON u.id = l.user_id
        -- At most one active grant per person and source (a partial unique index).
        LEFT JOIN accounts_datasourceauthorization a
            ON a.user_id = l.user_id AND a.source = %(source)s AND a.revoked_at IS NULL
        CROSS JOIN LATERAL (
            SELECT l.user_id IS NOT NULL AS is_known,
                   coalesce(u.is_active AND u.closed_at IS NULL, false) AS is_open,
                   a.granted_at IS NOT NULL AS is_authorized, a.granted_at, r.occurred_at,
                   true AS from_partner
        ) AS p
    ),
    -- A record id that comes again in the chunk (rare: found by hashing, not by sorting every
    -- line): its first occurrence in time is kept, the others are duplicates.
    again AS (
        SELECT ordinal FROM (
            SELECT ordinal,
                   row_number() OVER (PARTITION BY external_id ORDER BY occurred_at, ordinal) AS nth
            FROM c
            WHERE code IS NULL AND external_id IN (
                SELECT external_id FROM c WHERE code IS NULL GROUP BY external_id HAVING count(*) > 1
            )
        ) AS numbered
        WHERE nth > 1
    )
    SELECT c.*, (c.code IS NULL AND (
               c.ordinal IN (SELECT ordinal FROM again)
               OR EXISTS (SELECT 1 FROM activities_activityrecord e
                          WHERE e.external_id = c.external_id AND e.source = %(source)s)
           )) AS is_duplicate, NULL::bigint, NULL::bigint
    FROM c
    """
)


def import_people_and_duplicates_check(person_rules: sql.Composable) -> sql.Composable:
    return _IMPORT_PEOPLE_AND_DUPLICATES_CHECK.format(person_rules=person_rules)


IMPORT_COUNTERS_CREATE = sql.SQL(
    """
    INSERT INTO activities_behaviourday
        (user_id, behaviour_id, day, quantity, record_count, held_count, credited_carbon_mg)
    SELECT DISTINCT user_id, behaviour_id, local_day, 0, 0, 0, 0 FROM import_checked
    WHERE code IS NULL AND NOT is_duplicate ORDER BY 1, 2, 3
    ON CONFLICT (user_id, behaviour_id, day) DO NOTHING;
    INSERT INTO activities_behaviourmonth (user_id, behaviour_id, month, credited_carbon_mg)
    SELECT DISTINCT k.user_id, k.behaviour_id, date_trunc('month', k.local_day)::date, 0
    FROM import_checked k JOIN import_factors f ON f.factor_id = k.factor_id
    WHERE k.code IS NULL AND NOT k.is_duplicate AND f.monthly_cap_mg IS NOT NULL ORDER BY 1, 2, 3
    ON CONFLICT (user_id, behaviour_id, month) DO NOTHING;
    """
)

IMPORT_COUNTERS_LOCK = sql.SQL(
    """
    INSERT INTO import_day_now
    SELECT c.user_id, c.behaviour_id, c.day, c.quantity, c.credited_carbon_mg
    FROM (
        SELECT DISTINCT user_id, behaviour_id, local_day FROM import_checked
        WHERE code IS NULL AND NOT is_duplicate ORDER BY 1, 2, 3
    ) AS k
    CROSS JOIN LATERAL (
        SELECT * FROM activities_behaviourday c
        WHERE c.user_id = k.user_id AND c.behaviour_id = k.behaviour_id AND c.day = k.local_day
        FOR UPDATE
    ) AS c;
    INSERT INTO import_month_now
    SELECT c.user_id, c.behaviour_id, c.month, c.credited_carbon_mg
    FROM (
        SELECT DISTINCT k.user_id, k.behaviour_id, date_trunc('month', k.local_day)::date AS month
        FROM import_checked k JOIN import_factors f ON f.factor_id = k.factor_id
        WHERE k.code IS NULL AND NOT k.is_duplicate AND f.monthly_cap_mg IS NOT NULL ORDER BY 1, 2, 3
    ) AS k
    CROSS JOIN LATERAL (
        SELECT * FROM activities_behaviourmonth c
        WHERE c.user_id = k.user_id AND c.behaviour_id = k.behaviour_id AND c.month = k.month
        FOR UPDATE
    ) AS c;
    """
)

# The second reports of instances (`ingest._instance_twins`), once the counters are locked. A report
# of an instance already credited (`INSTANCE_CREDITED_REPORT`) points at that record; of the others,
# the chunk's reports of one instance that follow each other within the time tolerance (any gap,
# without one) point at the first of them.
IMPORT_INSTANCES_CHECK = sql.SQL(
    """
    UPDATE import_checked k SET credited_record_id = p.id
    FROM import_checked t
    CROSS JOIN LATERAL ({credited_report}) AS p
    WHERE t.ordinal = k.ordinal AND t.code IS NULL AND NOT t.is_duplicate
      AND t.instance_key IS NOT NULL;

    WITH keyed AS (
        SELECT ordinal, user_id, behaviour_id, instance_key, occurred_at,
               lag(occurred_at) OVER instance AS previous_at,
               tolerance
        FROM import_checked
        WHERE code IS NULL AND NOT is_duplicate AND instance_key IS NOT NULL
          AND credited_record_id IS NULL
        WINDOW instance AS (
            PARTITION BY user_id, behaviour_id, instance_key ORDER BY occurred_at, ordinal
        )
    ),
    clustered AS (
        SELECT *, sum(CASE WHEN previous_at IS NULL OR (tolerance IS NOT NULL
                                AND occurred_at - previous_at > make_interval(secs => tolerance))
                           THEN 1 ELSE 0 END) OVER (
                   PARTITION BY user_id, behaviour_id, instance_key ORDER BY occurred_at, ordinal
               ) AS cluster
        FROM keyed
    ),
    firsts AS (
        SELECT ordinal, first_value(ordinal) OVER (
                   PARTITION BY user_id, behaviour_id, instance_key, cluster
                   ORDER BY occurred_at, ordinal
               ) AS first_ordinal
        FROM clustered
    )
    UPDATE import_checked k SET first_report_ordinal = f.first_ordinal
    FROM firsts f WHERE k.ordinal = f.ordinal AND f.first_ordinal <> f.ordinal;
    """
).format(credited_report=INSTANCE_CREDITED_REPORT)

# The monthly caps' step of the outcomes, and its pass-through when the partner's behaviours have none.
_MONTH_CAPPED = sql.SQL(
    """
    SELECT *,
           CASE WHEN monthly_cap_mg IS NULL THEN after_day
                ELSE greatest(0, least(
                    after_day,
                    monthly_cap_mg - month_credited - coalesce(sum(after_day) OVER (
                        PARTITION BY user_id, behaviour_id, month ORDER BY occurred_at, ordinal
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)))
           END AS credited_carbon_mg
    FROM day_capped
    """
)
_MONTH_UNCAPPED = sql.SQL("SELECT *, after_day AS credited_carbon_mg FROM day_capped")

# Holds (the hold rules of `capture_rules`, as the row `h`; a history file names no phone, so no
# device is shared) and caps of every fresh record, in the order things happened (`ingest._credit`).
_IMPORT_OUTCOMES_WORK_OUT = sql.SQL(
    """
    INSERT INTO import_outcomes
    WITH fresh AS (
        SELECT k.*, f.daily_cap_mg, f.monthly_cap_mg, f.event_cap_mg, f.is_trip, f.is_step,
               date_trunc('month', k.local_day)::date AS month,
               f.threshold IS NOT NULL AND coalesce(d.quantity, 0) + sum(k.quantity) OVER (
                   PARTITION BY k.user_id, k.behaviour_id, k.local_day
                   ORDER BY k.occurred_at, k.ordinal ROWS UNBOUNDED PRECEDING
               ) > f.threshold AS over_threshold,
               coalesce(d.credited_carbon_mg, 0) AS day_credited,
               coalesce(m.credited_carbon_mg, 0) AS month_credited
        FROM import_checked k
        JOIN import_factors f ON f.factor_id = k.factor_id
        LEFT JOIN import_day_now d
            ON d.user_id = k.user_id AND d.behaviour_id = k.behaviour_id AND d.day = k.local_day
        LEFT JOIN import_month_now m
            ON m.user_id = k.user_id AND m.behaviour_id = k.behaviour_id
           AND m.month = date_trunc('month', k.local_day)::date
        WHERE k.code IS NULL AND NOT k.is_duplicate
          AND k.credited_record_id IS NULL AND k.first_report_ordinal IS NULL
    ),
    trips AS (
        -- Trips join the person's intervals unless already held by a threshold (as in `_credit`).
        SELECT *, is_trip AND ended_at IS NOT NULL AND NOT over_threshold AS is_interval FROM fresh
    ),
    overlapped AS (
        SELECT *,
               CASE WHEN ended_at > occurred_at
                    THEN max(ended_at) FILTER (WHERE is_interval) OVER (
                        PARTITION BY user_id ORDER BY occurred_at, ordinal
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                    ELSE max(ended_at) FILTER (WHERE is_interval) OVER (
                        PARTITION BY user_id ORDER BY occurred_at
                        RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP)
               END > occurred_at AS overlaps_earlier,
               false AS device_shared
        FROM trips
    ),
    -- Materialized: each record's overlap probe runs once, not once per use of its hold reason.
    holds AS MATERIALIZED (
        SELECT h.*, coalesce((%(hold_reasons)s::text[])[{hold_rules}], '') AS hold_reason
        FROM overlapped h
    ),
    event_capped AS (
        SELECT *,
               CASE WHEN hold_reason <> '' THEN 0
                    WHEN gross_carbon_mg > event_cap_mg THEN event_cap_mg
                    ELSE gross_carbon_mg END AS after_event
        FROM holds
    ),
    day_capped AS (
        -- Greedy fill of the day's room: the records before this one took what they could.
        SELECT *,
               CASE WHEN daily_cap_mg IS NULL THEN after_event
                    ELSE greatest(0, least(
                        after_event,
                        daily_cap_mg - day_credited - coalesce(sum(after_event) OVER (
                            PARTITION BY user_id, behaviour_id, local_day
                            ORDER BY occurred_at, ordinal
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)))
               END AS after_day
        FROM event_capped
    ),
    month_capped AS ({month_capped})
    SELECT user_id, behaviour_id, factor_id, external_id, quantity, occurred_at, ended_at, local_day,
           month, monthly_cap_mg IS NOT NULL AS has_monthly_cap, gross_carbon_mg, credited_carbon_mg,
           CASE WHEN hold_reason <> '' THEN ''
                WHEN credited_carbon_mg < after_day THEN %(cap_month)s
                WHEN after_day < after_event THEN %(cap_day)s
                WHEN gross_carbon_mg > event_cap_mg THEN %(cap_event)s
                ELSE '' END AS capped_by,
           CASE WHEN hold_reason <> '' THEN %(held)s ELSE %(credited)s END AS status,
           hold_reason, instance_key, instance_bucket
    FROM month_capped
    """
)

IMPORT_OUTCOMES_WORK_OUT = _IMPORT_OUTCOMES_WORK_OUT.format(
    hold_rules=first_broken_sql(HOLD_RULES), month_capped=_MONTH_CAPPED
)
IMPORT_OUTCOMES_WORK_OUT_NO_MONTHLY_CAPS = _IMPORT_OUTCOMES_WORK_OUT.format(
    hold_rules=first_broken_sql(HOLD_RULES), month_capped=_MONTH_UNCAPPED
)

# Counters first, then records and DailyCarbon: the lock order of every writer. Each counter upsert
# counts the rows this chunk meant to create (they did not exist when locking) but found: a race.
IMPORT_DAY_COUNTERS_RAISE = sql.SQL(
    """
    WITH raised AS (
        INSERT INTO activities_behaviourday AS b
            (user_id, behaviour_id, day, quantity, record_count, held_count, credited_carbon_mg)
        SELECT user_id, behaviour_id, local_day, sum(quantity), count(*),
               count(*) FILTER (WHERE status = %(held)s), sum(credited_carbon_mg)
        FROM import_outcomes GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (user_id, behaviour_id, day) DO UPDATE
        SET quantity = b.quantity + EXCLUDED.quantity,
            record_count = b.record_count + EXCLUDED.record_count,
            held_count = b.held_count + EXCLUDED.held_count,
            credited_carbon_mg = b.credited_carbon_mg + EXCLUDED.credited_carbon_mg
        RETURNING b.user_id, b.behaviour_id, b.day, (b.xmax = 0) AS was_created
    )
    SELECT count(*) FROM raised r
    WHERE NOT r.was_created AND NOT EXISTS (
        SELECT 1 FROM import_day_now d
        WHERE d.user_id = r.user_id AND d.behaviour_id = r.behaviour_id AND d.day = r.day
    )
    """
)

IMPORT_MONTH_COUNTERS_RAISE = sql.SQL(
    """
    WITH raised AS (
        INSERT INTO activities_behaviourmonth AS m (user_id, behaviour_id, month, credited_carbon_mg)
        SELECT user_id, behaviour_id, month, sum(credited_carbon_mg)
        FROM import_outcomes WHERE has_monthly_cap AND status = %(credited)s
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (user_id, behaviour_id, month) DO UPDATE
        SET credited_carbon_mg = m.credited_carbon_mg + EXCLUDED.credited_carbon_mg
        RETURNING m.user_id, m.behaviour_id, m.month, (m.xmax = 0) AS was_created
    )
    SELECT count(*) FROM raised r
    WHERE NOT r.was_created AND NOT EXISTS (
        SELECT 1 FROM import_month_now n
        WHERE n.user_id = r.user_id AND n.behaviour_id = r.behaviour_id AND n.month = r.month
    )
    """
)

IMPORT_RECORDS_STORE = sql.SQL(
    """
    WITH inserted AS (
        INSERT INTO activities_activityrecord
            (user_id, behaviour_id, factor_id, source, partner_id, external_id, quantity, occurred_at,
             ended_at, local_day, device_id, gross_carbon_mg, credited_carbon_mg, capped_by, status,
             hold_reason, created_at, credited_at, appeal_note, instance_key, instance_bucket)
        SELECT user_id, behaviour_id, factor_id, %(source)s, %(partner)s, external_id, quantity,
               occurred_at, ended_at, local_day, '', gross_carbon_mg, credited_carbon_mg, capped_by,
               status, hold_reason, %(now)s,
               CASE WHEN status = %(credited)s THEN %(now)s::timestamptz END, '', instance_key,
               CASE WHEN instance_key IS NOT NULL THEN instance_bucket END
        FROM import_outcomes
        -- No conflict target: a record id, or a credited report of the same instance, stored
        -- meanwhile (`one_credited_report_per_instance`) leaves the row out.
        ON CONFLICT DO NOTHING
        RETURNING user_id, local_day, credited_carbon_mg
    ),
    daily AS (
        INSERT INTO activities_dailycarbon
            (user_id, day, credited_carbon_mg, settled_carbon_mg, updated_at)
        SELECT user_id, local_day, sum(credited_carbon_mg), 0, %(now)s
        FROM inserted WHERE credited_carbon_mg > 0
        GROUP BY user_id, local_day ORDER BY user_id, local_day
        ON CONFLICT (user_id, day) DO UPDATE
        SET credited_carbon_mg =
                activities_dailycarbon.credited_carbon_mg + EXCLUDED.credited_carbon_mg,
            updated_at = EXCLUDED.updated_at
    )
    SELECT (SELECT count(*) FROM inserted) = (SELECT count(*) FROM import_outcomes)
    """
)

IMPORT_SECOND_REPORTS_STORE = sql.SQL(
    """
    WITH expected AS (
        SELECT k.*, coalesce(k.credited_record_id, p.id) AS duplicate_of_id
        FROM import_checked k
        LEFT JOIN import_checked f ON f.ordinal = k.first_report_ordinal
        LEFT JOIN activities_activityrecord p
            ON p.external_id = f.external_id AND p.source = %(source)s
        WHERE k.code IS NULL AND NOT k.is_duplicate
          AND (k.credited_record_id IS NOT NULL OR k.first_report_ordinal IS NOT NULL)
    ),
    inserted AS (
        INSERT INTO activities_activityrecord
            (user_id, behaviour_id, factor_id, source, partner_id, external_id, quantity, occurred_at,
             ended_at, local_day, device_id, gross_carbon_mg, credited_carbon_mg, capped_by, status,
             hold_reason, created_at, credited_at, appeal_note, instance_key, instance_bucket,
             duplicate_of_id)
        SELECT user_id, behaviour_id, factor_id, %(source)s, %(partner)s, external_id, quantity,
               occurred_at, ended_at, local_day, '', gross_carbon_mg, 0, '', %(duplicate)s, '',
               %(now)s, NULL, '', instance_key, instance_bucket, duplicate_of_id
        FROM expected ORDER BY ordinal
        ON CONFLICT (external_id, source) DO NOTHING
        RETURNING id
    )
    SELECT (SELECT count(*) FROM expected), array(SELECT id FROM inserted ORDER BY id)
    """
)


# --- The merge of two accounts (`personal_data.accounts_merge`) -----------------------------------

MERGED_STEP_DAYS_ADD = sql.SQL(
    """
    INSERT INTO activities_stepday (user_id, day, steps, previous_steps, updated_at)
    SELECT %s, day, steps, previous_steps, updated_at FROM activities_stepday WHERE user_id = %s
    ORDER BY day
    ON CONFLICT (user_id, day) DO UPDATE
    SET steps = CASE WHEN EXCLUDED.steps > activities_stepday.steps
                THEN EXCLUDED.steps ELSE activities_stepday.steps END
    """
)

MERGED_DEVICES_ADD = sql.SQL(
    """
    INSERT INTO activities_deviceaccount (device_id, user_id, first_seen_at)
    SELECT device_id, %s, first_seen_at FROM activities_deviceaccount WHERE user_id = %s
    ON CONFLICT (device_id, user_id) DO NOTHING
    """
)

MERGED_BEHAVIOUR_DAYS_ADD = sql.SQL(
    """
    INSERT INTO activities_behaviourday
        (user_id, behaviour_id, day, quantity, record_count, held_count, credited_carbon_mg)
    SELECT %s, behaviour_id, day, quantity, record_count, held_count, credited_carbon_mg
    FROM activities_behaviourday WHERE user_id = %s ORDER BY behaviour_id, day
    ON CONFLICT (user_id, behaviour_id, day) DO UPDATE
    SET quantity = activities_behaviourday.quantity + EXCLUDED.quantity,
        record_count = activities_behaviourday.record_count + EXCLUDED.record_count,
        held_count = activities_behaviourday.held_count + EXCLUDED.held_count,
        credited_carbon_mg = activities_behaviourday.credited_carbon_mg + EXCLUDED.credited_carbon_mg
    """
)

MERGED_BEHAVIOUR_MONTHS_ADD = sql.SQL(
    """
    INSERT INTO activities_behaviourmonth (user_id, behaviour_id, month, credited_carbon_mg)
    SELECT %s, behaviour_id, month, credited_carbon_mg
    FROM activities_behaviourmonth WHERE user_id = %s ORDER BY behaviour_id, month
    ON CONFLICT (user_id, behaviour_id, month) DO UPDATE
    SET credited_carbon_mg =
        activities_behaviourmonth.credited_carbon_mg + EXCLUDED.credited_carbon_mg
    """
)

MERGED_DAILY_CARBON_ADD = sql.SQL(
    """
    INSERT INTO activities_dailycarbon
        (user_id, day, credited_carbon_mg, settled_carbon_mg, updated_at)
    SELECT %s, day, credited_carbon_mg, settled_carbon_mg, %s
    FROM activities_dailycarbon WHERE user_id = %s ORDER BY day
    ON CONFLICT (user_id, day) DO UPDATE
    SET credited_carbon_mg = activities_dailycarbon.credited_carbon_mg + EXCLUDED.credited_carbon_mg,
        settled_carbon_mg = activities_dailycarbon.settled_carbon_mg + EXCLUDED.settled_carbon_mg,
        updated_at = EXCLUDED.updated_at
    """
)

# After a merge the caps hold per person: each (behaviour, day) and (behaviour, month) of the merged
# person is filled again in the order things happened, as capture fills it (`ingest.apply_caps`),
# from what each record credits now (a merge never raises a record). What no longer fits is taken
# off the record (its `capped_by` says which cap, `capped_at_merge_mg` how much), the counters and
# the day's credited carbon. A day's settled carbon is lowered to what stays credited: the coins
# minted for the rest are kept, and the correction says how much carbon they stood for.
MERGED_CAPS_APPLY = sql.SQL(
    """
    WITH ordered AS (
        SELECT r.id, r.behaviour_id, r.local_day, r.occurred_at, r.credited_carbon_mg AS credited,
               f.daily_cap_mg, f.monthly_cap_mg, date_trunc('month', r.local_day)::date AS month
        FROM activities_activityrecord r
        JOIN activities_factor f ON f.id = r.factor_id
        WHERE r.user_id = %(target)s AND r.status = %(credited)s AND r.credited_carbon_mg > 0
          AND (f.daily_cap_mg IS NOT NULL OR f.monthly_cap_mg IS NOT NULL)
    ),
    day_capped AS (
        SELECT *,
               CASE WHEN daily_cap_mg IS NULL THEN credited
                    ELSE greatest(0, least(credited, daily_cap_mg - coalesce(sum(credited) OVER (
                        PARTITION BY behaviour_id, local_day ORDER BY occurred_at, id
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)))
               END AS after_day
        FROM ordered
    ),
    month_capped AS (
        SELECT *,
               CASE WHEN monthly_cap_mg IS NULL THEN after_day
                    ELSE greatest(0, least(after_day, monthly_cap_mg - coalesce(sum(after_day) OVER (
                        PARTITION BY behaviour_id, month ORDER BY occurred_at, id
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)))
               END AS after_month
        FROM day_capped
    ),
    capped AS MATERIALIZED (
        SELECT id, behaviour_id, local_day, month, credited - after_month AS capped_mg,
               CASE WHEN after_month < after_day THEN %(cap_month)s ELSE %(cap_day)s END AS capped_by
        FROM month_capped WHERE after_month < credited
        UNION ALL
        -- The source's reports of instances the target was credited for (`MERGED_INSTANCES_JOIN`):
        -- their whole credit comes off.
        SELECT id, behaviour_id, local_day, date_trunc('month', local_day)::date, credited_carbon_mg, ''
        FROM activities_activityrecord
        WHERE user_id = %(target)s AND status = 'duplicate' AND credited_carbon_mg > 0
    ),
    records AS (
        UPDATE activities_activityrecord r
        SET credited_carbon_mg = r.credited_carbon_mg - c.capped_mg, capped_by = c.capped_by,
            capped_at_merge_mg = r.capped_at_merge_mg + c.capped_mg
        FROM capped c WHERE r.id = c.id
    ),
    behaviour_days AS (
        UPDATE activities_behaviourday b SET credited_carbon_mg = b.credited_carbon_mg - c.capped_mg
        FROM (SELECT behaviour_id, local_day, sum(capped_mg) AS capped_mg FROM capped GROUP BY 1, 2) c
        WHERE b.user_id = %(target)s AND b.behaviour_id = c.behaviour_id AND b.day = c.local_day
    ),
    behaviour_months AS (
        UPDATE activities_behaviourmonth m SET credited_carbon_mg = m.credited_carbon_mg - c.capped_mg
        FROM (SELECT behaviour_id, month, sum(capped_mg) AS capped_mg FROM capped GROUP BY 1, 2) c
        WHERE m.user_id = %(target)s AND m.behaviour_id = c.behaviour_id AND m.month = c.month
    ),
    per_day AS MATERIALIZED (
        SELECT d.id, d.day, c.capped_mg,
               greatest(0, d.settled_carbon_mg - (d.credited_carbon_mg - c.capped_mg)) AS kept_mg
        FROM (SELECT local_day, sum(capped_mg) AS capped_mg FROM capped GROUP BY 1) c
        JOIN activities_dailycarbon d ON d.user_id = %(target)s AND d.day = c.local_day
    ),
    daily AS (
        UPDATE activities_dailycarbon d
        SET credited_carbon_mg = d.credited_carbon_mg - p.capped_mg,
            settled_carbon_mg = d.settled_carbon_mg - p.kept_mg, updated_at = %(now)s
        FROM per_day p WHERE d.id = p.id
    ),
    corrections AS (
        INSERT INTO activities_mergecapcorrection
            (target_user_id, source_user_id, day, capped_carbon_mg, settled_kept_carbon_mg, created_at)
        SELECT %(target)s, %(source)s, day, capped_mg, kept_mg, %(now)s FROM per_day ORDER BY day
    )
    SELECT coalesce(sum(capped_mg), 0), coalesce(sum(kept_mg), 0), count(*) FROM per_day
    """
)

# Before a merge moves the source's records: a credited report of the source of an instance the
# target holds a credited report of (same behaviour, key and time bucket) becomes a second report
# of the target's, keeping its credit until `MERGED_CAPS_APPLY` takes it off; its own second
# reports point at the target's record.
MERGED_INSTANCES_JOIN = sql.SQL(
    """
    WITH joined AS (
        UPDATE activities_activityrecord s SET duplicate_of_id = t.id, status = 'duplicate'
        FROM activities_activityrecord t
        WHERE s.user_id = %(source)s AND s.instance_key IS NOT NULL AND s.duplicate_of_id IS NULL
          AND t.user_id = %(target)s AND t.behaviour_id = s.behaviour_id AND t.instance_key = s.instance_key
          AND t.instance_bucket = s.instance_bucket AND t.duplicate_of_id IS NULL
        RETURNING s.id, t.id AS credited_id
    )
    UPDATE activities_activityrecord r SET duplicate_of_id = j.credited_id
    FROM joined j WHERE r.duplicate_of_id = j.id
    """
)
