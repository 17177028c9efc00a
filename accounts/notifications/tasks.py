"""Celery tasks of notifications: thin, safe to run twice (each push is claimed before it is sent)."""

from __future__ import annotations

from celery import shared_task

from accounts.notifications.push import push_send, pushes_due

BATCH = 500


@shared_task(name="accounts.notification_push_send")
def notification_push_send(push_id: int) -> str:
    return push_send(push_id=push_id)


@shared_task(name="accounts.notification_pushes_send_due")
def pushes_send_due() -> dict:
    """Every minute, and after notifications were raised: sends what is due (quiet hours over,
    backoff waited), a task per push, in batches."""
    due = pushes_due(limit=BATCH)
    for push_id in due:
        notification_push_send.apply_async((push_id,), ignore_result=True)
    return {"queued": len(due)}
