"""Leaves a fifth of each page of ledger accounts free, so that balance updates (every night, for
every wallet settled) stay on the page as HOT updates instead of rewriting the indexes."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("rewards", "0002_ledger_guards_and_default_rate")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE rewards_ledgeraccount SET (fillfactor = 80)",
            "ALTER TABLE rewards_ledgeraccount RESET (fillfactor)",
        )
    ]
