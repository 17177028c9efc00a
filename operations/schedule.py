"""Copies the periodic jobs declared in settings into django-celery-beat's tables.

The code is the source of truth for *what* runs and *when*; operators own *whether* it runs:
an existing job keeps its `enabled` flag, so a job paused in the admin stays paused.
Jobs that were removed from the code are disabled, not deleted, so their history stays readable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from celery.schedules import crontab
from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

MANAGED_PREFIXES = ("platform.", "accounts.", "activities.", "rewards.", "merchants.")


@dataclass
class SyncResult:
    created: list[str]
    updated: list[str]
    disabled: list[str]


def _schedule_fields(schedule: object) -> dict:
    if isinstance(schedule, crontab):
        crontab_row, _ = CrontabSchedule.objects.get_or_create(
            minute=schedule._orig_minute,
            hour=schedule._orig_hour,
            day_of_week=schedule._orig_day_of_week,
            day_of_month=schedule._orig_day_of_month,
            month_of_year=schedule._orig_month_of_year,
            timezone=settings.CELERY_TIMEZONE,
        )
        return {"crontab": crontab_row, "interval": None}
    seconds = int(schedule.total_seconds() if hasattr(schedule, "total_seconds") else schedule)
    interval_row, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
    return {"interval": interval_row, "crontab": None}


@transaction.atomic
def schedule_sync(*, declared: dict[str, dict] | None = None) -> SyncResult:
    """Creates or updates every declared job; disables managed jobs no longer declared."""
    declared = settings.CELERY_BEAT_SCHEDULE if declared is None else declared
    result = SyncResult(created=[], updated=[], disabled=[])
    for name, entry in declared.items():
        fields = {
            "task": entry["task"],
            "args": json.dumps(entry.get("args", [])),
            "kwargs": json.dumps(entry.get("kwargs", {})),
            "description": entry.get("description", ""),
            **_schedule_fields(entry["schedule"]),
        }
        task = PeriodicTask.objects.select_for_update().filter(name=name).first()
        if task is None:
            PeriodicTask.objects.create(name=name, enabled=True, **fields)
            result.created.append(name)
            continue
        changed = [key for key, value in fields.items() if getattr(task, key) != value]
        if changed:
            for key in changed:
                setattr(task, key, fields[key])
            task.save(update_fields=changed)
            result.updated.append(name)
    stale = PeriodicTask.objects.filter(enabled=True).exclude(name__in=declared.keys())
    for task in stale:
        if task.name.startswith(MANAGED_PREFIXES):
            task.enabled = False
            task.save(update_fields=["enabled"])
            result.disabled.append(task.name)
    return result
