"""The "Operators" group: platform staff who review, but do not change the rules.

Operators see every model of the apps and the schedule, and can do the review work: approve or
reject merchants, offers and held activity records (the admin actions, through the services),
pause or resume a scheduled job, and run the reduction registry's lots (make one, allocate, submit,
register, sell, retire, pay the proceeds). They cannot change the methodology (behaviours, factor versions),
the coin rate, partners' credentials or people's accounts: that is for superusers.

The group is written after every `migrate` (and every test database flush), once the last app's
permissions exist, so its permissions always match this file.
"""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.contrib.auth.models import Group, Permission
from django.db.models import Q

OPERATORS_GROUP = "Operators"

# Every model of these apps is visible to operators.
VIEWED_APPS = ("accounts", "activities", "rewards", "merchants", "registry", "django_celery_beat")

# The review work, as (app label, codename).
REVIEW_PERMISSIONS = (
    ("merchants", "change_merchant"),  # approve / reject applications
    ("merchants", "change_offer"),  # approve / send back offers (the offer itself stays read-only)
    ("activities", "change_heldrecord"),  # approve / reject records held for review
    ("django_celery_beat", "change_periodictask"),  # pause / resume a scheduled job
    # The registry's work: make a lot, run its steps (allocate, submit, register, sell, retire, pay
    # the proceeds) through the services. Nothing of it is ever edited in place or deleted.
    ("registry", "add_reductionlot"),
    ("registry", "change_reductionlot"),
)


def operators_group_sync() -> Group:
    """Creates the group or brings its permissions back to what this module says (idempotent)."""
    group, _created = Group.objects.get_or_create(name=OPERATORS_GROUP)
    review = Q()
    for app_label, codename in REVIEW_PERMISSIONS:
        review |= Q(content_type__app_label=app_label, codename=codename)
    permissions = Permission.objects.filter(
        Q(content_type__app_label__in=VIEWED_APPS, codename__startswith="view_") | review
    )
    group.permissions.set(permissions)
    return group


def operators_group_sync_after_migrate(sender: AppConfig, using: str = "default", **_kwargs) -> None:
    """post_migrate is sent once per app with models; the last one runs after every app's permissions
    were created (Django's own handler is connected first)."""
    last = [config for config in apps.get_app_configs() if config.models_module is not None][-1]
    if sender.label == last.label:
        operators_group_sync()
