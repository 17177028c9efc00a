"""Reports of instances another platform's imported statement counts here (`statements.instances`):
the rule in SQL, one statement over a relation of capture's candidates, which both capture paths
run: the batch path over its candidates' packed columns (`candidates_imported_instances`), the bulk
import over its staging table (`sql_statements.bulk_import.IMPORT_IMPORTED_INSTANCES_CHECK`).

The statement's instance keys are recomputed in SQL from each candidate, as the issuer computed them
(`statements.instances.statement_instance_key`); the key's label, the audience (this platform) and
the key's length are the statement's parameters (`rule_parameters`), in that order, after those of
the relation.
"""

from __future__ import annotations

from psycopg import sql

from activities.sql_statements import packed, packed_arrays

# The columns of a relation of candidates.
_RELATION_COLUMNS = sql.SQL(", ").join(
    map(
        sql.Identifier,
        ("ordinal", "user_id", "behaviour_id", "instance_key", "instance_bucket", "local_day", "occurred_at",
         "tolerance"),
    )
)  # fmt: skip

# The shared lock of the people of a relation of candidates (column `user_id`), in the order of their
# ids: the lock a statement import takes exclusive (`peer_statements.PERSONS_LOCK_EXCLUSIVE`).
_RELATION_LOCK_SHARED = sql.SQL(
    """
    SELECT pg_advisory_xact_lock_shared(hashtextextended('statement-instances:' || u::text, 0))
    FROM (SELECT DISTINCT user_id FROM {rows} AS c({columns})) AS people(u) ORDER BY u
    """
)

# Which candidates report an instance one of their person's imported statements lists and counts here
# (not matched to a report of ours): (ordinal, the `ImportedInstance` id). HMAC-SHA256 under the
# statement's scope is written out with `sha256` over the scope's inner and outer pads (RFC 2104: a
# 64-byte block, 0x36 and 0x5c), so no extension is needed; a candidate with a time window tries its
# bucket and both neighbours, as the import does. A statement counts for the candidates of its month
# and the day either side. An instance goes to one candidate, the earliest.
_IMPORTED_INSTANCE_MATCHES = sql.SQL(
    """
    WITH candidates AS MATERIALIZED (
        SELECT * FROM {rows} AS c({columns})
    ),
    rule AS (
        SELECT %s::text AS label, %s::text AS audience, %s::integer AS key_bytes
    ),
    pads AS (
        SELECT s.id AS statement_id, s.user_id, s.month,
               decode(string_agg(lpad(to_hex(get_byte(s.block, n) # 54), 2, '0'), '' ORDER BY n), 'hex')
                   AS inner_pad,
               decode(string_agg(lpad(to_hex(get_byte(s.block, n) # 92), 2, '0'), '' ORDER BY n), 'hex')
                   AS outer_pad
        FROM (
            SELECT s.id, s.user_id, s.month,
                   sha256(convert_to(
                       concat_ws(chr(31), rule.label, p.issuer, rule.audience, s.subject), 'UTF8'
                   )) || decode(repeat('00', 32), 'hex') AS block
            FROM activities_peerstatement s
            JOIN activities_peerplatform p ON p.id = s.peer_id
            CROSS JOIN rule
            WHERE s.user_id IN (SELECT user_id FROM candidates)
              AND EXISTS (SELECT 1 FROM activities_importedinstance i WHERE i.statement_id = s.id)
        ) AS s
        CROSS JOIN generate_series(0, 63) AS n
        GROUP BY s.id, s.user_id, s.month
    ),
    keyed AS (
        SELECT c.ordinal, c.occurred_at, c.user_id, pads.statement_id,
               translate(rtrim(encode(substr(sha256(pads.outer_pad || sha256(pads.inner_pad || convert_to(
                   concat_ws(chr(31), b.code, c.instance_key, (c.instance_bucket + shift)::text), 'UTF8'
               ))), 1, rule.key_bytes), 'base64'), '='), '+/', '-_') AS key
        FROM candidates c
        JOIN pads ON pads.user_id = c.user_id
                 AND c.local_day BETWEEN pads.month - 1 AND (pads.month + interval '1 month')::date
        JOIN activities_behaviour b ON b.id = c.behaviour_id
        CROSS JOIN rule
        CROSS JOIN LATERAL unnest(
            CASE WHEN coalesce(c.tolerance, 0) = 0 THEN ARRAY[0] ELSE ARRAY[-1, 0, 1] END
        ) AS shift
    ),
    matches AS (
        SELECT DISTINCT ON (k.ordinal) k.ordinal, k.occurred_at, i.id
        FROM keyed k
        JOIN activities_importedinstance i
            ON i.user_id = k.user_id AND i.key = k.key AND i.statement_id = k.statement_id
        WHERE i.credited_record_id IS NULL
        ORDER BY k.ordinal, i.id
    )
    SELECT DISTINCT ON (id) ordinal, id FROM matches ORDER BY id, occurred_at, ordinal
    """
)


def imported_instance_statements(rows: sql.Composable) -> tuple[sql.Composed, sql.Composed]:
    """The two statements of the rule over a relation of candidates `rows` (ordinal, user_id,
    behaviour_id, instance_key, instance_bucket, local_day, occurred_at, tolerance): the shared lock
    of their people, then their matches (ordinal, imported instance id). Run them in that order, in
    the capturing transaction, after the instance's own credited report was looked for."""
    lock = _RELATION_LOCK_SHARED.format(rows=rows, columns=_RELATION_COLUMNS)
    matches = _IMPORTED_INSTANCE_MATCHES.format(rows=rows, columns=_RELATION_COLUMNS)
    return lock, matches


def rule_parameters(*, label: str, audience: str, key_bytes: int) -> list:
    """The rule's own parameters of a matches statement, after those of its relation."""
    return [label, audience, key_bytes]


CANDIDATES_LOCK, CANDIDATES_MATCHES = imported_instance_statements(
    sql.SQL("unnest({})").format(
        packed_arrays("integer", "bigint", "bigint", "text", "bigint", "date", "timestamptz", "integer?")
    )
)


def candidates_imported_instances(cursor, rows: list[tuple], *, label: str, audience: str, key_bytes: int):
    """Of `rows` (position, person, behaviour, key, bucket, local day, occurred at, tolerance), those
    reporting an instance an imported statement counts here: {position: `ImportedInstance` id}."""
    columns = [packed(column) for column in zip(*rows, strict=True)]
    cursor.execute(CANDIDATES_LOCK, columns)
    cursor.execute(
        CANDIDATES_MATCHES,
        [*columns, *rule_parameters(label=label, audience=audience, key_bytes=key_bytes)],
    )
    return dict(cursor.fetchall())
