"""Prepared statements for the few hot statements that run on every redemption.

Django's PostgreSQL backend binds parameters on the client: every statement reaches the server
as new text, and the server parses and plans it again each time. For a statement as long as the
ledger's transfer, planning costs about as much as running it. `prepared_cursor()` runs a
statement through a server-side-binding psycopg cursor that prepares it on the connection the
first time and only binds and executes it afterwards.

The cursor is wrapped the way Django wraps its own, so it takes part in the connection's
transaction, raises Django's database errors, and shows in `connection.queries` and in execute
wrappers. With DATABASE_PREPARED_STATEMENTS=false it is the ordinary cursor. Prepared statements
live on one server connection: behind a pooler in transaction mode that does not keep them, turn
them off.

`prepared_fetchone()` is the shortcut of the hottest write (the ledger's transfer, run once per
redemption or donation): one statement, its one row, through a prepared cursor the connection keeps
for as long as it lives, without making and wrapping a cursor for each run. It too runs in the
connection's transaction and raises Django's errors, and runs through `prepared_cursor()` whenever
the query log or an execute wrapper would want to see it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.postgresql.base import TIMESTAMPTZ_OID
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.utils.asyncio import async_unsafe
from psycopg import sql
from psycopg.pq import Format

ONLY_WHEN_ASKED = sys.maxsize  # psycopg prepares a statement after this many runs, or when asked


class _PreparedCursor(psycopg.Cursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


class _LoggedPreparedCursor(CursorDebugWrapper):
    """Django's query log, for a cursor whose runs psycopg keeps no text of (they go by name)."""

    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params), params):
            return CursorWrapper.execute(self, sql, params)


@contextlib.contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """A cursor whose statements are prepared on the server once per connection."""
    if not settings.DATABASE_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.ensure_connection()
    raw_connection = connection.connection
    if raw_connection.prepare_threshold is None:
        # Django turns psycopg's automatic preparing off; prepare only what this cursor runs.
        raw_connection.prepare_threshold = ONLY_WHEN_ASKED
    # Django's own cursor path (time zone, wrapping, error translation), with this cursor class.
    usual_factory = raw_connection.cursor_factory
    raw_connection.cursor_factory = _PreparedCursor
    try:
        cursor = connection.cursor()
    finally:
        raw_connection.cursor_factory = usual_factory
    if isinstance(cursor, CursorDebugWrapper):
        cursor = _LoggedPreparedCursor(cursor.cursor, connection)
    with cursor:
        yield cursor


def _kept_cursor(database: BaseDatabaseWrapper) -> psycopg.Cursor:
    """The connection's own prepared cursor, made once per server connection."""
    if database.connection is None:
        database.ensure_connection()
    raw_connection = database.connection
    kept = getattr(database, "_kept_prepared_cursor", None)
    if kept is not None and kept.connection is raw_connection and not kept.closed:
        return kept
    if raw_connection.prepare_threshold is None:
        raw_connection.prepare_threshold = ONLY_WHEN_ASKED
    kept = _PreparedCursor(raw_connection)
    # As Django's own cursors: timestamps read in the connection's time zone.
    if database.timezone != raw_connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT).timezone:
        register_tzloader(database.timezone, kept)
    database._kept_prepared_cursor = kept
    return kept


@async_unsafe
def prepared_fetchone(statement: str, params: dict | list) -> tuple | None:
    """Runs one statement prepared on the server (as `prepared_cursor()`); its first row, or None."""
    database = connections[DEFAULT_DB_ALIAS]
    if not settings.DATABASE_PREPARED_STATEMENTS or database.queries_logged or database.execute_wrappers:
        with prepared_cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchone()
    cursor = _kept_cursor(database)
    database.validate_no_broken_transaction()
    with database.wrap_database_errors:
        cursor.execute(statement, params)
        return cursor.fetchone()


def execute(statement: str | sql.Composable, params: dict | list | None = None) -> list[tuple]:
    """Runs one statement on the default connection (Django's cursor); its rows, if it returns any.

    The one executor for the apps' statements modules: text or a `psycopg.sql` composition.
    """
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []
