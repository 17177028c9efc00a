"""App session tokens: allauth headless sessions, kept in the database (cached in Redis)."""

from __future__ import annotations

from importlib import import_module

from django.conf import settings


def sessions_clear_expired() -> None:
    """Deletes expired session tokens in one statement (safe to run twice, or concurrently)."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
