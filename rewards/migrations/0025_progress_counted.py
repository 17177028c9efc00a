"""The people's progress counted day by day: each refresh is recorded (`ProgressRefresh`), each person's
progress names the refresh that last changed it, each badge the refresh whose changes it looked at.
The progress of before was not counted on the days (`DailyCarbon.counted_carbon_mg`, 0 on every day
until now), so it is removed: the next refresh (the next hourly badge run's) counts everyone's days
once, as each night's full run did before, and until then a person's progress is read from all
their days."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rewards', '0024_badge_progress'),
        ('activities', '0019_progress_counted'),
    ]

    operations = [
        migrations.CreateModel(
            name='ProgressRefresh',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('through_day', models.DateField()),
                ('started_at', models.DateTimeField()),
                ('finished_at', models.DateTimeField()),
                ('days_counted', models.BigIntegerField()),
                ('people_changed', models.BigIntegerField()),
                ('people_recounted', models.BigIntegerField()),
            ],
            options={
                'verbose_name': 'progress refresh',
                'verbose_name_plural': 'progress refreshes',
                'ordering': ['-id'],
            },
        ),
        migrations.AddField(
            model_name='badge',
            name='looked_through_refresh',
            field=models.BigIntegerField(blank=True, null=True, verbose_name='looked through progress refresh'),
        ),
        migrations.AddField(
            model_name='badgeprogress',
            name='refresh_number',
            field=models.BigIntegerField(db_default=0, db_index=True),
        ),
        migrations.RunSQL("DELETE FROM rewards_badgeprogress", migrations.RunSQL.noop),
    ]
