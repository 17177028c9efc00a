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
(`imported_instance_twins`) is a second report of it, crediting nothing. A matched report of ours
that review later rejects hands the instance to its second report, or, with none, back to the
statement, which counts it again (`imported_instances_release`).

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
from django.db.models import F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from accounts.models import User
from activities.models import (
    ActivityRecord,
    Behaviour,
    ImportedInstance,
    ImportedReduction,
    PeerStatement,
    RecordStatus,
)
from activities.sql_statements import imported_instances, peer_statements

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


def _persons_lock(user_ids: Iterable[int], *, shared: bool) -> None:
    with connection.cursor() as cursor:
        peer_statements.persons_lock(cursor, sorted(set(user_ids)), shared=shared)


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


def imported_instances_release(*, record: ActivityRecord, successor: ActivityRecord | None) -> None:
    """A report of ours that imports matched was just rejected: each instance it held passes to
    `successor` (the second report now crediting it: still held here, still not counted by the
    statements), or, with none, back to the statements that list it, which count its carbon again
    (`counted_carbon_mg`'s rule, recomputed; the night's rounds of coins find them by the hand-back).

    Call it in the rejecting transaction, with `record` locked and rejected. It takes the person's
    lock exclusively: an import matching this report at the same time either committed first (and is
    released here) or waits and sees it rejected; and of two rejections of one person's reports at
    once (two reviewers), the second recounts the statements after the first committed, seeing its
    hand-back (with the lock shared, its recount read the instances as they were before the first).
    """
    if record.instance_key is None:
        return
    _persons_lock([record.user_id], shared=False)
    held = ImportedInstance.objects.filter(user_id=record.user_id, credited_record_id=record.pk)
    if successor is not None:
        held.update(credited_record_id=successor.pk)
        return
    statement_ids = sorted(set(held.values_list("statement_id", flat=True)))
    if not statement_ids:
        return
    held.update(credited_record_id=None, handed_back_from_id=record.pk)
    still_matched = (
        ImportedInstance.objects.filter(
            statement_id=OuterRef("statement_id"),
            behaviour=OuterRef("behaviour"),
            credited_record__isnull=False,
        )
        .values("statement_id", "behaviour")
        .annotate(carbon_mg=Sum("carbon_mg"))
        .values("carbon_mg")
    )
    ImportedReduction.objects.filter(statement_id__in=statement_ids).update(
        carbon_mg=Greatest(Value(0), F("stated_carbon_mg") - Coalesce(Subquery(still_matched), Value(0)))
    )
    counted = (
        ImportedReduction.objects.filter(statement_id=OuterRef("pk"))
        .values("statement_id")
        .annotate(carbon_mg=Sum("carbon_mg"))
        .values("carbon_mg")
    )
    PeerStatement.objects.filter(pk__in=statement_ids).update(total_carbon_mg=Subquery(counted))


def instance_released_by(record: ActivityRecord) -> bool:
    """Whether rejecting this report handed its instance back to an imported statement."""
    return ImportedInstance.objects.filter(user_id=record.user_id, handed_back_from_id=record.pk).exists()


def counted_carbon_mg(item: dict[str, Any], matched: dict[str, dict[str, int]]) -> int:
    """A reduction's carbon as it counts here: less its instances one of our reports already holds."""
    keys = matched.get(item["behaviour"], {})
    already = sum(instance["carbon_mg"] for instance in item.get("instances", ()) if instance["key"] in keys)
    return max(0, item["carbon_mg"] - already)


# --- Capture: reports of instances a counted statement lists ------------------------------------------


def imported_instance_twins(candidates: list) -> dict[int, int]:
    """Of capture's keyed candidates (`ingest.Candidate`), those whose instance an imported statement
    lists and counts here, by position: the `ImportedInstance` id. The bulk import runs the same
    statements over its staging table (`sql_statements.imported_instances`)."""
    if not candidates:
        return {}
    rows = [
        (c.position, c.user_id, c.behaviour_id, c.instance_key, c.instance_bucket, c.local_day,
         c.incoming.occurred_at, c.factor.instance_time_tolerance_seconds)
        for c in candidates
    ]  # fmt: skip
    with connection.cursor() as cursor:
        return imported_instances.candidates_imported_instances(cursor, rows, **imported_instance_rule())


def imported_instance_rule() -> dict[str, Any]:
    """The parameters of the rule's statements: the keys' label and length, and the audience of the
    statements imported here (this platform)."""
    return {"label": LABEL, "audience": settings.STATEMENTS_ISSUER, "key_bytes": KEY_BYTES}
