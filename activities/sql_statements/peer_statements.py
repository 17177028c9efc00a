"""The signed carbon statements' package (`activities.statements`): the person's lock between a
statement import and capture (`statements.instances`), and the daily deletion of expired nonces
(`statements.importing`)."""

from __future__ import annotations

import datetime

from psycopg import sql

_PERSONS_LOCK = sql.SQL(
    "SELECT {lock}(hashtextextended('statement-instances:' || u::text, 0)) "
    "FROM unnest(%s::bigint[]) AS u ORDER BY u"
)
PERSONS_LOCK_EXCLUSIVE = _PERSONS_LOCK.format(lock=sql.SQL("pg_advisory_xact_lock"))
PERSONS_LOCK_SHARED = _PERSONS_LOCK.format(lock=sql.SQL("pg_advisory_xact_lock_shared"))

# The imported statements that came with the nonces going lose the link (the token keeps the nonce
# claim), then the nonces go: two set-based statements, whatever their number.
NONCES_UNLINK = sql.SQL(
    """
    UPDATE activities_peerstatement s SET nonce_id = NULL
    FROM activities_statementnonce n
    WHERE s.nonce_id = n.id AND n.expires_at < %s
    """
)
NONCES_DELETE = sql.SQL("DELETE FROM activities_statementnonce WHERE expires_at < %s")


def persons_lock(cursor, user_ids: list[int], *, shared: bool) -> None:
    """Transaction-level advisory locks of the people (sorted ids), shared or exclusive."""
    cursor.execute(PERSONS_LOCK_SHARED if shared else PERSONS_LOCK_EXCLUSIVE, [user_ids])


def nonces_delete_expired(cursor, cutoff: datetime.datetime) -> int:
    """Deletes the nonces that expired before `cutoff`, unlinking their statements first; how many."""
    cursor.execute(NONCES_UNLINK, [cutoff])
    cursor.execute(NONCES_DELETE, [cutoff])
    return cursor.rowcount
