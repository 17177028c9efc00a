"""The PostgreSQL engine of the bulk history import: a chunk of the file at a time, in a few statements.

A chunk (50,000 lines by default), or a part of one (`history_import` splits chunks by person into
parts imported side by side, one `ChunkImporter` and connection each), is `COPY`'d as it is into a
temporary table, each line after its ordinal in the chunk, then:

1. lines whose fields are plainly well-formed (ASCII ids, plain decimals, ISO moments with an offset)
   are typed and checked in one `INSERT … SELECT`, each finding its factor by (behaviour, day) in a
   table of every day since the first factor; the rare other lines, and every line of a chunk
   that `COPY` could not read as the expected CSV, are read by the API's own parser and checked by
   `ingest.record_precheck`, then added to the same table;
2. one statement resolves customers, consent and account state, duplicates (stored, or earlier in
   the chunk: record ids that come twice are found by hashing);
3. the counters of the chunk's people, behaviours and days are locked in key order;
4. one statement works out holds (daily plausibility thresholds, overlapping trips) and caps
   (per record, per day, per month) with window functions, in the order things happened — the
   same arithmetic as `ingest._credit` does record by record;
5. the counters, the records and DailyCarbon are written with one upsert each; a counter row
   created concurrently, or a record stored concurrently, reruns the chunk from its savepoint.

The rules are those of the partner API, in the same order and with the same codes; only the age
window is the history import's (`ACTIVITIES_HISTORY_WINDOW_DAYS`, none for an operator's back-fill).
A methodology with a behaviour capped both per day and per month goes through the batch path
instead (its caps interact record by record).
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import DataError, OperationalError, connection, transaction
from psycopg import sql

from activities import errors
from activities.ingest import (
    CLOCK_SKEW,
    ENDED_BEFORE_STARTED,
    INSTANCE_CREDITED_REPORT,
    MAX_ATTEMPTS,
    MAX_QUANTITY,
    CounterRaceError,
    Incoming,
    _Candidate,
    imported_reports_store_statement,
    instance_credits_move,
    record_precheck,
    rejections_count,
)
from activities.instances import midnight_lock_parameters, midnight_locks
from activities.methodology import MAX_INSTANCE_VALUE_LENGTH, Methodology
from activities.models import CapKind, HoldReason, Partner, RecordStatus, Unit
from activities.services import history_window_days, partner_record_parse
from activities.statements.instances import imported_instance_statements
from core.local_time import LOCAL_TZ

# Plainly well-formed fields: what PostgreSQL reads exactly as Python's parser does; anything else is
# read by Python. Checked with cheap string functions (bounded regular expressions are slow in
# PostgreSQL). A moment of that shape that is no date (30 February) fails its cast: the whole chunk
# is then read by Python.
DECIMAL = r"^[0-9]{1,12}(\.[0-9]{1,3})?$"
AMOUNT = r"^[0-9]{1,9}(\.[0-9]{1,2})?$"
MOMENT_SHAPES = ", ".join(
    f"'0000-00-00T00:00:00{fraction}{offset}'"
    for fraction in ["", *("." + "0" * digits for digits in range(1, 7))]
    for offset in ("Z", "+00:00", "-00:00")
)


def _printable(column: str, longest: int) -> str:
    return f"({column} !~ '[^ -~]' AND length({column}) BETWEEN 1 AND {longest})"


def _moment(column: str) -> str:
    return (
        f"(translate({column}, '0123456789', '0000000000') IN ({MOMENT_SHAPES}) "
        f"AND substr({column}, 1, 1) <> '0' AND substr({column}, 12, 2) < '24' "
        f"AND substr({column}, 18, 2) < '60')"
    )


def methodology_fits(methodology: Methodology) -> bool:
    """False when a factor caps both per day and per month: such caps go record by record."""
    return not any(
        factor.daily_cap_mg is not None and factor.monthly_cap_mg
        for factors in methodology._factors.values()
        for factor in factors
    )


# Called inside a chunk's transaction with the (person, local day) pairs its records credited and a
# name for the chunk: the back-fill settles them there (`rewards.services.backfill`).
CreditedDaysHook = Callable[[list[tuple[int, datetime.date]], str], None]


@dataclass
class ChunkResult:
    totals: Counter
    # (ordinal in the chunk, the partner's record id, code, detail), in file order.
    rejected: list[tuple[int, str, str, str]]


# The chunk's reports near a local midnight lock their instance there (`activities.instances`).
STAGED_MIDNIGHT_LOCKS = midnight_locks(
    sql.SQL(
        "(SELECT user_id, behaviour_id, instance_key, occurred_at, tolerance FROM import_checked "
        "WHERE code IS NULL AND NOT is_duplicate AND instance_key IS NOT NULL)"
    )
)


class ChunkImporter:
    """Imports chunks of one partner's CSV file on the current connection (PostgreSQL)."""

    def __init__(
        self,
        *,
        partner: Partner,
        header: list[str] | None,
        methodology: Methodology,
        now: datetime.datetime,
        is_backfill: bool = False,
        on_credited: CreditedDaysHook | None = None,
    ) -> None:
        self.partner, self.header, self.methodology, self.now = partner, header, methodology, now
        self.is_backfill, self.on_credited = is_backfill, on_credited
        self.allowed = frozenset(partner.behaviours.values_list("id", flat=True))
        self.trip_behaviour_ids = sorted(b.id for b in methodology.behaviours_by_id.values() if b.is_trip)
        # Only behaviours the partner may report can be credited: are any of them capped per month?
        self.has_monthly_caps = any(
            factor.monthly_cap_mg
            for behaviour_id in self.allowed
            for factor in methodology._factors.get(behaviour_id, [])
        )
        self._tables_ready = False
        # Lines the API's parser had to read (odd fields, or a chunk COPY could not take as it is).
        self.lines_read_by_python = 0

    # --- set-up ---------------------------------------------------------------------------------

    def _create_tables(self, cursor) -> None:
        width = len(self.header) if self.header else 1
        raw_columns = ", ".join(f"c{index} text" for index in range(width))
        cursor.execute(
            f"""
            DROP TABLE IF EXISTS import_raw, import_rows, import_checked, import_outcomes, import_factors,
                import_behaviours, import_factor_days, import_day_now, import_month_now;
            -- A chunk's staging tables are emptied by its commit (in place: no new files, no catalog
            -- changes per chunk, which parts side by side would contend on).
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
        rows = []
        for behaviour in self.methodology.behaviours_by_id.values():
            factors = self.methodology._factors.get(behaviour.id, [])
            if not factors:
                # Known behaviour without a factor: `no_factor_in_effect`, as in the batch path.
                rows.append(
                    (None, behaviour.id, behaviour.code, behaviour.id in self.allowed, None, None, None, None,
                     None, None, [], None, behaviour.is_trip, behaviour.unit == Unit.STEP, None, [], None)
                )  # fmt: skip
            for index, factor in enumerate(factors):
                until = factors[index + 1].effective_from if index + 1 < len(factors) else None
                rows.append(
                    (
                        factor.id, behaviour.id, behaviour.code, behaviour.id in self.allowed,
                        factor.effective_from, until, factor.carbon_mg_per_unit, factor.daily_cap_mg,
                        factor.monthly_cap_mg or None, factor.event_cap_mg, sorted(factor.sources),
                        self.methodology.review_threshold(behaviour, factor), behaviour.is_trip,
                        behaviour.unit == Unit.STEP, factor.minimum_payment_fen,
                        list(factor.instance_fields), factor.instance_time_tolerance_seconds,
                    )
                )  # fmt: skip
        placeholders = ", ".join(["%s"] * 17)
        cursor.executemany(f"INSERT INTO import_factors VALUES ({placeholders})", rows)  # noqa: S608
        # Each line finds its behaviour by code through this key (a probe per line, however the
        # planner guesses the size of a fresh staging table); the planner learns both are small.
        cursor.execute(
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
        cursor.execute(
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
            """,
            {
                "source": self.partner.source,
                "last_day": (self.now + CLOCK_SKEW).astimezone(LOCAL_TZ).date() + datetime.timedelta(days=1),
            },
        )
        self._tables_ready = True

    # --- one chunk ------------------------------------------------------------------------------

    def import_chunk(self, lines: list[bytes], parse, *, ordinals: list[int] | None = None) -> ChunkResult:
        """Imports a chunk of lines (each one record; blank ones skipped) in one transaction.

        `ordinals` number the lines within their chunk of the file (1, 2, … by default): a part of a
        chunk (`history_import` splits chunks by person) keeps the ordinals of its lines.
        """
        numbered = list(zip(ordinals or range(1, len(lines) + 1), lines, strict=True))
        # Inside a caller's transaction no commit has emptied the staging tables since the last chunk.
        empty_staging_tables = connection.in_atomic_block
        with transaction.atomic(), connection.cursor() as cursor:
            if not self._tables_ready:
                self._create_tables(cursor)
            # Mid-sized statements over temporary tables: compiling them (JIT) costs more than it saves,
            # and their sorts fit in memory.
            cursor.execute(
                "SET LOCAL synchronous_commit = off; SET LOCAL jit = off; SET LOCAL work_mem = '64MB'"
            )
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    with transaction.atomic():
                        # A rerun creates its missing counter rows before locking: it cannot race again.
                        return self._import(
                            cursor,
                            numbered,
                            parse,
                            create_missing=attempt > 1,
                            empty_first=empty_staging_tables,
                        )
                except (CounterRaceError, OperationalError) as error:
                    retriable = isinstance(error, CounterRaceError) or isinstance(
                        error.__cause__, psycopg.errors.DeadlockDetected
                    )
                    if not retriable or attempt == MAX_ATTEMPTS:
                        raise
        raise AssertionError("unreachable")

    def _import(
        self, cursor, numbered: list[tuple[int, bytes]], parse, *, create_missing: bool, empty_first: bool
    ) -> ChunkResult:
        if empty_first:
            cursor.execute(
                "TRUNCATE import_raw, import_rows, import_checked, import_outcomes, import_day_now, "
                "import_month_now"
            )
        if not (self.header and self._copy_raw(cursor, numbered)):
            self._add_parsed(cursor, numbered, parse)
        else:
            try:
                with transaction.atomic():
                    self._type_plain_lines(cursor)
            except (DataError, psycopg.DataError):
                # A field that looked well-formed is not (a 30 February): Python reads the whole chunk.
                self._add_parsed(cursor, numbered, parse)
            else:
                cursor.execute(
                    "SELECT ordinal FROM import_raw r "
                    "WHERE NOT EXISTS (SELECT 1 FROM import_rows i WHERE i.ordinal = r.ordinal)"
                )
                others = {row[0] for row in cursor.fetchall()}
                if others:
                    self._add_parsed(
                        cursor, [(ordinal, line) for ordinal, line in numbered if ordinal in others], parse
                    )
        self._check_people_and_duplicates(cursor)
        cursor.execute(STAGED_MIDNIGHT_LOCKS, midnight_lock_parameters())
        self._lock_counters(cursor, create_missing=create_missing)
        self._check_instances(cursor)
        staged_imported_instances_check(cursor)
        self._work_out_outcomes(cursor)
        moved = self._store(cursor)
        if self.on_credited is not None:
            cursor.execute(
                "SELECT DISTINCT user_id, local_day FROM import_outcomes "
                "WHERE status = %s AND credited_carbon_mg > 0 ORDER BY 1, 2",
                [RecordStatus.CREDITED.value],
            )
            days = cursor.fetchall()
            if days:
                self.on_credited(days, f"{self.partner.code}:{self.now.isoformat()}:{numbered[0][0]}")
        cursor.execute(
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
        accepted, held, duplicate, second_reports = cursor.fetchone()
        cursor.execute(
            "SELECT ordinal, record_id, code, detail FROM import_checked "
            "WHERE code IS NOT NULL ORDER BY ordinal"
        )
        rejected = cursor.fetchall()
        rejections_count(
            source=self.partner.source,
            partner_code=self.partner.code,
            codes=Counter(code for _, _, code, _ in rejected),
            now=self.now,
        )
        totals = Counter(
            accepted=accepted + moved,
            held_for_review=held,
            duplicate=duplicate,
            duplicate_across_sources=second_reports - moved,
            rejected=len(rejected),
        )
        return ChunkResult(totals=totals, rejected=rejected)

    def _copy_raw(self, cursor, numbered: list[tuple[int, bytes]]) -> bool:
        """COPYs the lines as they are, each after its ordinal; False when COPY cannot read them as CSV."""
        # A line `\.` ends COPY's input early; blank lines and quoted line breaks shift the lines.
        if any(line.strip() in (b"", b"\\.") for _, line in numbered):
            return False
        data = b"".join(
            b"%d,%s" % (ordinal, line if line.endswith(b"\n") else line + b"\n") for ordinal, line in numbered
        )
        columns = ", ".join(f"c{index}" for index in range(len(self.header)))
        try:
            with (
                transaction.atomic(),
                cursor.cursor.copy(f"COPY import_raw (ordinal, {columns}) FROM STDIN (FORMAT csv)") as copy,
            ):
                copy.write(data)
        except psycopg.DataError:
            return False
        cursor.execute("SELECT count(*) FROM import_raw")
        if cursor.fetchone()[0] != len(numbered):
            cursor.execute("TRUNCATE import_raw")
            return False
        return True

    def _column(self, name: str) -> str:
        return f"c{self.header.index(name)}" if name in self.header else "NULL::text"

    def _plain(self) -> str:
        ended_at, amount = self._column("ended_at"), self._column("amount")
        return (
            f"{_printable(self._column('id'), 100)} AND {_printable(self._column('customer_reference'), 64)} "
            f"AND {self._column('behaviour')} IS NOT NULL AND {self._column('quantity')} ~ '{DECIMAL}' "
            f"AND {_moment(self._column('occurred_at'))} "
            f"AND ({ended_at} IS NULL OR {ended_at} = '' OR {_moment(ended_at)}) "
            f"AND ({amount} IS NULL OR {amount} = '' OR {amount} ~ '{AMOUNT}')"
            + "".join(
                f" AND (coalesce({column}, '') = '' OR {_printable(column, MAX_INSTANCE_VALUE_LENGTH)})"
                for column in self._instance_columns().values()
            )
        )

    def _instance_columns(self) -> dict[str, str]:
        """The header's `instance.<field>` columns: {field: staging column}."""
        return {
            name.removeprefix("instance."): f"c{index}"
            for index, name in enumerate(self.header or [])
            if name.startswith("instance.")
        }

    def _instance_sql(self) -> tuple[str, str, dict]:
        """A line's instance values (jsonb), the SQL of its instance key and time bucket from them (the
        rule of `methodology.instance_identity`), and their parameters: the header's field names go
        in as values, never as SQL text."""
        columns = self._instance_columns()
        if not columns:
            return "NULL::jsonb", "NULL::text AS instance_key, NULL::bigint AS instance_bucket", {}
        pairs = ", ".join(
            f"%(instance_field_{n})s::text, {column}" for n, column in enumerate(columns.values())
        )
        parameters = {f"instance_field_{n}": name for n, name in enumerate(columns)}
        # Every declared field present and not blank once trimmed, or no key; ASCII letters upper-cased.
        key = """
            (SELECT CASE WHEN count(*) = count(v) THEN encode(sha256(convert_to(
                        string_agg(v, chr(31) ORDER BY n), 'UTF8')), 'hex') END
             FROM (SELECT nullif(translate(btrim(r.instance_values ->> u.f, ' '),
                                           'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'), '')
                          AS v, u.n
                   FROM unnest(r.instance_fields) WITH ORDINALITY AS u(f, n)) AS vals)
        """
        return (
            f"jsonb_build_object({pairs})",
            f"""CASE WHEN r.instance_fields IS NOT NULL AND r.code IS NULL THEN {key} END AS instance_key,
                CASE WHEN r.tolerance IS NULL THEN 0
                     ELSE floor(extract(epoch FROM r.occurred_at) / r.tolerance)::bigint
                END AS instance_bucket""",
            parameters,
        )

    def _type_plain_lines(self, cursor) -> None:
        """Types and checks the well-formed lines: the rules of `record_precheck`, in its order."""
        # Only column names of the staging table (c0, c1, …) and constants are put into the SQL text.
        # `OFFSET 0` keeps each typed field computed once per line (a flattened subquery would cast
        # the moment again in every expression that uses it).
        instance_values, instance_sql, instance_parameters = self._instance_sql()
        cursor.execute(
            f"""
            INSERT INTO import_rows
            SELECT ordinal, record_id, external_id, customer_reference, behaviour_id, factor_id, quantity,
                   occurred_at, ended_at, local_day, gross_carbon_mg, code,
                   CASE WHEN code IS DISTINCT FROM %(invalid_record)s THEN ''
                        WHEN ended_at < occurred_at THEN %(ended_before)s
                        ELSE 'amount' END,
                   CASE WHEN code IS NULL THEN instance_key END,
                   CASE WHEN code IS NULL THEN instance_bucket END,
                   CASE WHEN code IS NULL THEN tolerance END
            FROM (
            SELECT r.*, {instance_sql}
            FROM (
            SELECT r.ordinal, r.record_id, %(prefix)s || r.record_id AS external_id, r.customer_reference,
                   r.behaviour_id, r.factor_id, r.quantity, r.occurred_at, r.ended_at, r.local_day,
                   floor(r.quantity * r.carbon_mg_per_unit) AS gross_carbon_mg,
                   r.instance_fields, r.tolerance, r.instance_values,
                   CASE
                       WHEN r.behaviour_id IS NULL THEN %(unknown_behaviour)s
                       WHEN NOT r.allowed THEN %(not_allowed)s
                       WHEN r.quantity <= 0 OR r.quantity > %(max_quantity)s THEN %(invalid_quantity)s
                       WHEN r.occurred_at > %(latest)s OR r.ended_at > %(latest)s THEN %(future)s
                       WHEN r.ended_at < r.occurred_at THEN %(invalid_record)s
                       WHEN r.occurred_at < %(oldest)s THEN %(too_old)s
                       WHEN r.factor_id IS NULL THEN %(no_factor)s
                       WHEN NOT r.source_allowed THEN %(not_allowed)s
                       WHEN r.minimum_payment_fen IS NOT NULL AND r.amount IS NULL THEN %(invalid_record)s
                       WHEN r.amount * 100 < r.minimum_payment_fen THEN %(below_minimum)s
                   END AS code
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
                        SELECT ordinal, {self._column("id")} AS record_id,
                               {self._column("customer_reference")} AS customer_reference,
                               {self._column("behaviour")} AS behaviour,
                               {self._column("quantity")}::numeric AS quantity,
                               {self._column("occurred_at")}::timestamptz AS occurred_at,
                               nullif({self._column("ended_at")}, '')::timestamptz AS ended_at,
                               nullif({self._column("amount")}, '')::numeric AS amount,
                               {instance_values} AS instance_values
                        FROM import_raw WHERE {self._plain()}
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
            """,  # noqa: S608
            {**self._rule_parameters(), **instance_parameters},
        )

    @property
    def oldest(self) -> datetime.datetime | None:
        """The history window's start for this chunk; none for an operator's back-fill."""
        return None if self.is_backfill else self.now - datetime.timedelta(days=history_window_days())

    def _rule_parameters(self) -> dict:
        return {
            "oldest": self.oldest,
            "too_old": errors.OCCURRED_BEFORE_HISTORY_WINDOW.code,
            "prefix": f"{self.partner.code}:",
            "source": self.partner.source,
            "time_zone": LOCAL_TZ.key,
            "latest": self.now + CLOCK_SKEW,
            "max_quantity": MAX_QUANTITY,
            "unknown_behaviour": errors.UNKNOWN_BEHAVIOUR.code,
            "not_allowed": errors.BEHAVIOUR_NOT_ALLOWED.code,
            "invalid_quantity": errors.INVALID_QUANTITY.code,
            "future": errors.OCCURRED_IN_FUTURE.code,
            "invalid_record": errors.INVALID_RECORD.code,
            "no_factor": errors.NO_FACTOR_IN_EFFECT.code,
            "below_minimum": errors.PAYMENT_BELOW_MINIMUM.code,
            "ended_before": ENDED_BEFORE_STARTED,
        }

    def _add_parsed(self, cursor, numbered_lines: list[tuple[int, bytes]], parse) -> None:
        """Lines read by the API's parser and checked by `record_precheck`, added to `import_rows`."""
        prefix = f"{self.partner.code}:"
        self.lines_read_by_python += len(numbered_lines)
        with cursor.cursor.copy(
            "COPY import_rows (ordinal, record_id, external_id, customer_reference, behaviour_id, factor_id, "
            "quantity, occurred_at, ended_at, local_day, gross_carbon_mg, code, detail, instance_key, "
            "instance_bucket, tolerance) FROM STDIN"
        ) as copy:
            for ordinal, line in numbered_lines:
                if not line.strip():
                    continue
                record: Incoming = partner_record_parse(self.partner, parse(line))
                shown = record.external_id.removeprefix(prefix)
                checked = record_precheck(
                    ordinal, record, source=self.partner.source, methodology=self.methodology,
                    allowed_behaviour_ids=self.allowed, now=self.now, oldest=self.oldest,
                    oldest_code=errors.OCCURRED_BEFORE_HISTORY_WINDOW.code,
                )  # fmt: skip
                if isinstance(checked, _Candidate):
                    copy.write_row(
                        (ordinal, shown, record.external_id, record.customer_reference, checked.behaviour_id,
                         checked.factor.id, record.quantity, record.occurred_at, record.ended_at,
                         checked.local_day, checked.gross_carbon_mg, None, "", checked.instance_key,
                         checked.instance_bucket if checked.instance_key is not None else None,
                         checked.factor.instance_time_tolerance_seconds)
                    )  # fmt: skip
                else:
                    copy.write_row(
                        (ordinal, shown, None, None, None, None, None, None, None, None, None, *checked,
                         None, None, None)
                    )  # fmt: skip

    def _check_people_and_duplicates(self, cursor) -> None:
        cursor.execute(
            """
            INSERT INTO import_checked
            WITH c AS MATERIALIZED (
                SELECT r.ordinal, r.record_id, r.external_id, r.behaviour_id, r.factor_id, r.quantity,
                       r.occurred_at, r.ended_at, r.local_day, r.gross_carbon_mg, r.detail, r.instance_key,
                       r.instance_bucket, r.tolerance, l.user_id,
                       CASE
                           WHEN r.code IS NOT NULL THEN r.code
                           WHEN l.user_id IS NULL THEN %(unknown_customer)s
                           WHEN NOT coalesce(u.is_active AND u.closed_at IS NULL, false) THEN %(closed)s
                           WHEN a.granted_at IS NULL THEN %(not_authorized)s
                           -- Consent is not retroactive (`ingest.record_authorization_check`).
                           WHEN r.occurred_at < a.granted_at THEN %(before_authorization)s
                       END AS code
                FROM import_rows r
                LEFT JOIN activities_partnercustomerlink l
                    ON r.code IS NULL AND l.partner_id = %(partner)s
                   AND l.customer_reference = r.customer_reference
                LEFT JOIN accounts_user u ON u.id = l.user_id
                -- At most one active grant per person and source (a partial unique index).
                LEFT JOIN accounts_datasourceauthorization a
                    ON a.user_id = l.user_id AND a.source = %(source)s AND a.revoked_at IS NULL
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
            FROM c;
            """,
            {
                "source": self.partner.source,
                "partner": self.partner.id,
                "unknown_customer": errors.UNKNOWN_CUSTOMER.code,
                "closed": errors.ACCOUNT_CLOSED.code,
                "not_authorized": errors.SOURCE_NOT_AUTHORIZED.code,
                "before_authorization": errors.OCCURRED_BEFORE_AUTHORIZATION.code,
            },
        )

    def _lock_counters(self, cursor, *, create_missing: bool = False) -> None:
        """Locks the existing counter rows of the chunk's keys in key order, keeping what they hold.

        With `create_missing` (the rerun after a race) the missing rows are first created empty, so
        every counter of the chunk is locked here (`ingest._lock_counters`).
        """
        if create_missing:
            cursor.execute(
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
        cursor.execute(
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

    def _check_instances(self, cursor) -> None:
        """The second reports of instances (`ingest._instance_twins`), once the counters are locked.

        A report of an instance already credited (`INSTANCE_CREDITED_REPORT`) points at that record;
        of the others, the chunk's reports of one instance that follow each other within the time
        tolerance (any gap, without one) point at the first of them.
        """
        cursor.execute(
            f"""
            UPDATE import_checked k SET credited_record_id = p.id
            FROM import_checked t
            CROSS JOIN LATERAL ({INSTANCE_CREDITED_REPORT}) AS p
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
            """  # noqa: S608 - a constant fragment
        )

    def _month_capped(self) -> str:
        """The monthly caps' step of the outcomes; a pass-through when the partner's behaviours have none."""
        if not self.has_monthly_caps:
            return "SELECT *, after_day AS credited_carbon_mg FROM day_capped"
        return """
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

    def _work_out_outcomes(self, cursor) -> None:
        """Holds and caps of every fresh record, in the order things happened (`ingest._credit`)."""
        cursor.execute(
            f"""
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
                       END > occurred_at AS overlaps_earlier
                FROM trips
            ),
            -- Materialized: each record's overlap probe runs once, not once per use of its hold reason.
            holds AS MATERIALIZED (
                SELECT *,
                       CASE
                           WHEN over_threshold AND is_step THEN %(superhuman)s
                           WHEN over_threshold THEN %(too_many)s
                           WHEN is_interval AND (overlaps_earlier OR EXISTS (
                               SELECT 1 FROM activities_activityrecord r
                               WHERE r.user_id = o.user_id
                                 AND r.local_day BETWEEN o.local_day - 1 AND o.local_day + 1
                                 AND r.behaviour_id = ANY(%(trip_behaviours)s) AND r.ended_at IS NOT NULL
                                 AND r.status <> %(rejected)s
                                 AND r.occurred_at < o.ended_at AND r.ended_at > o.occurred_at
                           )) THEN %(overlapping)s
                           ELSE ''
                       END AS hold_reason
                FROM overlapped o
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
            month_capped AS ({self._month_capped()})
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
            """,  # noqa: S608 - the only text put in is one of two constant steps
            {
                "superhuman": HoldReason.SUPERHUMAN_STEPS.value,
                "too_many": HoldReason.TOO_MANY_IN_A_DAY.value,
                "overlapping": HoldReason.OVERLAPPING_TRIP.value,
                "trip_behaviours": self.trip_behaviour_ids,
                "rejected": RecordStatus.REJECTED.value,
                "cap_month": CapKind.MONTH.value,
                "cap_day": CapKind.DAY.value,
                "cap_event": CapKind.EVENT.value,
                "held": RecordStatus.HELD.value,
                "credited": RecordStatus.CREDITED.value,
            },
        )

    def _store(self, cursor) -> int:
        """Counters first, then records and DailyCarbon: the lock order of every writer; then the
        second reports of instances. Returns how many of those took the credit over (precedence)."""
        cursor.execute(
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
            -- A row this chunk meant to create (it did not exist when locking) but found: a race.
            SELECT count(*) FROM raised r
            WHERE NOT r.was_created AND NOT EXISTS (
                SELECT 1 FROM import_day_now d
                WHERE d.user_id = r.user_id AND d.behaviour_id = r.behaviour_id AND d.day = r.day
            )
            """,
            {"held": RecordStatus.HELD.value},
        )
        races = cursor.fetchone()[0]
        cursor.execute(
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
            """,
            {"credited": RecordStatus.CREDITED.value},
        )
        races += cursor.fetchone()[0]
        if races:
            raise CounterRaceError
        cursor.execute(
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
            """,
            {
                "source": self.partner.source,
                "partner": self.partner.id,
                "now": self.now,
                "credited": RecordStatus.CREDITED.value,
            },
        )
        if not cursor.fetchone()[0]:
            # A concurrent request stored one of these records after the duplicate check: start again.
            raise CounterRaceError
        # Before the second reports: a later report of the chunk may be a second report of one of these.
        staged_imported_reports_store(
            cursor, source=self.partner.source, partner_id=self.partner.id, now=self.now
        )
        cursor.execute(
            """
            WITH expected AS (
                SELECT k.*, coalesce(k.credited_record_id, p.id) AS duplicate_of_id
                FROM import_checked k
                LEFT JOIN import_checked f ON f.ordinal = k.first_report_ordinal
                LEFT JOIN activities_activityrecord p
                    ON p.external_id = f.external_id AND p.source = %(source)s
                WHERE k.code IS NULL AND NOT k.is_duplicate AND k.imported_instance_id IS NULL
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
            """,
            {
                "source": self.partner.source,
                "partner": self.partner.id,
                "now": self.now,
                "duplicate": RecordStatus.DUPLICATE.value,
            },
        )
        expected, stored = cursor.fetchone()
        if len(stored) != expected:
            raise CounterRaceError
        return len(instance_credits_move(cursor, stored))


# --- Reports of instances an imported statement counts (docs/interop.md) ---------------------------

# The chunk's reports that no report of ours holds the instance of (neither stored nor earlier in the
# chunk): the candidates of `statements.instances` rule, which runs over them as capture runs it.
_STAGED_CANDIDATES = sql.SQL(
    """(SELECT ordinal, user_id, behaviour_id, instance_key, instance_bucket, local_day, occurred_at,
               tolerance
        FROM import_checked
        WHERE code IS NULL AND NOT is_duplicate AND instance_key IS NOT NULL
          AND credited_record_id IS NULL AND first_report_ordinal IS NULL)"""
)
_STAGED_LOCK, _STAGED_MATCHES = imported_instance_statements(_STAGED_CANDIDATES)
STAGED_IMPORTED_INSTANCES = sql.SQL(
    "UPDATE import_checked k SET imported_instance_id = m.id FROM ({matches}) AS m(ordinal, id) "
    "WHERE k.ordinal = m.ordinal"
).format(matches=_STAGED_MATCHES)

# Stored crediting nothing, in no counter, pointing at the instance (as `ingest.IMPORTED_REPORTS_STORE`).
STAGED_IMPORTED_REPORTS_STORE = imported_reports_store_statement(
    sql.SQL(
        """(SELECT user_id, behaviour_id, factor_id, external_id, quantity, occurred_at, ended_at, local_day,
                   '', gross_carbon_mg, instance_key, instance_bucket, imported_instance_id
            FROM import_checked
            WHERE code IS NULL AND NOT is_duplicate AND imported_instance_id IS NOT NULL
            ORDER BY ordinal)"""
    )
)
_STAGED_IMPORTED_COUNT = sql.SQL(
    "SELECT count(*) FROM import_checked "
    "WHERE code IS NULL AND NOT is_duplicate AND imported_instance_id IS NOT NULL"
)


def staged_imported_instances_check(cursor) -> None:
    """Marks the chunk's reports of instances an imported statement counts (once the counters and the
    instances' credited reports are settled), under the person's shared lock, as capture does."""
    cursor.execute(_STAGED_LOCK)
    cursor.execute(STAGED_IMPORTED_INSTANCES, {"audience": settings.STATEMENTS_ISSUER})


def staged_imported_reports_store(cursor, *, source: str, partner_id: int, now: datetime.datetime) -> None:
    cursor.execute(_STAGED_IMPORTED_COUNT)
    expected = cursor.fetchone()[0]
    if not expected:
        return
    cursor.execute(STAGED_IMPORTED_REPORTS_STORE, {"source": source, "partner": partner_id, "now": now})
    if len(cursor.fetchall()) != expected:
        raise CounterRaceError
