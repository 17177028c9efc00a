"""Celery tasks of the accounts app: thin, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from accounts.services import sessions_clear_expired


@shared_task(name="accounts.sessions_clear_expired")
def clear_expired_sessions() -> None:
    sessions_clear_expired()


# The notification tasks live beside their services; importing them here lets Celery find them.
from accounts.notifications.tasks import notification_push_send, pushes_send_due  # noqa: E402

__all__ = ["clear_expired_sessions", "notification_push_send", "pushes_send_due"]
