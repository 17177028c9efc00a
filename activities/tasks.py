"""Periodic jobs of the activities app (scheduled in config/settings/integrations/celery.py)."""

from __future__ import annotations

from celery import shared_task

from activities.statements.importing import statement_nonces_delete_expired


@shared_task(name="activities.statement_nonces_delete_expired")
def delete_expired_statement_nonces() -> int:
    """Daily: the statement nonces expired more than a day ago go. Safe to run twice."""
    return statement_nonces_delete_expired()
