"""Imported carbon as the person's report, rating and green credit profile count it.

Each peer platform's registration says where its statements count (`counts_in_report`,
`counts_in_rating`, `counts_in_credit_profile`); an operator changing it changes what is counted
from then on. Imported carbon never enters `DailyCarbon`, the leaderboards or the badges: those
stay what this platform measured itself.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import QuerySet, Sum
from django.utils.translation import gettext

from accounts.models import User
from activities.models import ImportedInstance, ImportedReduction, PeerStatement


class Use:
    REPORT = "counts_in_report"
    RATING = "counts_in_rating"
    CREDIT_PROFILE = "counts_in_credit_profile"


def imported_statements(*, user: User, use: str, first: datetime.date, last: datetime.date) -> QuerySet:
    """The person's imported statements of the months from `first`'s to `last`'s that count for `use`."""
    return PeerStatement.objects.filter(
        user=user, month__gte=first.replace(day=1), month__lte=last, **{f"peer__{use}": True}
    )


def imported_carbon_mg(*, user: User, use: str, first: datetime.date, last: datetime.date) -> int:
    total = imported_statements(user=user, use=use, first=first, last=last).aggregate(
        total=Sum("total_carbon_mg")
    )["total"]
    return int(total or 0)


@dataclass(frozen=True)
class ImportedMonth:
    month: datetime.date
    issuer: str
    platform: str
    carbon_mg: int


def imported_months(
    *, user: User, use: str, first: datetime.date, last: datetime.date
) -> list[ImportedMonth]:
    """Per month and issuer, newest month first."""
    rows = (
        imported_statements(user=user, use=use, first=first, last=last)
        .values_list("month", "peer__issuer", "peer__name", "total_carbon_mg")
        .order_by("-month", "peer__issuer")
    )
    return [ImportedMonth(*row) for row in rows]


def imported_reductions(
    *, user: User, use: str, first: datetime.date, last: datetime.date
) -> QuerySet[ImportedReduction]:
    """Per behaviour of each counting statement, with its issuer (the report lists them marked)."""
    return (
        ImportedReduction.objects.filter(
            statement__in=imported_statements(user=user, use=use, first=first, last=last)
        )
        .select_related("statement__peer")
        .order_by("-carbon_mg", "statement__peer__issuer", "behaviour")
    )


def peer_statements_of(*, user: User) -> QuerySet[PeerStatement]:
    return (
        PeerStatement.objects.filter(user=user)
        .select_related("peer")
        .prefetch_related("reductions")
        .order_by("-month", "-id")
    )


def imported_instance_receipts(*, instance_ids: set[int]) -> dict[int, str]:
    """The receipt of a report of an instance an imported statement counts: its platform and month."""
    rows = ImportedInstance.objects.filter(pk__in=instance_ids).values_list(
        "id", "statement__peer__name", "statement__month"
    )
    return {
        instance_id: gettext("counted in the statement of %(platform)s for %(month)s")
        % {"platform": platform, "month": f"{month:%Y-%m}"}
        for instance_id, platform, month in rows
    }
