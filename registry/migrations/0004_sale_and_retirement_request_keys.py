"""Each sale and retirement keyed by the operator's submission (the form's one-time key), so the same
form sent twice records one. Rows recorded before get a key of their own."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("registry", "0003_sale_proceeds_shares")]

    operations = [
        migrations.AddField(
            model_name="lotsale", name="request_key", field=models.UUIDField(editable=False, null=True)
        ),
        migrations.AddField(
            model_name="lotretirement", name="request_key", field=models.UUIDField(editable=False, null=True)
        ),
        migrations.RunSQL(
            "UPDATE registry_lotsale SET request_key = gen_random_uuid() WHERE request_key IS NULL;"
            " UPDATE registry_lotretirement SET request_key = gen_random_uuid() WHERE request_key IS NULL;",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="lotsale", name="request_key", field=models.UUIDField(editable=False, unique=True)
        ),
        migrations.AlterField(
            model_name="lotretirement", name="request_key", field=models.UUIDField(editable=False, unique=True)
        ),
    ]
