"""Celery tasks of the accounts app: thin, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from accounts.services import sessions_clear_expired


@shared_task(name="accounts.sessions_clear_expired")
def clear_expired_sessions() -> None:
    sessions_clear_expired()
