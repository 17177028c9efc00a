# The coupon's code stays unique by its constraint's index; the pattern-matching index that
# `unique=True` added (never used: a code is looked up whole) is dropped without a rebuild.

from django.db import migrations

from core.migration_operations import UniqueFieldToConstraint


class Migration(migrations.Migration):
    dependencies = [
        ("merchants", "0002_coupon_indexes_written_per_redemption"),
    ]

    operations = [
        UniqueFieldToConstraint(model_name="coupon", name="code", constraint_name="coupon_code"),
    ]
