"""The bulk history import (`activities.bulk_import`): its staging tables, and the statements that
check and credit a chunk set-based, the capture rules composed in from `capture_rules`."""

from __future__ import annotations

from psycopg import sql

from activities.capture_rules import HOLD_RULES, first_broken_sql
from activities.sql_statements.capture import INSTANCE_CREDITED_REPORT, PEOPLE_LOCKED
from activities.sql_statements.imported_instances import imported_instance_statements
from activities.sql_statements.instances import midnights_lock, midnights_lock_parameters

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
        credited_record_id bigint, first_report_ordinal bigint,
        -- A report of an instance an imported statement counts: that `ImportedInstance`.
        imported_instance_id bigint
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
                AND (credited_record_id IS NOT NULL OR first_report_ordinal IS NOT NULL
                     OR imported_instance_id IS NOT NULL))
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


# The chunk's linked people and their active grants of the source, locked before the check reads
# them, as every capture locks them (`capture.PEOPLE_LOCKED`).
IMPORT_PEOPLE_LOCK = sql.SQL(
    # Both read to their end: a locking CTE locks only the rows its readers pull.
    "WITH {locked} SELECT (SELECT count(*) FROM people) + (SELECT count(*) FROM grants)"
).format(
    locked=PEOPLE_LOCKED.format(
        people=sql.SQL(
            """u.id IN (
                SELECT l.user_id FROM import_rows r
                JOIN activities_partnercustomerlink l
                    ON l.partner_id = %(partner)s AND l.customer_reference = r.customer_reference
                WHERE r.code IS NULL
            )"""
        ),
        grant_people=sql.SQL("a.user_id IN (SELECT id FROM people)"),
    )
)

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
           )) AS is_duplicate, NULL::bigint, NULL::bigint, NULL::bigint
    FROM c
    """
)


def import_people_and_duplicates_check(person_rules: sql.Composable) -> sql.Composable:
    return _IMPORT_PEOPLE_AND_DUPLICATES_CHECK.format(person_rules=person_rules)


# The chunk's fresh reports near a local midnight lock their instance there (`activities.instances`),
# before the counters.
IMPORT_MIDNIGHTS_LOCK = midnights_lock(
    sql.SQL(
        "(SELECT user_id, behaviour_id, instance_key, occurred_at, tolerance FROM import_checked "
        "WHERE code IS NULL AND NOT is_duplicate AND instance_key IS NOT NULL)"
    )
)


def import_midnights_lock(cursor) -> None:
    cursor.execute(IMPORT_MIDNIGHTS_LOCK, midnights_lock_parameters())


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

# Reports of instances an imported statement counts (`sql_statements.imported_instances`), once the
# instances' own credited reports are settled: the rule runs over the chunk's reports whose instance
# no report of ours holds (neither stored nor earlier in the chunk), under their people's shared lock.
# Run with the rule's parameters (`imported_instances.rule_parameters`).
IMPORT_IMPORTED_INSTANCES_LOCK, _IMPORT_IMPORTED_INSTANCE_MATCHES = imported_instance_statements(
    sql.SQL(
        """(SELECT ordinal, user_id, behaviour_id, instance_key, instance_bucket, local_day, occurred_at,
                   tolerance
            FROM import_checked
            WHERE code IS NULL AND NOT is_duplicate AND instance_key IS NOT NULL
              AND credited_record_id IS NULL AND first_report_ordinal IS NULL)"""
    )
)
IMPORT_IMPORTED_INSTANCES_CHECK = sql.SQL(
    "UPDATE import_checked k SET imported_instance_id = m.id FROM ({matches}) AS m(ordinal, id) "
    "WHERE k.ordinal = m.ordinal"
).format(matches=_IMPORT_IMPORTED_INSTANCE_MATCHES)

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
          AND k.imported_instance_id IS NULL
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

# Reports of instances something else counts, stored crediting nothing, in no counter, pointing
# (`{pointer}`) at what counts it; `{expected}` selects them from `import_checked`, with the column
# `points_at`. Answers how many were expected, and the ids of those stored.
_IMPORT_REPORTS_STORE = sql.SQL(
    """
    WITH expected AS ({expected}),
    inserted AS (
        INSERT INTO activities_activityrecord
            (user_id, behaviour_id, factor_id, source, partner_id, external_id, quantity, occurred_at,
             ended_at, local_day, device_id, gross_carbon_mg, credited_carbon_mg, capped_by, status,
             hold_reason, created_at, credited_at, appeal_note, instance_key, instance_bucket, {pointer})
        SELECT user_id, behaviour_id, factor_id, %(source)s, %(partner)s, external_id, quantity,
               occurred_at, ended_at, local_day, '', gross_carbon_mg, 0, '', %(duplicate)s, '',
               %(now)s, NULL, '', instance_key, instance_bucket, points_at
        FROM expected ORDER BY ordinal
        ON CONFLICT {conflict_target} DO NOTHING
        RETURNING id
    )
    SELECT (SELECT count(*) FROM expected), array(SELECT id FROM inserted ORDER BY id)
    """
)

# Second reports of instances credited here, pointing at the credited record: stored, or the chunk's
# first report of the instance (stored just before).
IMPORT_SECOND_REPORTS_STORE = _IMPORT_REPORTS_STORE.format(
    expected=sql.SQL(
        """
        SELECT k.*, coalesce(k.credited_record_id, p.id) AS points_at
        FROM import_checked k
        LEFT JOIN import_checked f ON f.ordinal = k.first_report_ordinal
        LEFT JOIN activities_activityrecord p
            ON p.external_id = f.external_id AND p.source = %(source)s
        WHERE k.code IS NULL AND NOT k.is_duplicate AND k.imported_instance_id IS NULL
          AND (k.credited_record_id IS NOT NULL OR k.first_report_ordinal IS NOT NULL)
        """
    ),
    pointer=sql.Identifier("duplicate_of_id"),
    conflict_target=sql.SQL("(external_id, source)"),
)

# Reports of instances an imported statement counts, pointing at its `ImportedInstance` (as
# `capture.IMPORTED_REPORTS_STORE`). No conflict target: a record id, or a report of the instance,
# stored meanwhile leaves the row out, and the chunk starts again.
IMPORT_IMPORTED_REPORTS_STORE = _IMPORT_REPORTS_STORE.format(
    expected=sql.SQL(
        """
        SELECT k.*, k.imported_instance_id AS points_at
        FROM import_checked k
        WHERE k.code IS NULL AND NOT k.is_duplicate AND k.imported_instance_id IS NOT NULL
        """
    ),
    pointer=sql.Identifier("imported_duplicate_of_id"),
    conflict_target=sql.SQL(""),
)
