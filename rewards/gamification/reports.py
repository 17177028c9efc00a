"""The personal carbon report, monthly and yearly: what a person reduced, how, and what it means.

Figures come from the records of truth: `DailyCarbon` (totals, averages), `BehaviourDay` (per
behaviour), the ledger (coins earned and spent), ratings and badge awards. Statements of other
platforms the person imported count too where the platform's registration says so
(`counts_in_report`): in the totals, and as behaviours of their own marked with their issuer. The
city and district averages are over the people who reduced anything in the period, computed once
per period in one GROUP BY and cached for an hour.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import District, User
from activities.models import BehaviourDay, DailyCarbon
from activities.selectors import behaviour_name
from activities.statements.selectors import Use, imported_carbon_mg, imported_reductions
from core.local_time import local_day_start
from rewards.gamification import statements
from rewards.gamification.ratings import month_last_day
from rewards.models import (
    BadgeAward,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransactionKind,
    MonthlyRating,
    RatingLevel,
    RatingRun,
)

# A mature tree absorbs about 22 kg of CO2 a year: European Environment Agency, "Trees help tackle
# climate change" (2012; the figure is the one the EEA and most Chinese popular sources quote).
TREE_CO2_MG_PER_YEAR = 22_000_000
TREE_FACTOR_SOURCE = "European Environment Agency: a mature tree absorbs about 22 kg CO2 a year"
# A typical passenger car emits about 400 g of CO2 per mile, 249 g per km: US EPA, "Greenhouse Gas
# Emissions from a Typical Passenger Vehicle" (EPA-420-F-23-014, 2023).
CAR_CO2_MG_PER_KM = 249_000
CAR_FACTOR_SOURCE = (
    "US EPA EPA-420-F-23-014: a typical passenger car emits about 400 g CO2 per mile (249 g/km)"
)

AVERAGES_SECONDS = 3600
SPENDING = [LedgerTransactionKind.REDEMPTION, LedgerTransactionKind.DONATION]
# Coins that came to the person: settlements, other platforms' statements, team challenges' rewards,
# and coins issued to them (the proceeds of a reduction lot's sale).
EARNING = [
    LedgerTransactionKind.SETTLEMENT,
    LedgerTransactionKind.PEER_STATEMENT,
    LedgerTransactionKind.CHALLENGE_REWARD,
    LedgerTransactionKind.ISSUANCE,
]


class ReportPeriod:
    MONTH = "month"
    YEAR = "year"
    CHOICES = [MONTH, YEAR]


def report_bounds(*, period: str, start: datetime.date) -> tuple[datetime.date, datetime.date]:
    """The first and last day of a report (the last is today for the period still running)."""
    if period == ReportPeriod.MONTH:
        first, last = start.replace(day=1), month_last_day(start)
    else:
        first, last = start.replace(month=1, day=1), start.replace(month=12, day=31)
    return first, min(last, max(first, timezone.localdate()))


def previous_start(*, period: str, start: datetime.date) -> datetime.date:
    if period == ReportPeriod.MONTH:
        return (start.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
    return start.replace(year=start.year - 1, month=1, day=1)


def _total(user: User, first: datetime.date, last: datetime.date) -> int:
    """Measured here plus imported from other platforms (those that count in the report)."""
    measured = (
        DailyCarbon.objects.filter(user=user, day__gte=first, day__lte=last).aggregate(
            total=Sum("credited_carbon_mg")
        )["total"]
        or 0
    )
    return measured + imported_carbon_mg(user=user, use=Use.REPORT, first=first, last=last)


def period_averages(*, first: datetime.date, last: datetime.date) -> dict:
    """{"city": (people, carbon), district id: (people, carbon)} over people who reduced anything."""
    key = f"rewards:report:averages:{first.isoformat()}:{last.isoformat()}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    with connection.cursor() as cursor:
        cursor.execute(
            statements.PERIOD_AVERAGES,
            {"first": first, "last": last, "first_month": first.replace(day=1)},
        )
        rows = cursor.fetchall()
    averages: dict = {"city": (sum(row[1] for row in rows), sum(row[2] for row in rows))}
    for district_id, people, carbon_mg in rows:
        if district_id is not None:
            averages[district_id] = (people, carbon_mg)
    cache.set(key, averages, AVERAGES_SECONDS)
    return averages


def _average(pair: tuple[int, int] | None) -> int | None:
    if not pair or not pair[0]:
        return None
    return pair[1] // pair[0]


def coins_of(*, user: User, first: datetime.date, last: datetime.date) -> dict[str, int]:
    """Coins earned (`EARNING`: settlements, other platforms' statements, challenge rewards, lot
    proceeds), spent (redemptions and donations, net of refunds) and expired."""
    entries = LedgerEntry.objects.filter(
        account__kind=LedgerAccountKind.WALLET,
        account__owner_id=user.pk,
        transaction__created_at__gte=local_day_start(first),
        transaction__created_at__lt=local_day_start(last + datetime.timedelta(days=1)),
    )
    sums = entries.aggregate(
        earned=Sum("amount", filter=Q(transaction__kind__in=EARNING)),
        spent=Sum("amount", filter=Q(transaction__kind__in=SPENDING)),
        refunded=Sum("amount", filter=Q(transaction__kind=LedgerTransactionKind.COUPON_REFUND)),
        expired=Sum("amount", filter=Q(transaction__kind=LedgerTransactionKind.EXPIRY)),
    )
    return {
        "earned": sums["earned"] or 0,
        "spent": -(sums["spent"] or 0) - (sums["refunded"] or 0),
        "expired": -(sums["expired"] or 0),
    }


def _ratio(carbon_mg: int, factor_mg: int, places: str) -> Decimal:
    return (Decimal(carbon_mg) / Decimal(factor_mg)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def equivalents_of(carbon_mg: int) -> dict:
    return {
        "trees_yearly_absorption": _ratio(carbon_mg, TREE_CO2_MG_PER_YEAR, "0.01"),
        "tree_co2_mg_per_year": TREE_CO2_MG_PER_YEAR,
        "tree_factor_source": TREE_FACTOR_SOURCE,
        "car_km_avoided": _ratio(carbon_mg, CAR_CO2_MG_PER_KM, "0.1"),
        "car_co2_mg_per_km": CAR_CO2_MG_PER_KM,
        "car_factor_source": CAR_FACTOR_SOURCE,
    }


@dataclass
class CarbonReport:
    period: str
    label: str
    first_day: datetime.date
    last_day: datetime.date
    total_carbon_mg: int
    previous_total_carbon_mg: int
    change_carbon_mg: int
    change_percent: Decimal | None
    behaviours: list[dict]
    imported_carbon_mg: int
    city_average_carbon_mg: int | None
    district: District | None
    district_average_carbon_mg: int | None
    rating: dict | None
    badges_earned: list[dict]
    badges_total: int
    coins: dict[str, int]
    equivalents: dict = field(default_factory=dict)

    @property
    def district_code(self) -> str | None:
        return self.district.code if self.district else None


def _rating(user: User, period: str, first: datetime.date, last: datetime.date) -> dict | None:
    ratings = list(
        MonthlyRating.objects.filter(user=user, month__gte=first, month__lte=last).order_by("-month")
    )
    if not ratings:
        return None
    latest = ratings[0]
    run = RatingRun.objects.filter(month=latest.month).first()
    return {
        "month": latest.month,
        "level": latest.level,
        "is_ambassador": latest.is_ambassador,
        "is_final": bool(run and run.is_final),
        "dark_green_months": sum(1 for rating in ratings if rating.level == RatingLevel.DARK_GREEN),
    }


def carbon_report(*, user: User, period: str, start: datetime.date) -> CarbonReport:
    """The person's report for the month or year that contains `start`."""
    first, last = report_bounds(period=period, start=start)
    previous_first, previous_last = report_bounds(
        period=period, start=previous_start(period=period, start=first)
    )
    total = _total(user, first, last)
    previous = _total(user, previous_first, previous_last)
    per_behaviour = (
        BehaviourDay.objects.filter(user=user, day__gte=first, day__lte=last, credited_carbon_mg__gt=0)
        .values("behaviour")
        .annotate(carbon_mg=Sum("credited_carbon_mg"), quantity=Sum("quantity"))
        .order_by("-carbon_mg", "behaviour")
    )
    from activities.models import Behaviour

    behaviours = {behaviour.pk: behaviour for behaviour in Behaviour.objects.all()}
    measured = [
        {
            "behaviour": behaviours[row["behaviour"]].code,
            "name": behaviour_name(behaviours[row["behaviour"]]),
            "unit": behaviours[row["behaviour"]].unit,
            "quantity": row["quantity"],
            "carbon_mg": row["carbon_mg"],
            "issuer": None,
            "platform": None,
        }
        for row in per_behaviour
    ]
    imported = [
        {
            "behaviour": reduction.behaviour,
            "name": f"{reduction.name or reduction.behaviour} · {reduction.statement.peer.name}",
            "unit": reduction.unit,
            "quantity": reduction.quantity,
            "carbon_mg": reduction.carbon_mg,
            "issuer": reduction.statement.peer.issuer,
            "platform": reduction.statement.peer.name,
        }
        for reduction in imported_reductions(user=user, use=Use.REPORT, first=first, last=last)
    ]
    averages = period_averages(first=first, last=last)
    district = District.objects.filter(pk=user.district_id).first() if user.district_id else None
    awards = BadgeAward.objects.filter(
        user=user,
        awarded_at__gte=local_day_start(first),
        awarded_at__lt=local_day_start(last + datetime.timedelta(days=1)),
    ).select_related("badge")
    return CarbonReport(
        period=period,
        label=first.strftime("%Y-%m") if period == ReportPeriod.MONTH else str(first.year),
        first_day=first,
        last_day=last,
        total_carbon_mg=total,
        previous_total_carbon_mg=previous,
        change_carbon_mg=total - previous,
        change_percent=(
            (Decimal(total - previous) * 100 / Decimal(previous)).quantize(Decimal("0.1"), ROUND_HALF_UP)
            if previous
            else None
        ),
        behaviours=sorted(measured + imported, key=lambda row: -row["carbon_mg"]),
        imported_carbon_mg=sum(row["carbon_mg"] for row in imported),
        city_average_carbon_mg=_average(averages.get("city")),
        district=district,
        district_average_carbon_mg=_average(averages.get(district.pk)) if district else None,
        rating=_rating(user, period, first, last),
        badges_earned=[
            {
                "key": award.badge.key,
                "name": award.badge.name,
                "name_en": award.badge.name_en,
                "awarded_at": award.awarded_at,
            }
            for award in awards.order_by("awarded_at", "badge__sort_order")
        ],  # fmt: skip
        badges_total=BadgeAward.objects.filter(user=user).count(),
        coins=coins_of(user=user, first=first, last=last),
        equivalents=equivalents_of(total),
    )
