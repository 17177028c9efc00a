"""Reads of notifications: the inbox, the unread count, preferences, WeChat templates and grants."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from accounts.notifications.models import (
    Notification,
    NotificationChannel,
    NotificationKind,
    NotificationPreference,
    QuietHours,
    WeChatSubscription,
    WeChatTemplate,
)


def inbox_of(*, user: User, unread_only: bool = False) -> QuerySet[Notification]:
    """The person's inbox (without the rows that only carry a WeChat message of a kind turned off
    in the inbox)."""
    rows = Notification.objects.filter(user=user, in_inbox=True)
    return rows.filter(read_at__isnull=True) if unread_only else rows


def unread_count(*, user: User) -> int:
    return inbox_of(user=user, unread_only=True).count()


def preferences_of(*, user: User) -> dict:
    """Every kind on every channel (on unless the person turned it off), the quiet hours and the
    language of pushes."""
    chosen = {
        (kind, channel): enabled
        for kind, channel, enabled in NotificationPreference.objects.filter(user=user).values_list(
            "kind", "channel", "is_enabled"
        )
    }
    quiet = QuietHours.objects.filter(user=user).first()
    return {
        "preferences": [
            {"kind": kind, "channel": channel, "is_enabled": chosen.get((kind, channel), True)}
            for kind in NotificationKind.values
            for channel in NotificationChannel.values
        ],
        "quiet_hours": {"starts_at": quiet.starts_at, "ends_at": quiet.ends_at} if quiet else None,
        "language": user.language,
    }


def subscriptions_of(*, user: User) -> list[dict]:
    remaining = dict(WeChatSubscription.objects.filter(user=user).values_list("template_id", "remaining"))
    return [
        {
            "template_id": template.template_id,
            "kind": template.kind,
            "title": template.title,
            "remaining": remaining.get(template.pk, 0),
        }
        for template in WeChatTemplate.objects.filter(is_active=True).order_by("kind")
    ]
