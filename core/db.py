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
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import psycopg
from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from psycopg import sql

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


def execute(statement: str | sql.Composable, params: dict | list | None = None) -> list[tuple]:
    """Runs one statement on the default connection (Django's cursor); its rows, if it returns any.

    The one executor for the apps' statements modules: text or a `psycopg.sql` composition.
    """
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []
