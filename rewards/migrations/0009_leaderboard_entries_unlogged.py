"""Leaderboard entries are derived data, rebuilt from DailyCarbon: the table skips the
write-ahead log (a rebuild writes millions of rows). After a crash PostgreSQL empties it; the
five-minute job finds boards whose entries are gone and rebuilds them (`leaderboards_heal`)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("rewards", "0008_leaderboard_top_indexes")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE rewards_leaderboardentry SET UNLOGGED", "ALTER TABLE rewards_leaderboardentry SET LOGGED"
        )
    ]
