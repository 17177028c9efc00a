"""The balance check sums only the entries the statement inserted.

Every writer inserts all legs of a transaction in one statement (rewards.ledger.writer), so it is
enough that each statement's entries of each transaction sum to zero, two or more of them: by
induction every transaction in the ledger then balances, and the check reads nothing but the
statement's own rows instead of looking each transaction's entries up again through the index. A
statement that adds a single entry to an earlier transaction is refused even where the sum would
come out at zero: the legs of a transaction are posted together.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION rewards_ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced bigint;
BEGIN
    SELECT transaction_id INTO unbalanced FROM inserted_entries
    GROUP BY transaction_id HAVING SUM(amount) <> 0 OR COUNT(*) < 2
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % does not balance (entries must sum to zero, two or more)',
            unbalanced USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
"""

BACKWARD = """
CREATE OR REPLACE FUNCTION rewards_ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    checked bigint;
    total numeric;
    legs bigint;
BEGIN
    FOR checked IN SELECT DISTINCT transaction_id FROM inserted_entries LOOP
        SELECT SUM(amount), COUNT(*) INTO total, legs
        FROM rewards_ledgerentry WHERE transaction_id = checked;
        IF total <> 0 OR legs < 2 THEN
            RAISE EXCEPTION 'ledger transaction % does not balance (entries must sum to zero, two or more)',
                checked USING ERRCODE = 'check_violation';
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("rewards", "0019_coin_lot_unspent")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
