"""The pooling consent: a person allows their verified reductions to be pooled and sold, or stops."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import errors
from accounts.models import AgreementAcceptance, PoolingConsent, User
from accounts.selectors import pooling_agreement_current
from core.api.errors import ApplicationError


@transaction.atomic
def pooling_consent_grant(*, user: User, version: str) -> PoolingConsent:
    """Grants the consent under the pooling text in force, which the person was shown (`version`).

    No text published yet: POOLING_CONSENT_UNAVAILABLE; another version in force:
    AGREEMENT_VERSION_NOT_CURRENT (the app reloads it). Already granted under this version: the
    active consent is returned unchanged; granted under an older one: it is closed and a new one
    opened under the current text (what was pooled under the old text stays as it was).
    """
    agreement = pooling_agreement_current()
    if agreement is None:
        raise ApplicationError(errors.POOLING_CONSENT_UNAVAILABLE)
    if agreement.version != version:
        raise ApplicationError(
            errors.AGREEMENT_VERSION_NOT_CURRENT, fields={"current": {agreement.kind: agreement.version}}
        )
    now = timezone.now()
    active = PoolingConsent.objects.filter(user=user, revoked_at__isnull=True).first()
    if active is not None:
        if active.agreement_id == agreement.pk:
            return active
        PoolingConsent.objects.filter(pk=active.pk, revoked_at__isnull=True).update(revoked_at=now)
    AgreementAcceptance.objects.bulk_create(
        [AgreementAcceptance(user=user, agreement=agreement, accepted_at=now)], ignore_conflicts=True
    )
    try:
        with transaction.atomic():
            return PoolingConsent.objects.create(user=user, agreement=agreement, granted_at=now)
    except IntegrityError:
        # A concurrent grant won the partial unique index: the same outcome.
        return PoolingConsent.objects.get(user=user, revoked_at__isnull=True)


@transaction.atomic
def pooling_consent_revoke(*, user: User) -> PoolingConsent | None:
    """Revokes the consent for the future: no lot allocated from now on takes the person's grams.

    Lots already allocated keep what they hold (their commitment is published). Revoking what is
    not granted changes nothing and returns None.
    """
    now = timezone.now()
    updated = PoolingConsent.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)
    if not updated:
        return None
    return PoolingConsent.objects.filter(user=user, revoked_at=now).first()
