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
from activities.cache_renewals import carbon_changed
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
from activities.sql_statements import merge as statements
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
    carbon_changed(user_ids=[user.pk])
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
        cursor.execute(statements.MERGED_INSTANCES_JOIN, {"source": source_id, "target": target_id})
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
            statements.MERGED_STEP_DAYS_ADD,
            [target_id, source_id],
        )
        cursor.execute(
            statements.MERGED_DEVICES_ADD,
            [target_id, source_id],
        )
        cursor.execute(
            statements.MERGED_BEHAVIOUR_DAYS_ADD,
            [target_id, source_id],
        )
        cursor.execute(
            statements.MERGED_BEHAVIOUR_MONTHS_ADD,
            [target_id, source_id],
        )
        cursor.execute(
            statements.MERGED_DAILY_CARBON_ADD,
            [target_id, timezone.now(), source_id],
        )
    for model in (StepDay, DeviceAccount, BehaviourDay, BehaviourMonth, DailyCarbon):
        model.objects.filter(user_id=source_id).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            statements.MERGED_CAPS_APPLY,
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
    carbon_changed(user_ids=[source_id, target_id])
    return {
        "capped_carbon_mg": int(capped_carbon_mg),
        "capped_days": days,
        "settled_kept_carbon_mg": int(settled_kept_carbon_mg),
    }
