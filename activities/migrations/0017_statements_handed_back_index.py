"""The statements carbon was handed back to, found through a partial index of the hand-backs
(the night's rounds of coins look them up; it grows with the hand-backs, not the instances)."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('activities', '0016_rejected_reports_hand_instances_back'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='importedinstance',
            index=models.Index(condition=models.Q(('handed_back_from__isnull', False)), fields=['statement'], name='imported_instance_handed_back'),
        ),
    ]
