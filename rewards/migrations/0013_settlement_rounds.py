# A day can be settled in rounds: 0 by the night, then each operator's settlement of what was owed
# after it. The new keys are built before the old ones go, so a settlement is never unkeyed.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rewards", "0012_backfill_settlement"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="settlementrun",
            options={
                "ordering": ["-day", "-round"],
                "verbose_name": "settlement run",
                "verbose_name_plural": "settlement runs",
            },
        ),
        migrations.AddField(
            model_name="settlementrun",
            name="round",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="settlementrun",
            name="started_by",
            field=models.ForeignKey(
                blank=True,
                help_text="The operator who asked for this round; empty for the nightly settlement.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddConstraint(
            model_name="settlementrun",
            constraint=models.UniqueConstraint(fields=("day", "round"), name="one_settlement_run_per_day_and_round"),
        ),
        migrations.AlterField(
            model_name="settlementrun",
            name="day",
            field=models.DateField(),
        ),
        migrations.AddConstraint(
            model_name="settlement",
            constraint=models.UniqueConstraint(
                fields=("user_id", "day", "run"), name="one_settlement_per_person_and_run"
            ),
        ),
        migrations.RemoveConstraint(
            model_name="settlement",
            name="one_settlement_per_person_and_day",
        ),
    ]
