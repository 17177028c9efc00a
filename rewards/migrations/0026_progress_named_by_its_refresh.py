"""A person's progress says which refresh last changed it (`refresh_number`); the day it was counted
through and when are that refresh's, so the progress no longer repeats them."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('rewards', '0025_progress_counted'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='badgeprogress',
            name='refreshed_at',
        ),
        migrations.RemoveField(
            model_name='badgeprogress',
            name='through_day',
        ),
    ]
