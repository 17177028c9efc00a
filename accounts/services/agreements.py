"""Agreements: publishing versions and recording that people accepted them."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts import errors
from accounts.models import (
    Agreement,
    AgreementAcceptance,
    AgreementKind,
    User,
)
from accounts.selectors import (
    AGREEMENTS_CACHE_KEY,
    AGREEMENTS_CACHE_SECONDS,
    agreements_in_force_query,
)
from accounts.sessions import user_changed
from core.api.errors import ApplicationError


@transaction.atomic
def agreement_publish(
    *,
    kind: AgreementKind | str,
    version: str,
    title: str,
    url: str = "",
    summary: str = "",
    effective_at=None,
) -> Agreement:
    """Publishes a version; from `effective_at` (default now) everyone must accept it to write."""
    agreement, _ = Agreement.objects.get_or_create(
        kind=kind,
        version=version,
        defaults={
            "title": title,
            "url": url,
            "summary": summary,
            "effective_at": effective_at or timezone.now(),
        },
    )
    # Now, and again after commit (a reader may have cached the old state in between).
    cache.delete(AGREEMENTS_CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(AGREEMENTS_CACHE_KEY))
    return agreement


def agreements_in_force(*, cached: dict[str, Agreement] | None = None) -> dict[str, Agreement]:
    """The version in force of each required agreement kind (kind → Agreement), cached briefly in Redis.

    `cached`: what the caller already read from AGREEMENTS_CACHE_KEY in a round trip of its own
    (`accounts.sessions.session_prefetch`); None reads the key here. A miss reads the database
    and caches the answer for AGREEMENTS_CACHE_SECONDS (so a version published with a future
    `effective_at` comes into force within that delay).
    """
    if cached is None:
        cached = cache.get(AGREEMENTS_CACHE_KEY)
    if cached is not None:
        return cached
    current = agreements_in_force_query()
    cache.set(AGREEMENTS_CACHE_KEY, current, AGREEMENTS_CACHE_SECONDS)
    return current


def accepted_agreements_copy_refresh(*, user: User) -> None:
    """Rewrites the person's copy of their acceptances from the acceptances themselves.

    Two acceptances committing side by side may each write a copy without the other's version:
    the copy is then only behind, and the next check looks the missing version up again.
    """
    accepted = sorted(AgreementAcceptance.objects.filter(user=user).values_list("agreement_id", flat=True))
    User.objects.filter(pk=user.pk).update(accepted_agreement_ids=accepted)
    user_changed(user_ids=[user.pk])
    user.accepted_agreement_ids = accepted


def _accept(*, user: User, agreements: Iterable[Agreement]) -> None:
    now = timezone.now()
    AgreementAcceptance.objects.bulk_create(
        [AgreementAcceptance(user=user, agreement=agreement, accepted_at=now) for agreement in agreements],
        ignore_conflicts=True,
    )
    accepted_agreements_copy_refresh(user=user)


@transaction.atomic
def agreements_accept(*, user: User, versions: dict[str, str]) -> list[Agreement]:
    """Records that the person accepted the versions they were shown (kind → version).

    Each must be the version now in force: accepting an outdated text is refused, so the app
    reloads and shows the new one. Accepting again is harmless.
    """
    current = agreements_in_force()
    stale = {kind: version for kind, version in versions.items() if kind not in current}
    outdated = {
        kind: current[kind].version
        for kind, version in versions.items()
        if kind in current and current[kind].version != version
    }
    if stale or outdated:
        raise ApplicationError(
            errors.AGREEMENT_VERSION_NOT_CURRENT,
            fields={"current": {kind: agreement.version for kind, agreement in current.items()}},
        )
    accepted = [current[kind] for kind in versions]
    _accept(user=user, agreements=accepted)
    return accepted


@transaction.atomic
def agreements_accept_current(*, user: User) -> None:
    """Accepts every version in force for the person (the demo, operators' test accounts)."""
    _accept(user=user, agreements=agreements_in_force().values())
