"""A statement is minted in rounds: round 1 at import, a later round for carbon handed back to it.

Every existing mint is round 1, minted when its statement was imported. A round that buys no whole
coin is recorded without a ledger transaction. Statements a minting peer's import left without a
mint (too little carbon for one coin) get no later rounds: the import then recorded nothing.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('activities', '0016_rejected_reports_hand_instances_back'),
        ('rewards', '0020_balance_check_of_the_statements_entries'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='statementmint',
            name='statement_mint_coins_positive',
        ),
        migrations.AddField(
            model_name='statementmint',
            name='minted_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name='statementmint',
            name='round',
            field=models.PositiveSmallIntegerField(default=1, verbose_name='round'),
        ),
        migrations.RunSQL(
            "UPDATE rewards_statementmint AS mint SET minted_at = statement.imported_at"
            " FROM activities_peerstatement AS statement WHERE statement.id = mint.statement_id",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name='statementmint',
            name='statement',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='mints', to='activities.peerstatement'),
        ),
        migrations.AlterField(
            model_name='statementmint',
            name='transaction',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='statement_mints', to='rewards.ledgertransaction'),
        ),
        migrations.AddConstraint(
            model_name='statementmint',
            constraint=models.UniqueConstraint(fields=('statement', 'round'), name='one_statement_mint_per_round'),
        ),
        migrations.AddConstraint(
            model_name='statementmint',
            constraint=models.CheckConstraint(condition=models.Q(('round__gte', 1)), name='statement_mint_round_from_one'),
        ),
        migrations.AddConstraint(
            model_name='statementmint',
            constraint=models.CheckConstraint(condition=models.Q(('carbon_mg__gt', 0), models.Q(('carbon_mg', 0), ('round', 1)), _connector='OR'), name='statement_mint_carbon_settled'),
        ),
        migrations.AddConstraint(
            model_name='statementmint',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('coins__gt', 0), ('transaction__isnull', False)), models.Q(('coins', 0), ('transaction__isnull', True)), _connector='OR'), name='statement_mint_coins_with_transaction'),
        ),
    ]
