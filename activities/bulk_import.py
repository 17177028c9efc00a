"""The PostgreSQL engine of the bulk history import: a chunk of the file at a time, in a few statements.

A chunk (50,000 lines by default), or a part of one (`history_import` splits chunks by person into
parts imported side by side, one `ChunkImporter` and connection each), is `COPY`'d as it is into a
temporary table, each line after its ordinal in the chunk, then:

1. lines whose fields are plainly well-formed (ASCII ids, plain decimals, ISO moments with an offset)
   are typed and checked in one `INSERT … SELECT`, each finding its factor by (behaviour, day) in a
   table of every day since the first factor; the rare other lines, and every line of a chunk
   that `COPY` could not read as the expected CSV, are read by the API's own parser and checked by
   `ingest.record_precheck` (the same rules in Python), then added to the same table;
2. one statement resolves customers, consent and account state, duplicates (stored, or earlier in
   the chunk: record ids that come twice are found by hashing);
3. the counters of the chunk's people, behaviours and days are locked in key order;
4. one statement works out holds (daily plausibility thresholds, overlapping trips) and caps
   (per record, per day, per month) with window functions, in the order things happened — the
   same arithmetic as `ingest._credit` does record by record;
5. the counters, the records and DailyCarbon are written with one upsert each; a counter row
   created concurrently, or a record stored concurrently, reruns the chunk from its savepoint;
6. once that has committed, the rejected lines are added to the day's rejection counts, in a
   statement of their own (the parts of a chunk would otherwise wait on each other's commit for the
   same count rows; a process lost between the two leaves that chunk's rejections uncounted).

The rules are those of the partner API: the SQL predicates of `capture_rules.RULES`, the table the
batch path checks in Python, in the same order and with the same codes (steps 1, 2 and 4); only the
age window is the history import's (`ACTIVITIES_HISTORY_WINDOW_DAYS`, none for an operator's
back-fill). The statements are in `sql_statements.bulk_import`.
A methodology with a behaviour capped both per day and per month goes through the batch path
instead (its caps interact record by record).
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from django.db import DataError, OperationalError, connection, transaction

from activities import errors
from activities.cache_renewals import carbon_changed_for_everyone
from activities.capture_rules import (
    CLOCK_SKEW,
    HOLD_RULES,
    MAX_QUANTITY,
    PERSON_RULES,
    RECORD_RULES,
    first_broken_sql,
)
from activities.ingest import (
    MAX_ATTEMPTS,
    Candidate,
    CounterRaceError,
    Incoming,
    instance_credits_move,
    record_precheck,
    rejections_count,
)
from activities.methodology import MAX_INSTANCE_VALUE_LENGTH, Methodology
from activities.models import CapKind, Partner, RecordStatus, Unit
from activities.services import history_window_days, partner_record_parse
from activities.sql_statements import bulk_import as statements
from activities.sql_statements import imported_instances
from activities.statements.instances import imported_instance_rule
from core.local_time import LOCAL_TZ

# The record and person rules of `capture_rules`, each stage one CASE giving the position of the
# first rule broken (its code and detail are looked up in arrays passed as parameters).
RECORD_RULES_SQL = first_broken_sql(RECORD_RULES)
PERSON_RULES_SQL = first_broken_sql(PERSON_RULES)


def methodology_fits(methodology: Methodology) -> bool:
    """False when a factor caps both per day and per month: such caps go record by record."""
    return not any(
        factor.daily_cap_mg is not None and factor.monthly_cap_mg for factor in methodology.all_factors()
    )


# Called inside a chunk's transaction with the (person, local day) pairs its records credited and a
# name for the chunk: the back-fill settles them there (`rewards.services.backfill`).
CreditedDaysHook = Callable[[list[tuple[int, datetime.date]], str], None]


@dataclass
class ChunkResult:
    totals: Counter
    # (ordinal in the chunk, the partner's record id, code, detail), in file order.
    rejected: list[tuple[int, str, str, str]]


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
            for factor in methodology.factors_of(behaviour_id)
        )
        self._tables_ready = False
        # Lines the API's parser had to read (odd fields, or a chunk COPY could not take as it is).
        self.lines_read_by_python = 0

    # --- set-up ---------------------------------------------------------------------------------

    def _create_tables(self, cursor) -> None:
        cursor.execute(statements.IMPORT_TABLES_DROP)
        cursor.execute(statements.import_tables_create(len(self.header) if self.header else 1))
        rows = []
        for behaviour in self.methodology.behaviours_by_id.values():
            factors = self.methodology.factors_of(behaviour.id)
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
        cursor.executemany(statements.IMPORT_FACTORS_ADD, rows)
        cursor.execute(statements.IMPORT_BEHAVIOURS_CREATE)
        cursor.execute(
            statements.IMPORT_FACTOR_DAYS_CREATE,
            {
                "source": self.partner.source,
                "last_day": (self.now + CLOCK_SKEW).astimezone(LOCAL_TZ).date() + datetime.timedelta(days=1),
            },
        )
        self._tables_ready = True

    # --- one chunk ------------------------------------------------------------------------------

    def import_chunk(self, lines: list[bytes], parse, *, ordinals: list[int] | None = None) -> ChunkResult:
        """Imports a chunk of lines (each one record; blank ones skipped) in one transaction, then
        counts its rejected lines (step 6).

        `ordinals` number the lines within their chunk of the file (1, 2, … by default): a part of a
        chunk (`history_import` splits chunks by person) keeps the ordinals of its lines.
        """
        numbered = list(zip(ordinals or range(1, len(lines) + 1), lines, strict=True))
        result = self._import_in_transaction(numbered, parse)
        # The day's rejection counts, after the chunk's commit and in a statement of their own: the
        # parts of a chunk, side by side, would otherwise each wait on the other's commit (the
        # fsync of its records) for the same count rows, a third of a second a chunk.
        rejections_count(
            source=self.partner.source,
            partner_code=self.partner.code,
            codes=Counter(code for _, _, code, _ in result.rejected),
            now=self.now,
        )
        return result

    def _import_in_transaction(self, numbered: list[tuple[int, bytes]], parse) -> ChunkResult:
        # Inside a caller's transaction no commit has emptied the staging tables since the last chunk.
        empty_staging_tables = connection.in_atomic_block
        with transaction.atomic(), connection.cursor() as cursor:
            if not self._tables_ready:
                self._create_tables(cursor)
            cursor.execute(statements.IMPORT_SESSION)
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
            cursor.execute(statements.IMPORT_STAGING_EMPTY)
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
                cursor.execute(statements.IMPORT_LINES_UNTYPED)
                others = {row[0] for row in cursor.fetchall()}
                if others:
                    self._add_parsed(
                        cursor, [(ordinal, line) for ordinal, line in numbered if ordinal in others], parse
                    )
        self._check_people_and_duplicates(cursor)
        # The chunk's reports near a local midnight lock their instance there (`activities.instances`).
        statements.import_midnights_lock(cursor)
        self._lock_counters(cursor, create_missing=create_missing)
        self._check_instances(cursor)
        self._check_imported_instances(cursor)
        self._work_out_outcomes(cursor)
        moved = self._store(cursor)
        if self.on_credited is not None:
            cursor.execute(statements.IMPORT_CREDITED_DAYS, [RecordStatus.CREDITED.value])
            days = cursor.fetchall()
            if days:
                self.on_credited(days, f"{self.partner.code}:{self.now.isoformat()}:{numbered[0][0]}")
        cursor.execute(statements.IMPORT_TOTALS)
        accepted, held, duplicate, second_reports = cursor.fetchone()
        cursor.execute(statements.IMPORT_REJECTED)
        rejected = cursor.fetchall()
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
        try:
            with (
                transaction.atomic(),
                cursor.cursor.copy(statements.import_raw_copy(len(self.header))) as copy,
            ):
                copy.write(data)
        except psycopg.DataError:
            return False
        cursor.execute(statements.IMPORT_RAW_COUNT)
        if cursor.fetchone()[0] != len(numbered):
            cursor.execute(statements.IMPORT_RAW_EMPTY)
            return False
        return True

    def _type_plain_lines(self, cursor) -> None:
        """Types and checks the well-formed lines: the record rules of `capture_rules`, in order."""
        statement, instance_parameters = statements.import_plain_lines_type(
            self.header, RECORD_RULES_SQL, MAX_INSTANCE_VALUE_LENGTH
        )
        cursor.execute(statement, {**self._rule_parameters(), **instance_parameters})

    @property
    def oldest(self) -> datetime.datetime | None:
        """The history window's start for this chunk; none for an operator's back-fill."""
        return None if self.is_backfill else self.now - datetime.timedelta(days=history_window_days())

    def _rule_parameters(self) -> dict:
        return {
            "oldest": self.oldest,
            "prefix": f"{self.partner.code}:",
            "time_zone": LOCAL_TZ.key,
            "latest": self.now + CLOCK_SKEW,
            "max_quantity": MAX_QUANTITY,
            "rule_codes": [
                rule.code_for(errors.OCCURRED_BEFORE_HISTORY_WINDOW.code) for rule in RECORD_RULES
            ],
            "rule_details": [rule.detail for rule in RECORD_RULES],
        }

    def _add_parsed(self, cursor, numbered_lines: list[tuple[int, bytes]], parse) -> None:
        """Lines read by the API's parser and checked by `record_precheck`, added to `import_rows`."""
        prefix = f"{self.partner.code}:"
        self.lines_read_by_python += len(numbered_lines)
        with cursor.cursor.copy(statements.IMPORT_ROWS_COPY) as copy:
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
                if isinstance(checked, Candidate):
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
        """The person rules of `capture_rules`, in order, and duplicates (stored, or earlier in the chunk),
        the chunk's people and grants locked first (`IMPORT_PEOPLE_LOCK`)."""
        cursor.execute(
            statements.IMPORT_PEOPLE_LOCK, {"source": self.partner.source, "partner": self.partner.id}
        )
        cursor.execute(
            statements.import_people_and_duplicates_check(PERSON_RULES_SQL),
            {
                "source": self.partner.source,
                "partner": self.partner.id,
                "person_codes": [rule.code for rule in PERSON_RULES],
            },
        )

    def _lock_counters(self, cursor, *, create_missing: bool = False) -> None:
        """Locks the existing counter rows of the chunk's keys in key order, keeping what they hold.

        With `create_missing` (the rerun after a race) the missing rows are first created empty, so
        every counter of the chunk is locked here (`ingest._lock_counters`).
        """
        if create_missing:
            cursor.execute(statements.IMPORT_COUNTERS_CREATE)
        cursor.execute(statements.IMPORT_COUNTERS_LOCK)

    def _check_instances(self, cursor) -> None:
        """The second reports of instances (`ingest._instance_twins`), once the counters are locked.

        A report of an instance already credited (`INSTANCE_CREDITED_REPORT`) points at that record;
        of the others, the chunk's reports of one instance that follow each other within the time
        tolerance (any gap, without one) point at the first of them.
        """
        cursor.execute(statements.IMPORT_INSTANCES_CHECK)

    def _check_imported_instances(self, cursor) -> None:
        """Reports of instances an imported statement counts (`statements.instances`): the rule the
        batch path runs over its candidates, over the chunk's reports of instances no report of ours
        holds, under their people's shared lock against a statement import."""
        cursor.execute(statements.IMPORT_IMPORTED_INSTANCES_LOCK)
        cursor.execute(
            statements.IMPORT_IMPORTED_INSTANCES_CHECK,
            imported_instances.rule_parameters(**imported_instance_rule()),
        )

    def _work_out_outcomes(self, cursor) -> None:
        """Holds and caps of every fresh record, in the order things happened (`ingest._credit`)."""
        cursor.execute(
            statements.IMPORT_OUTCOMES_WORK_OUT
            if self.has_monthly_caps
            else statements.IMPORT_OUTCOMES_WORK_OUT_NO_MONTHLY_CAPS,
            {
                "hold_reasons": [rule.code for rule in HOLD_RULES],
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
        carbon_changed_for_everyone()
        cursor.execute(
            statements.IMPORT_DAY_COUNTERS_RAISE,
            {"held": RecordStatus.HELD.value},
        )
        races = cursor.fetchone()[0]
        cursor.execute(
            statements.IMPORT_MONTH_COUNTERS_RAISE,
            {"credited": RecordStatus.CREDITED.value},
        )
        races += cursor.fetchone()[0]
        if races:
            raise CounterRaceError
        cursor.execute(
            statements.IMPORT_RECORDS_STORE,
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
        parameters = {
            "source": self.partner.source,
            "partner": self.partner.id,
            "now": self.now,
            "duplicate": RecordStatus.DUPLICATE.value,
        }
        # Before the second reports: a later report of the chunk may be a second report of one of these.
        cursor.execute(statements.IMPORT_IMPORTED_REPORTS_STORE, parameters)
        expected, stored = cursor.fetchone()
        if len(stored) != expected:
            raise CounterRaceError
        cursor.execute(statements.IMPORT_SECOND_REPORTS_STORE, parameters)
        expected, stored = cursor.fetchone()
        if len(stored) != expected:
            raise CounterRaceError
        return len(instance_credits_move(cursor, stored))
