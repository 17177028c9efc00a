"""Helpers of the registry tests: records as capture leaves them, the pooling text, a lot's life."""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal

from django.utils import timezone

from accounts.models import AgreementKind, User
from accounts.services import agreement_publish, pooling_consent_grant
from activities.models import ActivityRecord, Behaviour, Factor, MethodologyVersion, RecordStatus
from activities.services import daily_carbon_raise
from core.local_time import LOCAL_TZ

_sequence = itertools.count(1)
POOLING_VERSION = "2026-11"


def pooling_text_published() -> None:
    agreement_publish(
        kind=AgreementKind.POOLING_CONSENT,
        version=POOLING_VERSION,
        title="Pooling my reductions",
        summary="Proceeds go back to contributors as bonus coins, or to a welfare project.",
        effective_at=timezone.now() - datetime.timedelta(days=400),
    )


def consenting(user: User) -> User:
    pooling_text_published()
    pooling_consent_grant(user=user, version=POOLING_VERSION)
    return user


def version_one() -> MethodologyVersion:
    return MethodologyVersion.objects.get(number=1)


def uncapped_version() -> MethodologyVersion:
    """A methodology version of the tests whose factors have no caps, so a few records make tonnes."""
    version, created = MethodologyVersion.objects.get_or_create(
        number=99, defaults={"effective_from": datetime.date(2019, 1, 1), "notes": "tests: no caps"}
    )
    if created:
        for factor in Factor.objects.filter(version__number=1, behaviour__code__in=["bus", "walk", "nev_km"]):
            Factor.objects.create(
                version=version,
                behaviour=factor.behaviour,
                carbon_mg_per_unit=factor.carbon_mg_per_unit,
                sources=factor.sources,
            )
    return version


def behaviour(code: str) -> Behaviour:
    return Behaviour.objects.get(code=code)


def record(
    user: User,
    day: datetime.date,
    carbon_mg: int,
    *,
    code: str = "bus",
    status: str = RecordStatus.CREDITED,
    version: MethodologyVersion | None = None,
) -> ActivityRecord:
    """A record as capture stores it: credited ones raise the day's credited carbon, held ones do not."""
    version = version or uncapped_version()
    factor = Factor.objects.get(version=version, behaviour__code=code)
    moment = datetime.datetime.combine(day, datetime.time(9), tzinfo=LOCAL_TZ)
    credited = carbon_mg if status == RecordStatus.CREDITED else 0
    created = ActivityRecord.objects.create(
        user=user,
        behaviour=factor.behaviour,
        factor=factor,
        source=factor.sources[0],
        external_id=f"test-{next(_sequence)}",
        quantity=Decimal(1),
        occurred_at=moment,
        local_day=day,
        gross_carbon_mg=carbon_mg,
        credited_carbon_mg=credited,
        status=status,
        created_at=timezone.now(),
        credited_at=timezone.now() if credited else None,
    )
    if credited:
        daily_carbon_raise(user_id=user.pk, day=day, carbon_mg=credited)
    return created


def days_ago(count: int) -> datetime.date:
    return timezone.localdate() - datetime.timedelta(days=count)
