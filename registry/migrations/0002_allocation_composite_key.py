"""The allocation's unique key becomes its primary key, and its rows narrower.

The table had a surrogate id (its primary key, a sequence and an index) beside the unique index on
(person, day, behaviour, methodology version): two indexes and a sequence for every row a city's
month writes. The quadruple is now the primary key, the only index; behaviour and version ids take
32 bits, and the columns are ordered so that none is padded. The table is rebuilt with its rows.
"""

from django.db import migrations, models

REBUILD = """
CREATE TABLE registry_lotallocation_rebuilt (
    user_id bigint NOT NULL,
    carbon_mg bigint NOT NULL,
    lot_id bigint NOT NULL,
    day date NOT NULL,
    behaviour_id integer NOT NULL,
    methodology_version_id integer NOT NULL,
    CONSTRAINT allocation_positive_rebuilt CHECK (carbon_mg > 0)
);
INSERT INTO registry_lotallocation_rebuilt
    (user_id, carbon_mg, lot_id, day, behaviour_id, methodology_version_id)
SELECT user_id, carbon_mg, lot_id, day, behaviour_id, methodology_version_id
FROM registry_lotallocation ORDER BY user_id, day, behaviour_id, methodology_version_id;
DROP TABLE registry_lotallocation;
ALTER TABLE registry_lotallocation_rebuilt RENAME TO registry_lotallocation;
ALTER TABLE registry_lotallocation RENAME CONSTRAINT allocation_positive_rebuilt TO allocation_positive;
ALTER TABLE registry_lotallocation ADD CONSTRAINT registry_lotallocation_pkey
    PRIMARY KEY (user_id, day, behaviour_id, methodology_version_id);
"""

STATE = [
    migrations.RemoveConstraint(model_name="lotallocation", name="grams_allocated_once"),
    migrations.RemoveField(model_name="lotallocation", name="id"),
    migrations.AddField(
        model_name="lotallocation",
        name="pk",
        field=models.CompositePrimaryKey(
            "user_id",
            "day",
            "behaviour_id",
            "methodology_version_id",
            blank=True,
            editable=False,
            primary_key=True,
            serialize=False,
        ),
    ),
    migrations.AlterField(model_name="lotallocation", name="behaviour_id", field=models.IntegerField()),
    migrations.AlterField(
        model_name="lotallocation", name="methodology_version_id", field=models.IntegerField()
    ),
]


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(REBUILD)],
            state_operations=STATE,
        )
    ]
