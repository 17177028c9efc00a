"""Each person's streaks kept (the latest run of active days and the longest), computed once here for
everyone from their days, then by the badge run; a person's read adds the days since."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0008_person_language'),
        ('activities', '0017_statements_handed_back_index'),
        ('rewards', '0021_statement_mint_rounds'),
    ]

    operations = [
        migrations.CreateModel(
            name='PersonStreak',
            fields=[
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to=settings.AUTH_USER_MODEL)),
                ('run_start', models.DateField()),
                ('run_end', models.DateField()),
                ('longest_days', models.PositiveIntegerField()),
                ('refreshed_at', models.DateTimeField()),
            ],
            options={
                'verbose_name': 'streak',
                'verbose_name_plural': 'streaks',
            },
        ),
        migrations.RunSQL(
            """
            INSERT INTO rewards_personstreak (user_id, run_start, run_end, longest_days, refreshed_at)
            SELECT DISTINCT ON (user_id) user_id, run_start, run_end,
                   MAX(days) OVER (PARTITION BY user_id), now()
            FROM (
                SELECT user_id, MIN(day) AS run_start, MAX(day) AS run_end, COUNT(*) AS days
                FROM (
                    SELECT user_id, day,
                           (day - DATE '2000-01-01') - ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY day) AS island
                    FROM activities_dailycarbon WHERE credited_carbon_mg > 0
                ) AS islands
                GROUP BY user_id, island
            ) AS runs
            ORDER BY user_id, run_end DESC
            """,
            migrations.RunSQL.noop,
        ),
    ]
