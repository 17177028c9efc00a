"""What activities holds about a person: export, erasure and the merge of two accounts.

Called by accounts (through the app registry) in dependency order. `DailyCarbon` is the ledger
contract with rewards: erasure keeps it (amounts only, no activity detail) so settled coins stay
explained; merging adds the source's days to the target's.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from activities.models import (
    ActivityRecord,
    BehaviourDay,
    BehaviourMonth,
    DailyCarbon,
    DeviceAccount,
    PartnerCustomerLink,
    ReviewDecision,
    StepDay,
)
from config.api.serializers import local_datetime_text


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


@transaction.atomic
def accounts_merge(*, source_user: User, target_user: User) -> None:
    """Moves everything of `source_user` to `target_user`; sums counters and daily carbon, never doubles."""
    source_id, target_id = source_user.id, target_user.id
    ActivityRecord.objects.filter(user_id=source_id).update(user_id=target_id)
    # A card linked to both is simply the target's now.
    PartnerCustomerLink.objects.filter(user_id=source_id).update(user_id=target_id)
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
