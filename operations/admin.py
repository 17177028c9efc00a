"""Admin wiring that belongs to no single app: the scheduled jobs of django-celery-beat.

Operators pause and resume a job (the enable / disable actions); only superusers edit a job's
definition or run it by hand, since a job's task and arguments are code, not operations.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

if admin.site.is_registered(PeriodicTask):
    admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(BeatPeriodicTaskAdmin):
    def has_change_permission(self, request: HttpRequest, obj: PeriodicTask | None = None) -> bool:
        # Without an object this is the right to run the pause / resume actions on the list.
        if obj is not None and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if not request.user.is_superuser:
            actions.pop("run_tasks", None)
        return actions
