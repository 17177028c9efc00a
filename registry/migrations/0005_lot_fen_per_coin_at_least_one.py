"""A lot's fen per coin is at least one: the proceeds are divided by it, so a lot of 0 could never pay
a sale's proceeds."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("registry", "0004_sale_and_retirement_request_keys")]

    operations = [
        migrations.AlterField(
            model_name="reductionlot",
            name="fen_per_coin",
            field=models.PositiveIntegerField(
                default=10,
                help_text="What one bonus coin stands for when proceeds are paid.",
                validators=[django.core.validators.MinValueValidator(1)],
                verbose_name="fen per coin",
            ),
        ),
        migrations.AddConstraint(
            model_name="reductionlot",
            constraint=models.CheckConstraint(
                condition=models.Q(fen_per_coin__gte=1), name="lot_fen_per_coin_at_least_one"
            ),
        ),
    ]
