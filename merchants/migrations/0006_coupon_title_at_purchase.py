"""A coupon keeps what was bought as the offer named it at purchase, like its price and refund
promise. Coupons from before take their offer's title as it stands (what is known of it)."""

from django.db import migrations, models

BACKFILL = """
UPDATE merchants_coupon AS coupon SET title = offer.title
  FROM merchants_offer AS offer
 WHERE offer.id = coupon.offer_id
"""


class Migration(migrations.Migration):

    dependencies = [
        ("merchants", "0005_coupon_refund_promise"),
    ]

    operations = [
        migrations.AddField(
            model_name="coupon",
            name="title",
            field=models.CharField(default="", max_length=80, verbose_name="title at purchase"),
            preserve_default=False,
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
