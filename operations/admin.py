"""Admin wiring that belongs to no single app: the scheduled jobs of django-celery-beat and their
schedules (its forms, made to refuse what beat could not read instead of failing the page).

Operators pause and resume a job (the enable / disable actions); only superusers edit a job's
definition or run it by hand, since a job's task and arguments are code, not operations.
"""

from __future__ import annotations

from celery import schedules
from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django_celery_beat.admin import CrontabScheduleAdmin as BeatCrontabScheduleAdmin
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.admin import PeriodicTaskForm as BeatPeriodicTaskForm
from django_celery_beat.models import CrontabSchedule, PeriodicTask

for _model in (PeriodicTask, CrontabSchedule):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


class PeriodicTaskForm(BeatPeriodicTaskForm):
    """django-celery-beat's form, which read the task's name even when that field had refused it
    (a name too long: a server error instead of the field's error)."""

    def clean(self) -> dict:
        if "task" not in self.cleaned_data:
            return self.cleaned_data
        return super().clean()


class CrontabScheduleForm(forms.ModelForm):
    """A schedule is what Celery's beat can read: each field parsed as beat parses it (a negative
    minute passed the model's own check and failed every page that showed the schedule)."""

    def clean(self) -> dict:
        data = super().clean()
        if all(name in data for name in CRON_FIELDS):
            try:
                schedules.crontab(**{name: data[name] for name in CRON_FIELDS})
            except (ValueError, schedules.ParseException) as error:
                raise forms.ValidationError(
                    _("Not a schedule Celery can read: %(error)s"), params={"error": error}
                ) from None
        return data


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(BeatCrontabScheduleAdmin):
    form = CrontabScheduleForm
    fields = ("schedule_in_words", *CRON_FIELDS, "timezone")
    readonly_fields = ("schedule_in_words",)
    list_display = ("__str__", "schedule_in_words")

    @admin.display(description=_("in words"))
    def schedule_in_words(self, schedule: CrontabSchedule) -> str:
        try:
            return schedule.human_readable
        except (ValueError, schedules.ParseException):
            return "—"


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(BeatPeriodicTaskAdmin):
    form = PeriodicTaskForm

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
