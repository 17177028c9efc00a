"""Leaves a fifth of each page of ledger accounts free, so that balance updates (every night, for
every wallet settled) stay on the page as HOT updates instead of rewriting the indexes."""

from django.db import migrations


def fillfactor_set(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE rewards_ledgeraccount SET (fillfactor = 80)", params=None)


def fillfactor_reset(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE rewards_ledgeraccount RESET (fillfactor)", params=None)


class Migration(migrations.Migration):
    dependencies = [("rewards", "0002_ledger_guards_and_default_rate")]

    operations = [migrations.RunPython(fillfactor_set, fillfactor_reset)]
