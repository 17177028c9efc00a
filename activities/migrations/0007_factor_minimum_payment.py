"""Payments count from a minimum amount: online utility payments of ¥1 or more (methodology v1)."""

from django.db import migrations, models

# behaviour code → smallest payment counted, in fen
MINIMUM_PAYMENTS_V1 = {"utility_payment": 100}


def set_minimum_payments(apps, schema_editor):
    Factor = apps.get_model("activities", "Factor")
    for code, fen in MINIMUM_PAYMENTS_V1.items():
        Factor.objects.filter(version__number=1, behaviour__code=code).update(minimum_payment_fen=fen)


class Migration(migrations.Migration):
    dependencies = [("activities", "0006_counters_without_redundant_indexes")]

    operations = [
        migrations.AddField(
            model_name="factor",
            name="minimum_payment_fen",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Payments below this amount are rejected; records must then carry their amount.",
                null=True,
                verbose_name="smallest payment counted (fen)",
            ),
        ),
        migrations.RunPython(set_minimum_payments, migrations.RunPython.noop),
    ]
