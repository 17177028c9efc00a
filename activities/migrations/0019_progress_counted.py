"""What the people's progress has counted of each day, and the partial index of the days it has not
counted as they are now (every day with carbon, until the first refresh counts them), by a stored
column the planner keeps statistics of. Adding a stored column rewrites the table once."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('activities', '0018_partner_signatures_cover_method_and_path'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='dailycarbon',
            name='counted_carbon_mg',
            field=models.BigIntegerField(db_default=0),
        ),
        migrations.AddField(
            model_name='dailycarbon',
            name='uncounted',
            field=models.GeneratedField(db_persist=True, expression=models.Q(('credited_carbon_mg', models.F('counted_carbon_mg')), _negated=True), output_field=models.BooleanField()),
        ),
        migrations.AddIndex(
            model_name='dailycarbon',
            index=models.Index(condition=models.Q(('uncounted', True)), fields=['user', 'day'], name='daily_carbon_uncounted'),
        ),
    ]
