"""The midnight locks of instances (`activities.instances`), taken by both capture paths: the batch
path over its candidates' packed columns (`CANDIDATE_MIDNIGHTS_LOCK`), the bulk import over its
staging table (`sql_statements.bulk_import.IMPORT_MIDNIGHTS_LOCK`)."""

from __future__ import annotations

from psycopg import sql

from activities.sql_statements import packed, packed_arrays
from core.local_time import LOCAL_TZ

# `rows` is a relation of (user_id, behaviour_id, instance_key, occurred_at, tolerance in seconds);
# each report within its tolerance of a local midnight locks (person, behaviour, key, midnight), in
# the order of the locks' numbers. The local time zone is the statement's last parameter (after any
# of `rows`), never part of its text.
_MIDNIGHTS_LOCK = sql.SQL(
    """
    SELECT pg_advisory_xact_lock(l.lock_id)
    FROM (
        SELECT DISTINCT hashtextextended(
                   concat_ws(':', 'instance-midnight', t.user_id, t.behaviour_id, t.instance_key, m.midnight),
                   0) AS lock_id
        FROM {rows} AS t(user_id, behaviour_id, instance_key, occurred_at, tolerance)
        CROSS JOIN (VALUES (%s::text)) AS z(time_zone)
        CROSS JOIN LATERAL (
            VALUES (date_trunc('day', t.occurred_at AT TIME ZONE z.time_zone)),
                   (date_trunc('day', t.occurred_at AT TIME ZONE z.time_zone) + interval '1 day')
        ) AS m(midnight)
        WHERE t.instance_key IS NOT NULL AND t.tolerance IS NOT NULL
          AND abs(extract(epoch FROM (t.occurred_at AT TIME ZONE z.time_zone) - m.midnight)) <= t.tolerance
        ORDER BY 1
    ) AS l
    """
)


def midnights_lock(rows: sql.Composable) -> sql.Composed:
    """The statement locking the midnights of `rows` (a relation of the five columns above); run it
    with `rows`' parameters, if any, then the local time zone (`midnights_lock_parameters`)."""
    return _MIDNIGHTS_LOCK.format(rows=rows)


def midnights_lock_parameters(*rows_parameters) -> list:
    """The parameters of a `midnights_lock` statement: its rows' own, then the local time zone."""
    return [*rows_parameters, LOCAL_TZ.key]


CANDIDATE_MIDNIGHTS_LOCK = midnights_lock(
    sql.SQL("unnest({})").format(packed_arrays("bigint", "bigint", "text", "timestamptz", "integer"))
)


def candidate_midnights_lock(cursor, reports: list[tuple]) -> None:
    """Takes the midnight locks of `reports`: (person, behaviour, key, occurred at, tolerance)."""
    cursor.execute(
        CANDIDATE_MIDNIGHTS_LOCK,
        midnights_lock_parameters(*(packed(column) for column in zip(*reports, strict=True))),
    )
