"""The ingest statements for the embedded SQLite database of `make run` (see `ingest.statements`).

SQLite lets one connection write at a time, and a transaction that read before another one wrote
cannot write afterwards: so no row locks and no races to detect, and plain upserts and the ORM
are enough. The rules themselves live in `activities.ingest`, shared with PostgreSQL.
"""

from __future__ import annotations

import datetime
from collections import Counter, defaultdict

from django.db.models import Count

from accounts.models import DataSourceAuthorization, User
from activities.models import (
    ActivityRecord,
    BehaviourDay,
    BehaviourMonth,
    DeviceAccount,
    PartnerCustomerLink,
    RecordStatus,
    StepDay,
)


def customer_users(cursor, partner_id: int, references: list[str]) -> dict[str, int]:
    links = PartnerCustomerLink.objects.filter(partner_id=partner_id, customer_reference__in=references)
    return dict(links.values_list("customer_reference", "user_id"))


def people_state(cursor, source: str, user_ids: list[int]) -> dict[int, tuple[bool, bool]]:
    authorized = set(
        DataSourceAuthorization.objects.filter(
            user_id__in=user_ids, source=source, revoked_at__isnull=True
        ).values_list("user_id", flat=True)
    )
    people = User.objects.filter(pk__in=user_ids).values_list("pk", "is_active", "closed_at")
    return {pk: (is_active and closed_at is None, pk in authorized) for pk, is_active, closed_at in people}


def counters_lock(cursor, day_keys: list[tuple], month_keys: list[tuple]) -> tuple[dict, dict]:
    users = {key[0] for key in day_keys}
    wanted_days, wanted_months = set(day_keys), set(month_keys)
    day_rows = BehaviourDay.objects.filter(user_id__in=users, day__in={key[2] for key in day_keys})
    day_counters = {
        (user_id, behaviour_id, day): [quantity, credited]
        for user_id, behaviour_id, day, quantity, credited in day_rows.values_list(
            "user_id", "behaviour_id", "day", "quantity", "credited_carbon_mg"
        )
        if (user_id, behaviour_id, day) in wanted_days
    }
    month_rows = BehaviourMonth.objects.filter(user_id__in=users, month__in={key[2] for key in month_keys})
    month_counters = {
        (user_id, behaviour_id, month): [credited]
        for user_id, behaviour_id, month, credited in month_rows.values_list(
            "user_id", "behaviour_id", "month", "credited_carbon_mg"
        )
        if (user_id, behaviour_id, month) in wanted_months
    }
    return day_counters, month_counters


def counters_create(cursor, day_keys: list[tuple], month_keys: list[tuple]) -> None:
    """Nothing to do: SQLite has one writer at a time, so a counter row is never created under us."""


def counters_raise(cursor, period: str, deltas: dict, created_here: set) -> None:
    keys = sorted(deltas)
    if period == "day":
        cursor.executemany(
            """
            INSERT INTO activities_behaviourday
                (user_id, behaviour_id, day, quantity, record_count, held_count, credited_carbon_mg)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (user_id, behaviour_id, day) DO UPDATE
            SET quantity = quantity + excluded.quantity,
                record_count = record_count + excluded.record_count,
                held_count = held_count + excluded.held_count,
                credited_carbon_mg = credited_carbon_mg + excluded.credited_carbon_mg
            """,
            [(*key, str(deltas[key][0]), *deltas[key][1:]) for key in keys],
        )
    else:
        cursor.executemany(
            """
            INSERT INTO activities_behaviourmonth (user_id, behaviour_id, month, credited_carbon_mg)
            VALUES (%s, %s, %s, %s)
            ON CONFLICT (user_id, behaviour_id, month) DO UPDATE
            SET credited_carbon_mg = credited_carbon_mg + excluded.credited_carbon_mg
            """,
            [(*key, *deltas[key]) for key in keys],
        )


def overlapping_trips(cursor, trips: list[tuple], trip_behaviour_ids: list[int]) -> set[int]:
    days = {day + datetime.timedelta(days=shift) for _, _, day, _, _ in trips for shift in (-1, 0, 1)}
    stored = defaultdict(list)
    for user_id, started, ended in (
        ActivityRecord.objects.filter(
            user_id__in={trip[1] for trip in trips},
            local_day__in=days,
            behaviour_id__in=trip_behaviour_ids,
            ended_at__isnull=False,
        )
        .exclude(status=RecordStatus.REJECTED)
        .values_list("user_id", "occurred_at", "ended_at")
    ):
        stored[user_id].append((started, ended))
    return {
        position
        for position, user_id, _, started, ended in trips
        if any(other_start < ended and other_end > started for other_start, other_end in stored[user_id])
    }


def shared_devices(cursor, pairs: list[tuple[str, int]], max_accounts: int) -> set[str]:
    DeviceAccount.objects.bulk_create(
        [DeviceAccount(device_id=device, user_id=user_id) for device, user_id in pairs], ignore_conflicts=True
    )
    return set(
        DeviceAccount.objects.filter(device_id__in={device for device, _ in pairs})
        .values("device_id")
        .annotate(accounts=Count("id"))
        .filter(accounts__gt=max_accounts)
        .values_list("device_id", flat=True)
    )


def existing_ids(cursor, source: str, external_ids: list[str]) -> set[str]:
    return set(
        ActivityRecord.objects.filter(source=source, external_id__in=external_ids).values_list(
            "external_id", flat=True
        )
    )


def records_store(cursor, rows: list[tuple], source: str, partner_id: int | None, now) -> set[str]:
    records = [
        ActivityRecord(
            user_id=user_id,
            behaviour_id=behaviour_id,
            factor_id=factor_id,
            source=source,
            partner_id=partner_id,
            external_id=external_id,
            quantity=quantity,
            occurred_at=occurred_at,
            ended_at=ended_at,
            local_day=local_day,
            device_id=device_id,
            gross_carbon_mg=gross,
            credited_carbon_mg=credited,
            capped_by=capped_by,
            status=status,
            hold_reason=hold_reason,
            created_at=now,
            credited_at=credited_at,
        )  # fmt: skip
        for (
            user_id,
            behaviour_id,
            factor_id,
            external_id,
            quantity,
            occurred_at,
            ended_at,
            local_day,
            device_id,
            gross,
            credited,
            capped_by,
            status,
            hold_reason,
            credited_at,
        ) in rows  # fmt: skip
    ]
    ActivityRecord.objects.bulk_create(records)
    daily: Counter = Counter()
    for record in records:
        if record.credited_carbon_mg > 0:
            daily[(record.user_id, record.local_day)] += record.credited_carbon_mg
    cursor.executemany(
        """
        INSERT INTO activities_dailycarbon (user_id, day, credited_carbon_mg, settled_carbon_mg, updated_at)
        VALUES (%s, %s, %s, 0, %s)
        ON CONFLICT (user_id, day) DO UPDATE
        SET credited_carbon_mg = credited_carbon_mg + excluded.credited_carbon_mg,
            updated_at = excluded.updated_at
        """,
        [(user_id, day, carbon, now) for (user_id, day), carbon in sorted(daily.items())],
    )
    return {record.external_id for record in records}


def rejections_add(cursor, source: str, partner_code: str, day: datetime.date, codes: Counter) -> None:
    cursor.executemany(
        """
        INSERT INTO activities_rejectiontally (source, partner_code, day, code, count)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (source, partner_code, day, code) DO UPDATE SET count = count + excluded.count
        """,
        [(source, partner_code, day, code, count) for code, count in sorted(codes.items())],
    )


def step_days_raise(
    cursor, user_id: int, days: list[datetime.date], steps: list[int], now
) -> tuple[dict, dict]:
    stored = dict(StepDay.objects.filter(user_id=user_id, day__in=days).values_list("day", "steps"))
    raised = {}
    for day, count in zip(days, steps, strict=True):
        previous = stored.get(day)
        if previous is not None and previous >= count:
            continue
        cursor.execute(
            """
            INSERT INTO activities_stepday (user_id, day, steps, previous_steps, updated_at)
            VALUES (%s, %s, %s, 0, %s)
            ON CONFLICT (user_id, day) DO UPDATE
            SET previous_steps = steps, steps = excluded.steps, updated_at = excluded.updated_at
            """,
            [user_id, day, count, now],
        )
        raised[day] = (previous or 0, count)
    return raised, {day: count for day, count in stored.items() if day not in raised}
