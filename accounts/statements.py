"""The raw statements of accounts, composed with `psycopg.sql`; values are parameters."""

from __future__ import annotations

from psycopg import sql

# A person by primary key, every column of the model (`{columns}`, `{table}` and `{pk}` are the
# model's own names): session authentication runs it on every signed-in request.
USER_BY_ID = sql.SQL("SELECT {columns} FROM {table} WHERE {pk} = %s")

# --- Key rotation (`manage.py rotate_keys`) -------------------------------------------------

# A keyset page (after an id, in id order) of verified personal details with a ciphertext or a
# digest not under the current key and suite.
DETAILS_STALE = sql.SQL("""
    SELECT id, phone_number_ciphertext, phone_number_digest, id_number_ciphertext, id_number_digest
    FROM accounts_personaldetails
    WHERE id > %(after)s AND (
        (phone_number_ciphertext <> '' AND NOT starts_with(phone_number_ciphertext, %(cipher)s))
        OR (phone_number_digest <> '' AND NOT starts_with(phone_number_digest, %(digest)s))
        OR (id_number_ciphertext <> '' AND NOT starts_with(id_number_ciphertext, %(cipher)s))
        OR (id_number_digest <> '' AND NOT starts_with(id_number_digest, %(digest)s))
    )
    ORDER BY id
    LIMIT %(limit)s
""")

# Writes a batch of re-encrypted details back from arrays (one row per id), each row only if it
# still holds what was read: a concurrent write is never overwritten.
DETAILS_REWRITE = sql.SQL("""
    UPDATE accounts_personaldetails AS d
    SET phone_number_ciphertext = v.new_phone, phone_number_digest = v.new_phone_digest,
        id_number_ciphertext = v.new_id, id_number_digest = v.new_id_digest
    FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],
                %s::text[], %s::text[], %s::text[], %s::text[])
        AS v(id, old_phone, old_phone_digest, old_id, old_id_digest,
             new_phone, new_phone_digest, new_id, new_id_digest)
    WHERE d.id = v.id
      AND d.phone_number_ciphertext = v.old_phone AND d.phone_number_digest = v.old_phone_digest
      AND d.id_number_ciphertext = v.old_id AND d.id_number_digest = v.old_id_digest
""")

# A keyset page of stored WeChat session keys (in the account's extra data) not under the current key.
WECHAT_STALE = sql.SQL("""
    SELECT id, uid, extra_data->>%(field)s
    FROM socialaccount_socialaccount
    WHERE id > %(after)s AND provider = %(provider)s
      AND coalesce(extra_data->>%(field)s, '') <> ''
      AND NOT starts_with(extra_data->>%(field)s, %(cipher)s)
    ORDER BY id
    LIMIT %(limit)s
""")

# Writes a batch of re-encrypted WeChat session keys back, each only if it still holds what was read.
WECHAT_REWRITE = sql.SQL("""
    UPDATE socialaccount_socialaccount AS a
    SET extra_data = jsonb_set(a.extra_data, ARRAY[%s], to_jsonb(v.new))
    FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS v(id, old, new)
    WHERE a.id = v.id AND a.extra_data->>%s = v.old
""")

# How many verified personal details are still under an older key or suite.
DETAILS_LEFT = sql.SQL("""
    SELECT count(*) FROM accounts_personaldetails
    WHERE (phone_number_ciphertext <> '' AND NOT starts_with(phone_number_ciphertext, %(cipher)s))
       OR (phone_number_digest <> '' AND NOT starts_with(phone_number_digest, %(digest)s))
       OR (id_number_ciphertext <> '' AND NOT starts_with(id_number_ciphertext, %(cipher)s))
       OR (id_number_digest <> '' AND NOT starts_with(id_number_digest, %(digest)s))
""")

# How many stored WeChat session keys are still under an older key.
WECHAT_LEFT = sql.SQL("""
    SELECT count(*) FROM socialaccount_socialaccount
    WHERE provider = %(provider)s AND coalesce(extra_data->>%(field)s, '') <> ''
      AND NOT starts_with(extra_data->>%(field)s, %(cipher)s)
""")

# How many guest devices' digests are still under an older key (they move when seen again).
DEVICES_LEFT = sql.SQL(
    "SELECT count(*) FROM accounts_device WHERE NOT starts_with(device_digest, %(digest)s)"
)

# Each merged account and the account it ended in, at the end of its chain of merges (A into B, then B
# into C: C), as the CTE `survivor (id, person)`, for statements that follow merges. It opens the WITH
# of the statement that uses it: `WITH {survivors}, … SELECT …`.
MERGED_SURVIVORS = sql.SQL("""
RECURSIVE chain (id, person) AS (
    SELECT id, merged_into_id FROM accounts_user WHERE merged_into_id IS NOT NULL
    UNION ALL
    SELECT chain.id, next.merged_into_id FROM chain
    JOIN accounts_user AS next ON next.id = chain.person AND next.merged_into_id IS NOT NULL
),
survivor (id, person) AS (
    SELECT chain.id, chain.person FROM chain
    JOIN accounts_user AS last ON last.id = chain.person AND last.merged_into_id IS NULL
)""")
