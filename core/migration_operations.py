"""Migration operations of our own, for changes that Django's operations make slowly on a big table."""

from __future__ import annotations

from django.db import models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from psycopg import sql

from core import statements


class UniqueFieldToConstraint(Operation):
    """A field's `unique=True` becomes a named `UniqueConstraint`, keeping its index.

    On PostgreSQL `unique=True` on a text column builds two indexes: the unique constraint's and a
    `varchar_pattern_ops` one for `LIKE 'prefix%'`. A column only ever compared whole (an
    idempotency key, a coupon code) needs the first only, and every insert writes both. Django's
    own operations (AlterField, AddConstraint) would drop the unique index and build it again,
    holding off writes for as long as that takes on a table of millions of rows. This renames the
    existing constraint (its index stays as it is) and drops the pattern index: a catalog change.
    """

    reversible = True

    def __init__(self, model_name: str, name: str, constraint_name: str) -> None:
        self.model_name = model_name
        self.name = name
        self.constraint_name = constraint_name

    def deconstruct(self) -> tuple[str, list, dict]:
        return (
            self.__class__.__qualname__,
            [],
            {"model_name": self.model_name, "name": self.name, "constraint_name": self.constraint_name},
        )

    def describe(self) -> str:
        return f"Make {self.model_name}.{self.name} unique by the constraint {self.constraint_name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.model_name.lower()}_{self.name}_constraint"

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        model_name = self.model_name.lower()
        field = state.models[app_label, model_name].fields[self.name]
        _path, args, kwargs = field.deconstruct()[1:]
        kwargs.pop("unique", None)
        state.alter_field(app_label, model_name, self.name, field.__class__(*args, **kwargs), True)
        state.add_constraint(app_label, model_name, self._constraint())

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        models_and_fields = self._models_and_fields(app_label, schema_editor, from_state, to_state)
        if models_and_fields is None:
            return
        (from_model, old_field), (_to_model, _new_field) = models_and_fields
        table, column = from_model._meta.db_table, old_field.column
        unique, pattern_indexes = self._existing(schema_editor, table, column)
        _constraint_rename(schema_editor, table, unique, self.constraint_name)
        for index in pattern_indexes:
            _execute(schema_editor, statements.INDEX_DROP.format(index=sql.Identifier(index)))

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        models_and_fields = self._models_and_fields(app_label, schema_editor, from_state, to_state)
        if models_and_fields is None:
            return
        (_from_model, _constrained_field), (to_model, unique_field) = models_and_fields
        # Back to the names Django gives `unique=True`, so later AlterFields find what they expect.
        table, column = to_model._meta.db_table, unique_field.column
        unique_name = schema_editor._create_index_name(table, [column], suffix="_uniq")
        _constraint_rename(schema_editor, table, self.constraint_name, unique_name)
        like_index = schema_editor._create_like_index_sql(to_model, unique_field)
        if like_index is not None:
            schema_editor.execute(like_index)

    def _models_and_fields(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> tuple[tuple[type[models.Model], models.Field], tuple[type[models.Model], models.Field]] | None:
        """The model and the field before and after, or None where this database is not migrated."""
        from_model = from_state.apps.get_model(app_label, self.model_name)
        to_model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, to_model):
            return None
        return (from_model, from_model._meta.get_field(self.name)), (
            to_model,
            to_model._meta.get_field(self.name),
        )

    def _constraint(self) -> models.UniqueConstraint:
        return models.UniqueConstraint(fields=[self.name], name=self.constraint_name)

    @staticmethod
    def _existing(schema_editor: BaseDatabaseSchemaEditor, table: str, column: str) -> tuple[str, list[str]]:
        """The unique constraint on `column` alone, and the pattern indexes `unique=True` added."""
        with schema_editor.connection.cursor() as cursor:
            constraints = schema_editor.connection.introspection.get_constraints(cursor, table)
        on_column = {name: details for name, details in constraints.items() if details["columns"] == [column]}
        unique = [
            name for name, details in on_column.items() if details["unique"] and not details["primary_key"]
        ]
        if len(unique) != 1:
            raise ValueError(f"expected one unique constraint on {table}.{column}, found {unique}")
        pattern = [name for name, details in on_column.items() if details["index"] and name.endswith("_like")]
        return unique[0], pattern


def _constraint_rename(schema_editor: BaseDatabaseSchemaEditor, table: str, old: str, new: str) -> None:
    _execute(
        schema_editor,
        statements.CONSTRAINT_RENAME.format(
            table=sql.Identifier(table), old=sql.Identifier(old), new=sql.Identifier(new)
        ),
    )


def _execute(schema_editor: BaseDatabaseSchemaEditor, statement: sql.Composable) -> None:
    """Django's schema editor takes text (it logs it, and `sqlmigrate` collects it): the composed
    statement is rendered for it, quoting its names as the connection would."""
    schema_editor.execute(statement.as_string(schema_editor.connection.connection))
