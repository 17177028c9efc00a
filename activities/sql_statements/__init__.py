"""Every raw SQL statement of activities, composed with `psycopg.sql`, and the functions that run them.

Named `sql_statements` rather than `statements` because `activities/statements/` is the package of
signed carbon statements (issued, verified and imported between platforms), which has nothing to do
with SQL. One module per caller: `capture` (the batch path, `ingest`, and the few statements of
`services`), `bulk_import` (the bulk history import and its staging tables), `instances` (the
midnight locks both capture paths take, `activities.instances`), `imported_instances` (reports of
instances an imported statement counts, which both capture paths look for), `peer_statements` (the
person's lock between a statement import and capture, and the expired nonces' deletion, for
`activities/statements/`), `merge` (the merge of two accounts, `personal_data`) and `today` (what a
person sees today, `selectors`, run on the prepared cursor). Values always travel as parameters, the
local time zone too; the only things composed into the text are constants of these modules and of
`capture_rules`, the staging tables' column names (`sql.Identifier`) and literals of those constants
(`sql.Literal`).

This module packs columns of values for them. Arrays go to PostgreSQL as one string per column,
split on the unit separator by the server (`string_to_array`): far cheaper than adapting thousands
of Python values one by one. The string starts with a separator and the SQL drops the first
element, so a one-element array of '' survives.
"""

from __future__ import annotations

import datetime

from psycopg import sql

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
