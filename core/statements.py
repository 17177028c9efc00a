"""The raw statements of `core`, composed with `psycopg.sql`: names are `sql.Identifier`s."""

from __future__ import annotations

from psycopg import sql

# Readiness: the database answers a query.
DATABASE_PING = sql.SQL("SELECT 1")

# Drops an index by name (a pattern index that `unique=True` added and a constraint does not need).
INDEX_DROP = sql.SQL("DROP INDEX {index}")

# Renames a table's constraint: a catalog change, its index stays as it is.
CONSTRAINT_RENAME = sql.SQL("ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}")
