"""The green credit profile partner banks read for carbon loans, with the person's consent.

Carbon per month is what was measured here plus the statements of other platforms the person
imported, where the platform's registration counts them in the credit profile; those are also
listed with their issuer, so a bank sees what it rests on.

Consent is separate and revocable, per bank: `CreditProfileConsent` (the accounts app's data-source
authorizations are about data coming in; this is about data going out to one bank). A bank asks
through the signed partner API (activities' HMAC authentication) for one of its customers, named by
the customer reference it linked (`PartnerCustomerLink`). Every request is logged — disclosed or
refused — and the person sees the log. Without an active consent the answer is one refusal that
says nothing about whether the customer exists.
"""

from __future__ import annotations

import datetime

from django.db import IntegrityError, transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from accounts.models import DataSource, User
from activities.models import DailyCarbon, Partner, PartnerCustomerLink
from activities.statements.selectors import Use, imported_months
from core.api.errors import ApplicationError
from rewards.errors import CREDIT_PROFILE_CONSENT_MISSING, CREDIT_PROFILE_PARTNER_UNKNOWN
from rewards.gamification.ratings import month_last_day
from rewards.models import CreditProfileAccess, CreditProfileConsent, MonthlyRating

HISTORY_MONTHS = 12


def credit_partners() -> QuerySet[Partner]:
    """The partners that may be granted access: active banks."""
    return Partner.objects.filter(is_active=True, source=DataSource.BANK_PAYMENTS).order_by("name")


def _bank(code: str) -> Partner:
    partner = credit_partners().filter(code=code).first()
    if partner is None:
        raise ApplicationError(CREDIT_PROFILE_PARTNER_UNKNOWN, fields={"partner": [code]})
    return partner


@transaction.atomic
def credit_consent_grant(*, user: User, partner_code: str) -> CreditProfileConsent:
    """Lets one bank read the profile from now on; granting again keeps the active grant."""
    partner = _bank(partner_code)
    active = CreditProfileConsent.objects.filter(user=user, partner=partner, revoked_at__isnull=True).first()
    if active is not None:
        return active
    try:
        with transaction.atomic():
            return CreditProfileConsent.objects.create(user=user, partner=partner, granted_at=timezone.now())
    except IntegrityError:
        # A twin request granted it first.
        return CreditProfileConsent.objects.get(user=user, partner=partner, revoked_at__isnull=True)


@transaction.atomic
def credit_consent_revoke(*, user: User, partner_code: str) -> int:
    """Takes the bank's access back at once; the grant stays as history. Returns grants closed."""
    partner = Partner.objects.filter(code=partner_code).first()
    if partner is None:
        raise ApplicationError(CREDIT_PROFILE_PARTNER_UNKNOWN, fields={"partner": [partner_code]})
    return CreditProfileConsent.objects.filter(user=user, partner=partner, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def credit_consents_of(*, user: User) -> QuerySet[CreditProfileConsent]:
    return (
        CreditProfileConsent.objects.filter(user=user)
        .select_related("partner")
        .order_by("-granted_at", "-id")
    )


def credit_accesses_of(*, user: User) -> QuerySet[CreditProfileAccess]:
    return (
        CreditProfileAccess.objects.filter(user=user)
        .select_related("partner")
        .order_by("-accessed_at", "-id")
    )


def _months_back(today: datetime.date, count: int) -> list[datetime.date]:
    month = today.replace(day=1)
    months = []
    for _index in range(count):
        months.append(month)
        month = (month - datetime.timedelta(days=1)).replace(day=1)
    return months


def credit_profile_of(*, user: User, today: datetime.date | None = None) -> dict:
    """Current rating, the last 12 months' ratings, and carbon reduced per month over 12 months."""
    today = today or timezone.localdate()
    months = _months_back(today, HISTORY_MONTHS)
    first = months[-1]
    ratings = {
        rating.month: rating
        for rating in MonthlyRating.objects.filter(user=user, month__gte=first).order_by("-month")
    }
    per_month = dict.fromkeys(months, 0)
    for day, carbon_mg in DailyCarbon.objects.filter(user=user, day__gte=first, day__lte=today).values_list(
        "day", "credited_carbon_mg"
    ):
        per_month[day.replace(day=1)] += carbon_mg
    imported = imported_months(user=user, use=Use.CREDIT_PROFILE, first=first, last=today)
    imported_per_month = dict.fromkeys(months, 0)
    for row in imported:
        imported_per_month[row.month] += row.carbon_mg
    latest = max(ratings.values(), key=lambda rating: rating.month, default=None)
    total = DailyCarbon.objects.filter(user=user, day__gte=first, day__lte=today).aggregate(
        total=Sum("credited_carbon_mg")
    )["total"]
    return {
        "person": str(user.public_id),
        "as_of": today,
        "current_rating": (
            {"month": latest.month, "level": latest.level, "is_ambassador": latest.is_ambassador}
            if latest
            else None
        ),
        "rating_history": [
            {"month": month, "level": ratings[month].level if month in ratings else None} for month in months
        ],
        "twelve_months": {
            "from": first,
            "through": min(today, month_last_day(months[0])),
            "carbon_mg": (total or 0) + sum(imported_per_month.values()),
            "imported_carbon_mg": sum(imported_per_month.values()),
            "active_months": sum(1 for month in months if per_month[month] + imported_per_month[month] > 0),
            "dark_green_months": sum(1 for rating in ratings.values() if rating.is_ambassador),
            "per_month": [
                {
                    "month": month,
                    "carbon_mg": per_month[month] + imported_per_month[month],
                    "imported_carbon_mg": imported_per_month[month],
                }
                for month in months
            ],
            "imported": [
                {
                    "month": row.month,
                    "issuer": row.issuer,
                    "platform": row.platform,
                    "carbon_mg": row.carbon_mg,
                }
                for row in imported
            ],
        },
    }


def credit_profile_fetch(*, partner: Partner, customer_reference: str, request_id: str) -> dict:
    """What an authenticated partner receives for its customer, logged either way.

    The refusal is the same whether the reference is unknown, the consent missing or revoked, so a
    bank learns nothing about people who did not consent. The log row commits even when refused.
    """
    link = (
        PartnerCustomerLink.objects.filter(partner=partner, customer_reference=customer_reference)
        .select_related("user")
        .first()
    )
    user = link.user if link is not None else None
    consented = (
        user is not None
        and user.closed_at is None
        and CreditProfileConsent.objects.filter(user=user, partner=partner, revoked_at__isnull=True).exists()
    )
    CreditProfileAccess.objects.create(
        user=user,
        partner=partner,
        outcome=CreditProfileAccess.Outcome.DISCLOSED if consented else CreditProfileAccess.Outcome.REFUSED,
        partner_request_id=request_id[:100],
        accessed_at=timezone.now(),
    )
    if not consented:
        raise ApplicationError(CREDIT_PROFILE_CONSENT_MISSING)
    return credit_profile_of(user=user)
