"""Leaderboard entries are derived data, rebuilt from DailyCarbon: on PostgreSQL the table skips the
write-ahead log (a rebuild writes millions of rows). After a crash PostgreSQL empties it; the
five-minute job finds boards whose entries are gone and rebuilds them (`leaderboards_heal`)."""

from django.db import migrations


def unlogged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE rewards_leaderboardentry SET UNLOGGED")


def logged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE rewards_leaderboardentry SET LOGGED")


class Migration(migrations.Migration):
    dependencies = [("rewards", "0008_leaderboard_top_indexes")]

    operations = [migrations.RunPython(unlogged, logged)]
