"""Each lot made in the admin keyed by the operator's add form (its one-time key), so the same form sent
twice makes one lot. Lots made before, and by other paths, have none."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("registry", "0005_lot_fen_per_coin_at_least_one")]

    operations = [
        migrations.AddField(
            model_name="reductionlot",
            name="request_key",
            field=models.UUIDField(editable=False, null=True, unique=True),
        ),
    ]
