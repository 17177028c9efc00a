"""Per-source data authorization: grant and revoke, with history."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import errors
from accounts.models import (
    DataSource,
    DataSourceAuthorization,
    User,
)
from core.api.errors import ApplicationError


def _data_source(source: str) -> DataSource:
    try:
        return DataSource(source)
    except ValueError:
        raise ApplicationError(errors.DATA_SOURCE_UNKNOWN) from None


@transaction.atomic
def data_source_authorize(*, user: User, source: DataSource | str) -> DataSourceAuthorization:
    """Grants one data source. Already granted: the active grant is returned unchanged."""
    source = _data_source(source)
    active = DataSourceAuthorization.objects.filter(user=user, source=source, revoked_at__isnull=True).first()
    if active is not None:
        return active
    try:
        with transaction.atomic():
            return DataSourceAuthorization.objects.create(user=user, source=source, granted_at=timezone.now())
    except IntegrityError:
        # A concurrent grant won the partial unique index: the same outcome.
        return DataSourceAuthorization.objects.get(user=user, source=source, revoked_at__isnull=True)


@transaction.atomic
def data_source_revoke(*, user: User, source: DataSource | str) -> DataSourceAuthorization | None:
    """Revokes one data source: from now on nothing from it is accepted for the person.

    The grant row stays (history); the records already captured stay until the person asks for
    erasure. Revoking what is not granted changes nothing and returns None.
    """
    source = _data_source(source)
    now = timezone.now()
    updated = DataSourceAuthorization.objects.filter(
        user=user, source=source, revoked_at__isnull=True
    ).update(revoked_at=now)
    if not updated:
        return None
    return DataSourceAuthorization.objects.filter(user=user, source=source, revoked_at=now).first()
