"""Partner signatures cover the method and the path. The partners there already were keep the
earlier form (timestamp, request id, body) for 90 days, time to move; a partner created from now on
signs the method and path from its first request."""

import datetime

from django.db import migrations, models
from django.utils import timezone

LEGACY_SIGNATURE_GRACE = datetime.timedelta(days=90)


def existing_partners_keep_the_earlier_form(apps, schema_editor):
    Partner = apps.get_model("activities", "Partner")
    Partner.objects.filter(legacy_signature_until__isnull=True).update(
        legacy_signature_until=timezone.now() + LEGACY_SIGNATURE_GRACE
    )


class Migration(migrations.Migration):

    dependencies = [
        ("activities", "0017_statements_handed_back_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="partner",
            name="legacy_signature_until",
            field=models.DateTimeField(
                blank=True,
                help_text=(
                    "Until then the partner may still sign timestamp, request id and body without the"
                    " method and path. Empty: only signatures of the method and path are accepted."
                ),
                null=True,
                verbose_name="legacy signatures accepted until",
            ),
        ),
        migrations.AddField(
            model_name="partner",
            name="legacy_signature_seen_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="legacy signature last used"
            ),
        ),
        migrations.RunPython(existing_partners_keep_the_earlier_form, migrations.RunPython.noop),
    ]
