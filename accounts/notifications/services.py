"""Raising notifications (one or millions, one rule), reading them, preferences, WeChat grants.

Every notification goes through one set-based statement, `notifications_insert`: the caller hands a
SELECT of (user_id, params, event_key) rows — a list of people, or a query of its own as a
`psycopg.sql.Composable` — and it inserts what the people's preferences allow, once per person and
event (`ON CONFLICT DO NOTHING`), then queues the WeChat pushes of the kinds that have a template,
each not before the end of the person's quiet hours.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from psycopg import sql

from accounts.models import User
from accounts.notifications import statements
from accounts.notifications.models import (
    Notification,
    NotificationKind,
    NotificationPreference,
    QuietHours,
    WeChatSubscription,
    WeChatSubscriptionReport,
    WeChatTemplate,
)
from accounts.sessions import user_changed


@dataclass(frozen=True)
class Raised:
    notifications: int
    pushes: int


def notifications_insert(*, kind: str, rows: sql.Composable, params: dict) -> Raised:
    """Inserts the notifications of `rows` (a SELECT of user_id, params jsonb, event_key; its own
    named parameters in `params`), once per person and event, and queues their pushes."""
    if kind not in NotificationKind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    statement = statements.NOTIFICATIONS_INSERT.format(
        notifications=statements.NOTIFICATIONS,
        preferences=statements.PREFERENCES,
        push_due_at=statements.PUSH_DUE_AT,
        rows=rows,
    )
    # In the caller's transaction when there is one (no savepoint), else in one of its own.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(statements.NOTIFICATIONS_INSERT_SETTINGS)
        cursor.execute(statement, {**params, "kind": kind, "now": timezone.now(), "tz": settings.TIME_ZONE})
        notifications, pushes = cursor.fetchone()
    if pushes:
        from accounts.notifications.tasks import pushes_send_due

        transaction.on_commit(lambda: pushes_send_due.apply_async(ignore_result=True))
    return Raised(notifications=notifications, pushes=pushes)


def notifications_raise(*, kind: str, user_ids: list[int], event_key: str, params: dict) -> Raised:
    """Tells each of these people of one event (the same parameters): the single-event path."""
    if not user_ids:
        return Raised(0, 0)
    return notifications_insert(
        kind=kind,
        rows=statements.PEOPLE_ROWS,
        params={
            "n_params": json.dumps(params, default=str),
            "n_event_key": event_key,
            "n_people": list(user_ids),
        },
    )


def notification_raise(*, user_id: int, kind: str, event_key: str, params: dict) -> Raised:
    """Tells one person of one event; raising the same event again changes nothing."""
    return notifications_raise(kind=kind, user_ids=[user_id], event_key=event_key, params=params)


def bank_identity_joined_notify(*, user_id: int, bank: str, identity_id: int) -> Raised:
    """For the cross-bank join: call once the bank's identity is part of the person's account."""
    return notification_raise(
        user_id=user_id,
        kind=NotificationKind.BANK_IDENTITY_JOINED,
        event_key=f"bank_identity_joined:{identity_id}",
        params={"bank": bank},
    )


# --- The inbox --------------------------------------------------------------------------------


def notification_mark_read(*, user: User, public_id) -> Notification | None:
    """Marks one notification read (again: no change); None when it is not the person's."""
    Notification.objects.filter(user=user, public_id=public_id, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    return Notification.objects.filter(user=user, public_id=public_id).first()


def notifications_mark_all_read(*, user: User, up_to_id: int | None = None) -> int:
    """Marks every unread notification read (up to the newest the app has seen, if it says)."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if up_to_id is not None:
        unread = unread.filter(pk__lte=up_to_id)
    return unread.update(read_at=timezone.now())


# --- Preferences and quiet hours --------------------------------------------------------------


@transaction.atomic
def preferences_set(
    *,
    user: User,
    choices: list[tuple[str, str, bool]],
    quiet_hours: tuple[datetime.time, datetime.time] | None | bool = False,
    language: str | None = None,
) -> None:
    """Sets (kind, channel, enabled) choices; `quiet_hours` a (start, end) pair, None to remove
    them, or False to leave them as they are; `language` (`zh-hans`, `en`) the one pushes are
    written in, if given."""
    if language is not None:
        User.objects.filter(pk=user.pk).update(language=language)
        user_changed(user_ids=[user.pk])
        user.language = language
    for kind, channel, enabled in choices:
        NotificationPreference.objects.update_or_create(
            user=user, kind=kind, channel=channel, defaults={"is_enabled": enabled}
        )
    if quiet_hours is None:
        QuietHours.objects.filter(user=user).delete()
    elif quiet_hours is not False:
        starts_at, ends_at = quiet_hours
        QuietHours.objects.update_or_create(user=user, defaults={"starts_at": starts_at, "ends_at": ends_at})


# --- WeChat one-time subscriptions ------------------------------------------------------------

ACCEPT, REJECT, BAN, FILTER = "accept", "reject", "ban", "filter"
ANSWERS = (ACCEPT, REJECT, BAN, FILTER)


@dataclass(frozen=True)
class SubscriptionReported:
    counted: bool
    unknown_templates: list[str]


@transaction.atomic
def wechat_subscriptions_report(
    *, user: User, answers: dict[str, str], idempotency_key: str | None = None
) -> SubscriptionReported:
    """Counts what `wx.requestSubscribeMessage` returned: each `accept` grants one message of that
    template; `ban` (the person turned the template off) drops what was left. A report sent again
    with the same Idempotency-Key counts nothing more."""
    if idempotency_key:
        try:
            with transaction.atomic():
                WeChatSubscriptionReport.objects.create(user=user, idempotency_key=idempotency_key)
        except IntegrityError:
            return SubscriptionReported(counted=False, unknown_templates=[])
    templates = {
        template.template_id: template
        for template in WeChatTemplate.objects.filter(template_id__in=list(answers))
    }
    for template_id, answer in sorted(answers.items()):
        template = templates.get(template_id)
        if template is None:
            continue
        WeChatSubscription.objects.bulk_create(
            [WeChatSubscription(user=user, template=template)], ignore_conflicts=True
        )
        rows = WeChatSubscription.objects.filter(user=user, template=template)
        if answer == ACCEPT:
            rows.update(remaining=F("remaining") + 1, last_answer=answer, updated_at=timezone.now())
        elif answer == BAN:
            rows.update(remaining=0, last_answer=answer, updated_at=timezone.now())
        else:
            rows.update(last_answer=answer, updated_at=timezone.now())
    return SubscriptionReported(counted=True, unknown_templates=sorted(set(answers) - set(templates)))
