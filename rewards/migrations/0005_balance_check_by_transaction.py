"""The balance check looks each inserted transaction up by its index.

The first version joined the statement's inserted entries against all entries; with no statistics
on a transition table, PostgreSQL may plan that as a scan of the whole ledger on every insert. Now
each distinct transaction of the statement is summed through the transaction index.
"""

from django.db import migrations

FORWARD = """
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

BACKWARD = """
CREATE OR REPLACE FUNCTION rewards_ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unbalanced bigint;
BEGIN
    SELECT entry.transaction_id INTO unbalanced
    FROM rewards_ledgerentry AS entry
    WHERE entry.transaction_id IN (SELECT DISTINCT transaction_id FROM inserted_entries)
    GROUP BY entry.transaction_id
    HAVING SUM(entry.amount) <> 0 OR COUNT(*) < 2
    LIMIT 1;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction % does not balance (entries must sum to zero, two or more)',
            unbalanced USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("rewards", "0004_lean_settlement_indexes")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
