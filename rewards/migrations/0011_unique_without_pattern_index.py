# The ledger's idempotency key stays unique by its constraint's index; the pattern-matching index
# that `unique=True` added (never used: keys are compared whole) is dropped without a rebuild.

from django.db import migrations

from core.migration_operations import UniqueFieldToConstraint


class Migration(migrations.Migration):
    dependencies = [
        ("rewards", "0010_leaderboard_entries_partitioned"),
    ]

    operations = [
        UniqueFieldToConstraint(
            model_name="ledgertransaction",
            name="idempotency_key",
            constraint_name="ledger_transaction_idempotency_key",
        ),
    ]
