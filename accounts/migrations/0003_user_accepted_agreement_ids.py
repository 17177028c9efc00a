from django.db import migrations, models

# Each person's copy of their acceptances, filled in one statement.
_COPY_FILL = """
    UPDATE accounts_user SET accepted_agreement_ids = accepted.ids
      FROM (SELECT user_id, jsonb_agg(agreement_id ORDER BY agreement_id) AS ids
              FROM accounts_agreementacceptance GROUP BY user_id) AS accepted
     WHERE accepted.user_id = accounts_user.id
"""


def accepted_agreements_copy_fill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(_COPY_FILL)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_user_avatar_user_merged_into_agreement_device_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="accepted_agreement_ids",
            field=models.JSONField(
                blank=True, default=list, editable=False, verbose_name="accepted agreement versions"
            ),
        ),
        migrations.RunPython(accepted_agreements_copy_fill, migrations.RunPython.noop, elidable=True),
    ]
