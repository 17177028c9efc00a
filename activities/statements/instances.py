"""Behaviour instances in statements (format 2): one reduction across platforms, counted once.

A statement of format 2 lists, per behaviour, the instances behind its carbon (the credited
reports whose methodology names their instance: a bus ride, an e-invoice) each under a **pairwise
instance key**, so a receiving platform that saw the same instance itself computes the same key,
and nobody learns the instance's fields from it:

    scope = SHA-256("carbon-statement-instance/2" ␟ iss ␟ aud ␟ sub)
    key   = base64url(first 16 bytes of HMAC-SHA256(scope, behaviour ␟ instance digest ␟ bucket))

where ␟ is the unit separator (U+001F), `behaviour` the behaviour code, the instance digest the
lowercase hex SHA-256 of the instance's normalized field values (`methodology.instance_identity`:
trimmed, ASCII upper-cased, in the methodology's order, joined by ␟) and `bucket` the time bucket
(⌊Unix seconds / the behaviour's time window⌋, or 0 where time does not identify instances), as a
decimal integer. The scope is the statement's own issuer, audience and (pairwise) subject: the
same ride has another key at every receiving platform and for every person, so keys cannot be
joined across platforms, and the receiver recomputes them from its own records.

On import (`statement_instances_match`), a listed instance whose key one of the person's reports
here already holds (credited or held: the instance's one credited report, in the same bucket or a
neighbouring one) does not count again: the statement counts here its total less those instances'
carbon. A report that comes later of an instance a counted statement lists
(`imported_instance_twins`) is a second report of it, crediting nothing.

The import takes a transaction-level advisory lock of the person (exclusive), a capture batch
the same lock shared before it looks at the person's imported instances: an import and a report of
the same instance arriving together serialize (capture batches do not wait for each other).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connection
from psycopg import sql

from accounts.models import User
from activities.models import ActivityRecord, Behaviour, ImportedInstance, PeerStatement, RecordStatus

LABEL = "carbon-statement-instance/2"
SEPARATOR = "\x1f"
KEY_BYTES = 16


def instance_scope(*, issuer: str, audience: str, subject: str) -> bytes:
    """The HMAC key of one statement's instance keys: its issuer, audience and pairwise subject."""
    return hashlib.sha256(SEPARATOR.join((LABEL, issuer, audience, subject)).encode()).digest()


def statement_instance_key(scope: bytes, *, behaviour: str, instance_key: str, bucket: int) -> str:
    message = SEPARATOR.join((behaviour, instance_key, str(bucket))).encode()
    digest = hmac.new(scope, message, hashlib.sha256).digest()[:KEY_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _keys_of(scope: bytes, behaviour: str, instance_key: str, bucket: int, has_window: bool) -> list[str]:
    """The keys a report of ours matches: its bucket and, with a time window, both neighbours."""
    buckets = (bucket - 1, bucket, bucket + 1) if has_window else (bucket,)
    return [
        statement_instance_key(scope, behaviour=behaviour, instance_key=instance_key, bucket=b)
        for b in buckets
    ]


def statement_instances(
    *, user: User, first: datetime.date, last: datetime.date, scope: bytes
) -> dict[int, list[dict[str, Any]]]:
    """The credited instances of the person's days `first`…`last`, per behaviour id, sorted by key."""
    rows = ActivityRecord.objects.filter(
        user=user,
        local_day__gte=first,
        local_day__lte=last,
        status=RecordStatus.CREDITED,
        credited_carbon_mg__gt=0,
        instance_key__isnull=False,
    ).values_list("behaviour_id", "behaviour__code", "instance_key", "instance_bucket", "credited_carbon_mg")
    instances: dict[int, dict[str, int]] = defaultdict(dict)
    for behaviour_id, code, instance_key, bucket, carbon in rows:
        key = statement_instance_key(scope, behaviour=code, instance_key=instance_key, bucket=bucket)
        instances[behaviour_id][key] = instances[behaviour_id].get(key, 0) + carbon
    # Sorted by key, not by time: the list tells nothing of when.
    return {
        behaviour_id: [{"key": key, "carbon_mg": carbon} for key, carbon in sorted(keyed.items())]
        for behaviour_id, keyed in instances.items()
    }


# --- Imports: the person's lock ----------------------------------------------------------------------

_PERSON_LOCK = sql.SQL(
    "SELECT {lock}(hashtextextended('statement-instances:' || u::text, 0)) "
    "FROM unnest({users}::bigint[]) AS u ORDER BY u"
)
_LOCK_EXCLUSIVE = _PERSON_LOCK.format(lock=sql.SQL("pg_advisory_xact_lock"), users=sql.Placeholder("users"))
_LOCK_SHARED = _PERSON_LOCK.format(
    lock=sql.SQL("pg_advisory_xact_lock_shared"), users=sql.Placeholder("users")
)


def _persons_lock(user_ids: Iterable[int], *, shared: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SHARED if shared else _LOCK_EXCLUSIVE, {"users": sorted(set(user_ids))})


def statement_instances_match(
    *, user: User, claims: dict[str, Any], month: datetime.date, last_day: datetime.date
) -> dict[str, dict[str, int]]:
    """Which listed instances one of the person's reports here already holds: per behaviour code,
    {instance key: our record's id}. Call it in the importing transaction (it locks the person)."""
    listed = {item["behaviour"]: item["instances"] for item in claims["reductions"] if item.get("instances")}
    if not listed:
        return {}
    _persons_lock([user.pk], shared=False)
    scope = instance_scope(issuer=claims["iss"], audience=claims["aud"], subject=claims["sub"])
    behaviours = dict(Behaviour.objects.filter(code__in=listed).values_list("code", "id"))
    ours = ActivityRecord.objects.filter(
        user=user,
        behaviour_id__in=behaviours.values(),
        # A bucket's neighbour may lie on the day before or after the month.
        local_day__gte=month - datetime.timedelta(days=1),
        local_day__lte=last_day + datetime.timedelta(days=1),
        instance_key__isnull=False,
        duplicate_of__isnull=True,
        status__in=[RecordStatus.CREDITED, RecordStatus.HELD],
    ).values_list(
        "id", "behaviour__code", "instance_key", "instance_bucket", "factor__instance_time_tolerance_seconds"
    )
    held: dict[str, dict[str, int]] = defaultdict(dict)
    for record_id, code, instance_key, bucket, window in ours.order_by("occurred_at", "id"):
        for key in _keys_of(scope, code, instance_key, bucket, bool(window)):
            held[code].setdefault(key, record_id)
    matched: dict[str, dict[str, int]] = {}
    taken: set[int] = set()
    for code, instances in listed.items():
        for instance in instances:
            record_id = held.get(code, {}).get(instance["key"])
            if record_id is not None and record_id not in taken:
                taken.add(record_id)
                matched.setdefault(code, {})[instance["key"]] = record_id
    return matched


def imported_instances_store(
    *, statement: PeerStatement, claims: dict[str, Any], matched: dict[str, dict[str, int]]
) -> None:
    ImportedInstance.objects.bulk_create(
        [
            ImportedInstance(
                statement=statement,
                user_id=statement.user_id,
                behaviour=item["behaviour"],
                key=instance["key"],
                carbon_mg=instance["carbon_mg"],
                credited_record_id=matched.get(item["behaviour"], {}).get(instance["key"]),
            )
            for item in claims["reductions"]
            for instance in item.get("instances", ())
        ]
    )


def counted_carbon_mg(item: dict[str, Any], matched: dict[str, dict[str, int]]) -> int:
    """A reduction's carbon as it counts here: less its instances one of our reports already holds."""
    keys = matched.get(item["behaviour"], {})
    already = sum(instance["carbon_mg"] for instance in item.get("instances", ()) if instance["key"] in keys)
    return max(0, item["carbon_mg"] - already)


# --- Capture: reports of instances a counted statement lists ------------------------------------------

_RELATION_COLUMNS = (
    "ordinal", "user_id", "behaviour_id", "instance_key", "instance_bucket", "local_day", "occurred_at",
    "tolerance",
)  # fmt: skip

# The shared lock of the people of a relation of candidates (column `user_id`), in the order of their ids.
_RELATION_LOCK_SHARED = """
    SELECT pg_advisory_xact_lock_shared(hashtextextended('statement-instances:' || u::text, 0))
    FROM (SELECT DISTINCT user_id FROM {rows} AS c({columns})) AS people(u) ORDER BY u
"""

# Which candidates report an instance one of their person's imported statements lists and counts here
# (not matched to a report of ours): (ordinal, the `ImportedInstance` id). `rows` is a relation of
# (ordinal, user_id, behaviour_id, instance_key, instance_bucket, local_day, occurred_at, tolerance).
# The statement's instance keys are recomputed here from each candidate, as the issuer computed them
# (`statement_instance_key`): HMAC-SHA256 under the statement's scope, written out with `sha256` over
# the scope's inner and outer pads (RFC 2104: a 64-byte block, 0x36 and 0x5c), so no extension is
# needed; a candidate with a time window tries its bucket and both neighbours, as the import does.
# A statement counts for the candidates of its month and the day either side. An instance goes to one
# candidate, the earliest.
_IMPORTED_INSTANCE_MATCHES = """
    WITH candidates AS MATERIALIZED (
        SELECT * FROM {rows} AS c({columns})
    ),
    pads AS (
        SELECT s.id AS statement_id, s.user_id, s.month,
               decode(string_agg(lpad(to_hex(get_byte(s.block, n) # 54), 2, '0'), '' ORDER BY n), 'hex')
                   AS inner_pad,
               decode(string_agg(lpad(to_hex(get_byte(s.block, n) # 92), 2, '0'), '' ORDER BY n), 'hex')
                   AS outer_pad
        FROM (
            SELECT s.id, s.user_id, s.month,
                   sha256(convert_to(concat_ws(chr(31), {label}, p.issuer, {audience}, s.subject), 'UTF8'))
                       || decode(repeat('00', 32), 'hex') AS block
            FROM activities_peerstatement s
            JOIN activities_peerplatform p ON p.id = s.peer_id
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
               ))), 1, {key_bytes}), 'base64'), '='), '+/', '-_') AS key
        FROM candidates c
        JOIN pads ON pads.user_id = c.user_id
                 AND c.local_day BETWEEN pads.month - 1 AND (pads.month + interval '1 month')::date
        JOIN activities_behaviour b ON b.id = c.behaviour_id
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


def imported_instance_statements(rows: sql.Composable) -> tuple[sql.Composed, sql.Composed]:
    """The two statements of the rule for capture, over a relation of candidates `rows` (above): the
    shared lock of their people, then their matches (ordinal, imported instance id). Run them in
    that order, in the capturing transaction, after the instance's own credited report was looked for."""
    columns = sql.SQL(", ").join(map(sql.Identifier, _RELATION_COLUMNS))
    lock = sql.SQL(_RELATION_LOCK_SHARED).format(rows=rows, columns=columns)
    matches = sql.SQL(_IMPORTED_INSTANCE_MATCHES).format(
        rows=rows,
        columns=columns,
        label=sql.Literal(LABEL),
        audience=sql.Placeholder("audience"),
        key_bytes=sql.Literal(KEY_BYTES),
    )
    return lock, matches


_CANDIDATE_COLUMNS = ("positions", "users", "behaviours", "keys", "buckets", "days", "moments", "tolerances")
_CANDIDATE_ROWS = sql.SQL(
    "unnest({}::integer[], {}::bigint[], {}::bigint[], {}::text[], {}::bigint[], {}::date[], "
    "{}::timestamptz[], {}::integer[])"
).format(*(sql.Placeholder(name) for name in _CANDIDATE_COLUMNS))
_CANDIDATES_LOCK, _CANDIDATES_MATCHES = imported_instance_statements(_CANDIDATE_ROWS)


def imported_instance_twins(candidates: list) -> dict[int, int]:
    """Of capture's keyed candidates (`ingest._Candidate`), those whose instance an imported statement
    lists and counts here, by position: the `ImportedInstance` id. The bulk import runs the same
    statements over its staging table."""
    if not candidates:
        return {}
    columns = zip(
        *(
            (c.position, c.user_id, c.behaviour_id, c.instance_key, c.instance_bucket, c.local_day,
             c.incoming.occurred_at, c.factor.instance_time_tolerance_seconds)
            for c in candidates
        ),
        strict=True,
    )  # fmt: skip
    parameters = {name: list(column) for name, column in zip(_CANDIDATE_COLUMNS, columns, strict=True)}
    with connection.cursor() as cursor:
        cursor.execute(_CANDIDATES_LOCK, parameters)
        cursor.execute(_CANDIDATES_MATCHES, {**parameters, "audience": settings.STATEMENTS_ISSUER})
        return dict(cursor.fetchall())
