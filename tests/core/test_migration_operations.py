"""`UniqueFieldToConstraint`: unique by a named constraint, the same index kept, the pattern index gone.

Run with a real schema editor on a throwaway table, forwards and backwards, and against what the
project's migrations left on the two tables written by every redemption.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, models, transaction
from django.db.migrations.state import ModelState, ProjectState

from core.migration_operations import UniqueFieldToConstraint

pytestmark = pytest.mark.django_db

APP = "migration_operations"
TABLE = f"{APP}_shelf"


def _constraints(table: str) -> dict[str, dict]:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, table)


def _on_code(table: str, column: str = "code") -> dict[str, dict]:
    """The indexes and constraints on `column`, less NOT NULL (a named constraint from PostgreSQL 18 on)."""
    return {
        name: details
        for name, details in _constraints(table).items()
        if details["columns"] == [column] and (details["index"] or details["unique"] or details["check"])
    }


def _index_oid(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::regclass::oid", [name])
        return cursor.fetchone()[0]


@pytest.fixture
def shelf_states() -> tuple[ProjectState, ProjectState, UniqueFieldToConstraint]:
    before = ProjectState()
    before.add_model(
        ModelState(
            APP,
            "Shelf",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("code", models.CharField(max_length=16, unique=True)),
            ],
        )
    )
    operation = UniqueFieldToConstraint(model_name="shelf", name="code", constraint_name="shelf_code")
    after = before.clone()
    operation.state_forwards(APP, after)
    with connection.schema_editor() as editor:
        editor.create_model(before.apps.get_model(APP, "Shelf"))
    return before, after, operation


def test_the_state_is_a_plain_field_and_a_named_constraint(shelf_states):
    _before, after, _operation = shelf_states
    model_state = after.models[APP, "shelf"]
    assert model_state.fields["code"].unique is False
    assert [(c.name, c.fields) for c in model_state.options["constraints"]] == [("shelf_code", ("code",))]


def test_forwards_renames_the_constraint_keeps_its_index_and_drops_the_pattern_index(shelf_states):
    before, after, operation = shelf_states
    [unique_name] = [name for name, details in _on_code(TABLE).items() if details["unique"]]
    [pattern_name] = [name for name in _on_code(TABLE) if name.endswith("_like")]
    index_before = _index_oid(unique_name)

    with connection.schema_editor() as editor:
        operation.database_forwards(APP, editor, before, after)

    assert set(_on_code(TABLE)) == {"shelf_code"}
    assert _on_code(TABLE)["shelf_code"]["unique"]
    assert _index_oid("shelf_code") == index_before  # the same index, not a rebuild
    assert pattern_name not in _constraints(TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (code) VALUES ('A1')")
        with pytest.raises(IntegrityError, match="shelf_code"), transaction.atomic():
            cursor.execute(f"INSERT INTO {TABLE} (code) VALUES ('A1')")


def test_backwards_gives_back_what_unique_true_builds(shelf_states):
    before, after, operation = shelf_states
    with connection.schema_editor() as editor:
        operation.database_forwards(APP, editor, before, after)
    with connection.schema_editor() as editor:
        operation.database_backwards(APP, editor, after, before)

    on_code = _on_code(TABLE)
    assert "shelf_code" not in on_code
    assert [name for name, details in on_code.items() if details["unique"]] == [
        connection.schema_editor()._create_index_name(TABLE, ["code"], suffix="_uniq")
    ]
    assert any(name.endswith("_like") for name in on_code)
    # And forwards again finds what it expects.
    with connection.schema_editor() as editor:
        operation.database_forwards(APP, editor, before, after)
    assert set(_on_code(TABLE)) == {"shelf_code"}


@pytest.mark.parametrize(
    ("table", "column", "constraint"),
    [
        ("rewards_ledgertransaction", "idempotency_key", "ledger_transaction_idempotency_key"),
        ("merchants_coupon", "code", "coupon_code"),
    ],
)
def test_the_keys_every_redemption_writes_have_one_unique_index(table, column, constraint):
    on_column = _on_code(table, column)
    assert list(on_column) == [constraint]
    assert on_column[constraint]["unique"]
