"""Every table declares where it would live on a distributed PostgreSQL (operations/table_classes.py,
docs/scaling.md): a new table fails here until it is classified."""

from __future__ import annotations

from django.apps import apps

from operations.table_classes import DISTRIBUTED, LOCAL, REFERENCE, TABLE_CLASSES


def _tables() -> set[str]:
    return {model._meta.db_table for model in apps.get_models(include_auto_created=True)}


def test_every_table_is_classified_and_no_class_names_a_table_that_is_gone():
    tables = _tables()
    assert sorted(tables - TABLE_CLASSES.keys()) == [], "classify these in operations/table_classes.py"
    assert sorted(TABLE_CLASSES.keys() - tables) == [], "these tables no longer exist"


def test_a_distributed_table_names_its_distribution_column_and_no_other_does():
    for table, (kind, column) in TABLE_CLASSES.items():
        assert kind in (DISTRIBUTED, REFERENCE, LOCAL), table
        assert bool(column) == (kind == DISTRIBUTED), table


def test_a_distribution_column_is_the_person_and_exists_unless_marked_to_add():
    columns = {
        model._meta.db_table: {field.column for field in model._meta.concrete_fields}
        for model in apps.get_models(include_auto_created=True)
    }
    for table, (kind, column) in TABLE_CLASSES.items():
        if kind == DISTRIBUTED and not column.endswith("(to add)"):
            assert column in columns[table], f"{table}.{column}"
