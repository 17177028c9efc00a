"""Each person's badge progress through a day: the streaks kept before (now `BadgeProgress`), with the
carbon credited in all and the day they reach. The rows of before counted today's days too, so they
are removed: until the next full badge run, a person's progress is read from all their days.
Donations get an index on when they were made, for the hourly badge run."""

import datetime

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rewards', '0023_chunked_run_followers'),
    ]

    operations = [
        migrations.RenameModel(old_name='PersonStreak', new_name='BadgeProgress'),
        migrations.RunSQL("DELETE FROM rewards_badgeprogress", migrations.RunSQL.noop),
        migrations.AlterModelOptions(
            name='badgeprogress',
            options={'verbose_name': 'badge progress', 'verbose_name_plural': 'badge progress'},
        ),
        migrations.AddField(
            model_name='badgeprogress',
            name='through_day',
            field=models.DateField(default=datetime.date(2000, 1, 1)),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='badgeprogress',
            name='carbon_mg',
            field=models.BigIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.AddIndex(
            model_name='donation',
            index=models.Index(fields=['created_at'], name='donation_created'),
        ),
    ]
