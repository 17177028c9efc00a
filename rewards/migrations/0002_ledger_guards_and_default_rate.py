"""The ledger's guarantees, enforced by PostgreSQL itself, and the default coin rate.

- Entries and transactions are append-only: UPDATE and DELETE are refused by a trigger.
- Each INSERT into entries is checked, once per statement, against every transaction it touches:
  the transaction's entries must sum to zero and be at least two. Services therefore insert all
  legs of a transaction in one statement (one bulk_create, one INSERT … SELECT).
"""

import datetime

from django.db import migrations

POSTGRES_FORWARD = """
CREATE FUNCTION rewards_ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are append-only: % on % refused (post a compensating transaction)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER rewards_ledgerentry_append_only
    BEFORE UPDATE OR DELETE ON rewards_ledgerentry
    FOR EACH STATEMENT EXECUTE FUNCTION rewards_ledger_refuse_change();
CREATE TRIGGER rewards_ledgertransaction_append_only
    BEFORE UPDATE OR DELETE ON rewards_ledgertransaction
    FOR EACH STATEMENT EXECUTE FUNCTION rewards_ledger_refuse_change();

CREATE FUNCTION rewards_ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER rewards_ledgerentry_balanced
    AFTER INSERT ON rewards_ledgerentry
    REFERENCING NEW TABLE AS inserted_entries
    FOR EACH STATEMENT EXECUTE FUNCTION rewards_ledger_check_balanced();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS rewards_ledgerentry_balanced ON rewards_ledgerentry;
DROP TRIGGER IF EXISTS rewards_ledgertransaction_append_only ON rewards_ledgertransaction;
DROP TRIGGER IF EXISTS rewards_ledgerentry_append_only ON rewards_ledgerentry;
DROP FUNCTION IF EXISTS rewards_ledger_check_balanced();
DROP FUNCTION IF EXISTS rewards_ledger_refuse_change();
"""


def default_rate_create(apps, schema_editor):
    # The methodology's default: one coin for every 10 g of CO2e avoided.
    CoinRate = apps.get_model("rewards", "CoinRate")
    CoinRate.objects.get_or_create(
        valid_from=datetime.date(2020, 1, 1),
        defaults={"carbon_mg_per_coin": 10_000, "note": "Default: 1 coin per 10 g CO2e."},
    )


class Migration(migrations.Migration):
    dependencies = [("rewards", "0001_initial")]

    operations = [
        migrations.RunSQL(POSTGRES_FORWARD, POSTGRES_BACKWARD),
        migrations.RunPython(default_rate_create, migrations.RunPython.noop),
    ]
