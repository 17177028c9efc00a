"""What activities holds about a person: export, erasure and the merge of two accounts.

Called by accounts (through the app registry) in dependency order. `DailyCarbon` is the ledger
contract with rewards: erasure keeps it (amounts only, no activity detail) so settled coins stay
explained; merging adds the source's days to the target's, then takes off what goes over the
caps of the one person (`MERGED_CAPS_APPLY`), keeping the coins already settled.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from accounts.models import User
from activities.models import (
    ActivityRecord,
    BehaviourDay,
    BehaviourMonth,
    CapKind,
    DailyCarbon,
    DeviceAccount,
    ImportedInstance,
    PartnerCustomerLink,
    PeerStatement,
    PeerSubject,
    RecordStatus,
    ReviewDecision,
    StatementNonce,
    StepDay,
)
from core.api.serializers import local_datetime_text


def personal_data_export(*, user: User) -> dict[str, Any]:
    records = (
        ActivityRecord.objects.filter(user=user)
        .select_related("behaviour", "factor__version", "partner")
        .order_by("id")
    )
    return {
        "activity_records": [
            {
                "id": record.id,
                "behaviour": record.behaviour.code,
                "source": record.source,
                "partner": record.partner.code if record.partner else None,
                "external_id": record.external_id,
                "quantity": str(record.quantity),
                "occurred_at": local_datetime_text(record.occurred_at),
                "ended_at": local_datetime_text(record.ended_at) if record.ended_at else None,
                "local_day": record.local_day.isoformat(),
                "device_id": record.device_id,
                "methodology_version": record.factor.version.number,
                "gross_carbon_mg": record.gross_carbon_mg,
                "credited_carbon_mg": record.credited_carbon_mg,
                "capped_by": record.capped_by,
                "capped_at_merge_mg": record.capped_at_merge_mg,
                "status": record.status,
                "hold_reason": record.hold_reason,
                "appeal_note": record.appeal_note,
                "appealed_at": local_datetime_text(record.appealed_at) if record.appealed_at else None,
            }
            for record in records.iterator(chunk_size=2000)
        ],
        "review_decisions": [
            {
                "record_id": decision.record_id,
                "decision": decision.decision,
                "note": decision.note,
                "decided_at": local_datetime_text(decision.decided_at),
            }
            for decision in ReviewDecision.objects.filter(record__user=user).order_by("id")
        ],
        "partner_links": [
            {
                "partner": link.partner.code,
                "customer_reference": link.customer_reference,
                "linked_at": local_datetime_text(link.linked_at),
            }
            for link in PartnerCustomerLink.objects.filter(user=user).select_related("partner").order_by("id")
        ],
        "step_days": [
            {"day": day.isoformat(), "steps": steps}
            for day, steps in StepDay.objects.filter(user=user).order_by("day").values_list("day", "steps")
        ],
        "devices": sorted(DeviceAccount.objects.filter(user=user).values_list("device_id", flat=True)),
        "imported_statements": [
            {
                "issuer": statement.peer.issuer,
                "statement_id": statement.statement_id,
                "month": statement.month.strftime("%Y-%m"),
                "total_carbon_mg": statement.total_carbon_mg,
                "imported_at": statement.imported_at.isoformat(),
                "reductions": [
                    {"behaviour": reduction.behaviour, "carbon_mg": reduction.carbon_mg}
                    for reduction in statement.reductions.all()
                ],
            }
            for statement in PeerStatement.objects.filter(user=user)
            .select_related("peer")
            .prefetch_related("reductions")
            .order_by("id")
        ],
        "daily_carbon": [
            {"day": day.isoformat(), "credited_carbon_mg": credited, "settled_carbon_mg": settled}
            for day, credited, settled in DailyCarbon.objects.filter(user=user)
            .order_by("day")
            .values_list("day", "credited_carbon_mg", "settled_carbon_mg")
        ],
    }


@transaction.atomic
def personal_data_erase(*, user: User) -> None:
    """Removes the activity detail (what, where, when, which card or phone); keeps the daily amounts."""
    ActivityRecord.objects.filter(user=user).delete()  # review decisions go with them
    PartnerCustomerLink.objects.filter(user=user).delete()
    StepDay.objects.filter(user=user).delete()
    DeviceAccount.objects.filter(user=user).delete()
    BehaviourDay.objects.filter(user=user).delete()
    BehaviourMonth.objects.filter(user=user).delete()
    # Imported statements keep their amounts (coins may have been minted for them); the statement
    # as signed and the peer's pseudonym for the person go.
    PeerStatement.objects.filter(user=user).update(
        token="", subject=Concat(Value("erased:"), Cast("id", output_field=CharField()))
    )
    PeerSubject.objects.filter(user=user).delete()
    # Their instance keys are pseudonyms of the person's rides and bills too.
    ImportedInstance.objects.filter(user=user).delete()
    StatementNonce.objects.filter(user=user).delete()


@transaction.atomic
def accounts_merge(*, source_user: User, target_user: User) -> dict[str, int]:
    """Moves everything of `source_user` to `target_user`; sums counters and daily carbon, never doubles.

    The caps then hold for the merged person (`MERGED_CAPS_APPLY`); returns what that took off:
    `capped_carbon_mg` over `capped_days` days, of which `settled_kept_carbon_mg` had already become
    coins (kept).
    """
    source_id, target_id = source_user.id, target_user.id
    with connection.cursor() as cursor:
        # An instance both accounts were credited for is one person's now: the source's report
        # becomes a second report of the target's (its credit comes off below, as a cap's would).
        cursor.execute(MERGED_INSTANCES_JOIN, {"source": source_id, "target": target_id})
    ActivityRecord.objects.filter(user_id=source_id).update(user_id=target_id)
    # A card linked to both is simply the target's now.
    PartnerCustomerLink.objects.filter(user_id=source_id).update(user_id=target_id)
    # Statements imported by either count for the one person (one per account at a peer and month).
    PeerStatement.objects.filter(user_id=source_id).update(user_id=target_id)
    PeerSubject.objects.filter(user_id=source_id).update(user_id=target_id)
    ImportedInstance.objects.filter(user_id=source_id).update(user_id=target_id)
    StatementNonce.objects.filter(user_id=source_id).update(user_id=target_id)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO activities_stepday (user_id, day, steps, previous_steps, updated_at)
            SELECT %s, day, steps, previous_steps, updated_at FROM activities_stepday WHERE user_id = %s
            ORDER BY day
            ON CONFLICT (user_id, day) DO UPDATE
            SET steps = CASE WHEN EXCLUDED.steps > activities_stepday.steps
                        THEN EXCLUDED.steps ELSE activities_stepday.steps END
            """,
            [target_id, source_id],
        )
        cursor.execute(
            """
            INSERT INTO activities_deviceaccount (device_id, user_id, first_seen_at)
            SELECT device_id, %s, first_seen_at FROM activities_deviceaccount WHERE user_id = %s
            ON CONFLICT (device_id, user_id) DO NOTHING
            """,
            [target_id, source_id],
        )
        cursor.execute(
            """
            INSERT INTO activities_behaviourday
                (user_id, behaviour_id, day, quantity, record_count, held_count, credited_carbon_mg)
            SELECT %s, behaviour_id, day, quantity, record_count, held_count, credited_carbon_mg
            FROM activities_behaviourday WHERE user_id = %s ORDER BY behaviour_id, day
            ON CONFLICT (user_id, behaviour_id, day) DO UPDATE
            SET quantity = activities_behaviourday.quantity + EXCLUDED.quantity,
                record_count = activities_behaviourday.record_count + EXCLUDED.record_count,
                held_count = activities_behaviourday.held_count + EXCLUDED.held_count,
                credited_carbon_mg = activities_behaviourday.credited_carbon_mg + EXCLUDED.credited_carbon_mg
            """,
            [target_id, source_id],
        )
        cursor.execute(
            """
            INSERT INTO activities_behaviourmonth (user_id, behaviour_id, month, credited_carbon_mg)
            SELECT %s, behaviour_id, month, credited_carbon_mg
            FROM activities_behaviourmonth WHERE user_id = %s ORDER BY behaviour_id, month
            ON CONFLICT (user_id, behaviour_id, month) DO UPDATE
            SET credited_carbon_mg =
                activities_behaviourmonth.credited_carbon_mg + EXCLUDED.credited_carbon_mg
            """,
            [target_id, source_id],
        )
        cursor.execute(
            """
            INSERT INTO activities_dailycarbon
                (user_id, day, credited_carbon_mg, settled_carbon_mg, updated_at)
            SELECT %s, day, credited_carbon_mg, settled_carbon_mg, %s
            FROM activities_dailycarbon WHERE user_id = %s ORDER BY day
            ON CONFLICT (user_id, day) DO UPDATE
            SET credited_carbon_mg = activities_dailycarbon.credited_carbon_mg + EXCLUDED.credited_carbon_mg,
                settled_carbon_mg = activities_dailycarbon.settled_carbon_mg + EXCLUDED.settled_carbon_mg,
                updated_at = EXCLUDED.updated_at
            """,
            [target_id, timezone.now(), source_id],
        )
    for model in (StepDay, DeviceAccount, BehaviourDay, BehaviourMonth, DailyCarbon):
        model.objects.filter(user_id=source_id).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            MERGED_CAPS_APPLY,
            {
                "target": target_id,
                "source": source_id,
                "credited": RecordStatus.CREDITED.value,
                "cap_day": CapKind.DAY.value,
                "cap_month": CapKind.MONTH.value,
                "now": timezone.now(),
            },
        )
        capped_carbon_mg, settled_kept_carbon_mg, days = cursor.fetchone()
    return {
        "capped_carbon_mg": int(capped_carbon_mg),
        "capped_days": days,
        "settled_kept_carbon_mg": int(settled_kept_carbon_mg),
    }


# After a merge the caps hold per person: each (behaviour, day) and (behaviour, month) of the merged
# person is filled again in the order things happened, as capture fills it (`ingest.apply_caps`),
# from what each record credits now (a merge never raises a record). What no longer fits is taken
# off the record (its `capped_by` says which cap, `capped_at_merge_mg` how much), the counters and
# the day's credited carbon. A day's settled carbon is lowered to what stays credited: the coins
# minted for the rest are kept, and the correction says how much carbon they stood for.
MERGED_CAPS_APPLY = """
    WITH ordered AS (
        SELECT r.id, r.behaviour_id, r.local_day, r.occurred_at, r.credited_carbon_mg AS credited,
               f.daily_cap_mg, f.monthly_cap_mg, date_trunc('month', r.local_day)::date AS month
        FROM activities_activityrecord r
        JOIN activities_factor f ON f.id = r.factor_id
        WHERE r.user_id = %(target)s AND r.status = %(credited)s AND r.credited_carbon_mg > 0
          AND (f.daily_cap_mg IS NOT NULL OR f.monthly_cap_mg IS NOT NULL)
    ),
    day_capped AS (
        SELECT *,
               CASE WHEN daily_cap_mg IS NULL THEN credited
                    ELSE greatest(0, least(credited, daily_cap_mg - coalesce(sum(credited) OVER (
                        PARTITION BY behaviour_id, local_day ORDER BY occurred_at, id
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)))
               END AS after_day
        FROM ordered
    ),
    month_capped AS (
        SELECT *,
               CASE WHEN monthly_cap_mg IS NULL THEN after_day
                    ELSE greatest(0, least(after_day, monthly_cap_mg - coalesce(sum(after_day) OVER (
                        PARTITION BY behaviour_id, month ORDER BY occurred_at, id
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)))
               END AS after_month
        FROM day_capped
    ),
    capped AS MATERIALIZED (
        SELECT id, behaviour_id, local_day, month, credited - after_month AS capped_mg,
               CASE WHEN after_month < after_day THEN %(cap_month)s ELSE %(cap_day)s END AS capped_by
        FROM month_capped WHERE after_month < credited
        UNION ALL
        -- The source's reports of instances the target was credited for (`MERGED_INSTANCES_JOIN`):
        -- their whole credit comes off.
        SELECT id, behaviour_id, local_day, date_trunc('month', local_day)::date, credited_carbon_mg, ''
        FROM activities_activityrecord
        WHERE user_id = %(target)s AND status = 'duplicate' AND credited_carbon_mg > 0
    ),
    records AS (
        UPDATE activities_activityrecord r
        SET credited_carbon_mg = r.credited_carbon_mg - c.capped_mg, capped_by = c.capped_by,
            capped_at_merge_mg = r.capped_at_merge_mg + c.capped_mg
        FROM capped c WHERE r.id = c.id
    ),
    behaviour_days AS (
        UPDATE activities_behaviourday b SET credited_carbon_mg = b.credited_carbon_mg - c.capped_mg
        FROM (SELECT behaviour_id, local_day, sum(capped_mg) AS capped_mg FROM capped GROUP BY 1, 2) c
        WHERE b.user_id = %(target)s AND b.behaviour_id = c.behaviour_id AND b.day = c.local_day
    ),
    behaviour_months AS (
        UPDATE activities_behaviourmonth m SET credited_carbon_mg = m.credited_carbon_mg - c.capped_mg
        FROM (SELECT behaviour_id, month, sum(capped_mg) AS capped_mg FROM capped GROUP BY 1, 2) c
        WHERE m.user_id = %(target)s AND m.behaviour_id = c.behaviour_id AND m.month = c.month
    ),
    per_day AS MATERIALIZED (
        SELECT d.id, d.day, c.capped_mg,
               greatest(0, d.settled_carbon_mg - (d.credited_carbon_mg - c.capped_mg)) AS kept_mg
        FROM (SELECT local_day, sum(capped_mg) AS capped_mg FROM capped GROUP BY 1) c
        JOIN activities_dailycarbon d ON d.user_id = %(target)s AND d.day = c.local_day
    ),
    daily AS (
        UPDATE activities_dailycarbon d
        SET credited_carbon_mg = d.credited_carbon_mg - p.capped_mg,
            settled_carbon_mg = d.settled_carbon_mg - p.kept_mg, updated_at = %(now)s
        FROM per_day p WHERE d.id = p.id
    ),
    corrections AS (
        INSERT INTO activities_mergecapcorrection
            (target_user_id, source_user_id, day, capped_carbon_mg, settled_kept_carbon_mg, created_at)
        SELECT %(target)s, %(source)s, day, capped_mg, kept_mg, %(now)s FROM per_day ORDER BY day
    )
    SELECT coalesce(sum(capped_mg), 0), coalesce(sum(kept_mg), 0), count(*) FROM per_day
"""

# Before a merge moves the source's records: a credited report of the source of an instance the
# target holds a credited report of (same behaviour, key and time bucket) becomes a second report
# of the target's, keeping its credit until `MERGED_CAPS_APPLY` takes it off; its own second
# reports point at the target's record.
MERGED_INSTANCES_JOIN = """
    WITH joined AS (
        UPDATE activities_activityrecord s SET duplicate_of_id = t.id, status = 'duplicate'
        FROM activities_activityrecord t
        WHERE s.user_id = %(source)s AND s.instance_key IS NOT NULL AND s.duplicate_of_id IS NULL
          AND t.user_id = %(target)s AND t.behaviour_id = s.behaviour_id AND t.instance_key = s.instance_key
          AND t.instance_bucket = s.instance_bucket AND t.duplicate_of_id IS NULL
        RETURNING s.id, t.id AS credited_id
    )
    UPDATE activities_activityrecord r SET duplicate_of_id = j.credited_id
    FROM joined j WHERE r.duplicate_of_id = j.id
"""
