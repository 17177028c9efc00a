"""Reads of the activities app: what a person sees today, their history with receipts, the methodology."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from activities.methodology import methodology_load
from activities.models import (
    ActivityRecord,
    Behaviour,
    BehaviourDay,
    CapKind,
    Partner,
    PartnerCustomerLink,
    RecordStatus,
)
from activities.sql_statements.today import TODAY
from core.db import prepared_cursor
from core.local_time import local_day_of
from core.person_cache import Reading


def behaviour_name(behaviour: Behaviour) -> str:
    return behaviour.name if (translation.get_language() or "").startswith("zh") else behaviour.name_en


def grams(carbon_mg: int) -> str:
    value = Decimal(carbon_mg) / 1000
    text = f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{text} g"


def quantity_text(quantity: Decimal) -> str:
    return f"{quantity.normalize():,f}"


@dataclass(frozen=True)
class BehaviourToday:
    behaviour: Behaviour
    quantity: Decimal
    credited_carbon_mg: int
    held_count: int
    daily_cap_mg: int | None
    cap_left_mg: int | None


@dataclass(frozen=True)
class Today:
    day: datetime.date
    behaviours: list[BehaviourToday]
    credited_today_mg: int
    pending_settlement_mg: int
    under_review_count: int


# Today's carbon as the app shows it, cached per person and language (`core.person_cache`): read
# from what was captured of them and the methodology in effect.
TODAY_READING = Reading(
    "today",
    sources=("carbon",),
    shared=("methodology",),
    parts=tuple(code for code, _name in settings.LANGUAGES),
)


def today_for(*, user: User, now: datetime.datetime | None = None) -> Today:
    """Per behaviour: what was credited today and how much of the cap is left; what settlement still owes."""
    day = local_day_of(now or timezone.now())
    with prepared_cursor() as cursor:
        cursor.execute(
            TODAY, {"user": user.pk, "day": day, "month": day.replace(day=1), "held": RecordStatus.HELD}
        )
        rows = cursor.fetchall()
    behaviours = []
    for *_totals, code, name, name_en, unit, quantity, credited, held, daily_cap, monthly_cap, month in rows:
        if code is None:
            continue  # no behaviour has a factor in effect on the day
        lefts = []
        if daily_cap is not None:
            lefts.append(max(0, daily_cap - credited))
        if monthly_cap is not None:
            lefts.append(max(0, monthly_cap - month))
        behaviours.append(
            BehaviourToday(
                behaviour=Behaviour(code=code, name=name, name_en=name_en, unit=unit),
                quantity=quantity,
                credited_carbon_mg=credited,
                held_count=held,
                daily_cap_mg=daily_cap,
                cap_left_mg=min(lefts) if lefts else None,
            )
        )
    return Today(
        day=day,
        behaviours=behaviours,
        credited_today_mg=sum(row.credited_carbon_mg for row in behaviours),
        pending_settlement_mg=int(rows[0][0]),
        under_review_count=int(rows[0][1]),
    )


def records_of(*, user: User) -> QuerySet[ActivityRecord]:
    """The person's own records, newest first (only ever theirs)."""
    return (
        ActivityRecord.objects.filter(user=user)
        .select_related("behaviour", "factor__version", "partner")
        # The other reports of each credited instance (another source's, crediting nothing).
        .prefetch_related("duplicates__partner")
        .order_by("-id")
    )


def record_of(*, user: User, record_id: int) -> ActivityRecord | None:
    """One of the person's own records, or None (another person's record is as good as absent)."""
    return records_of(user=user).filter(pk=record_id).first()


def partner_active(*, code: str) -> Partner | None:
    """The active partner of this code, or None."""
    return Partner.objects.filter(code=code, is_active=True).first()


def receipt_of(record: ActivityRecord) -> str:
    """`quantity × factor (version) = grams, capped to …, because …` in the request's language."""
    factor = record.factor
    behaviour = behaviour_name(record.behaviour)
    text = _("%(quantity)s × %(factor)s per %(unit)s (methodology v%(version)s) = %(gross)s") % {
        "quantity": quantity_text(record.quantity),
        "unit": record.behaviour.get_unit_display(),
        "factor": grams(factor.carbon_mg_per_unit),
        "version": factor.version.number,
        "gross": grams(record.gross_carbon_mg),
    }
    if record.status == RecordStatus.HELD:
        return text + _(", under review: %(reason)s") % {"reason": record.get_hold_reason_display()}
    if record.status == RecordStatus.REJECTED:
        return text + _(", not credited: rejected after review")
    if record.status == RecordStatus.DUPLICATE:
        return text + _(
            ", not credited again: another source's report of the same %(behaviour)s holds the credit"
        ) % {"behaviour": behaviour}
    if record.capped_by:
        cap = {
            CapKind.EVENT: factor.event_cap_mg,
            CapKind.DAY: factor.daily_cap_mg,
            CapKind.MONTH: factor.monthly_cap_mg,
        }[CapKind(record.capped_by)]
        reason = {
            CapKind.EVENT: _("the cap per record of %(cap)s was applied"),
            CapKind.DAY: _("the daily cap of %(cap)s for %(behaviour)s was reached"),
            CapKind.MONTH: _("the monthly cap of %(cap)s for %(behaviour)s was reached"),
        }[CapKind(record.capped_by)] % {"cap": grams(cap or 0), "behaviour": behaviour}
        if record.capped_at_merge_mg:
            reason = _(
                "%(reason)s once two accounts were merged (%(capped)s taken off then; coins already "
                "earned were kept)"
            ) % {"reason": reason, "capped": grams(record.capped_at_merge_mg)}
        return text + _(", capped to %(credited)s, because %(reason)s") % {
            "credited": grams(record.credited_carbon_mg),
            "reason": reason,
        }
    return text


def partner_links_of(*, user: User) -> QuerySet[PartnerCustomerLink]:
    return PartnerCustomerLink.objects.filter(user=user).select_related("partner").order_by("-id")


def methodology_today(*, day: datetime.date | None = None) -> list[tuple[Behaviour, object]]:
    """The behaviours with the factor in effect on the day (today by default), for the app's explainer."""
    day = day or local_day_of(timezone.now())
    methodology = methodology_load()
    result = []
    for behaviour in methodology.behaviours_by_code.values():
        factor = methodology.factor_for(behaviour.id, day)
        if factor is not None:
            result.append((behaviour, factor))
    return result


def records_credited_on(*, user_id: int, day: datetime.date) -> QuerySet[ActivityRecord]:
    """The records behind a person's `DailyCarbon` row for a day: what a settlement can list as its basis.

    Records approved from review carry `approved_at`; those approved after the day was settled are
    the ones the next settlement picks up (`credited_at` later than the previous settlement).
    """
    return ActivityRecord.objects.filter(
        user_id=user_id, local_day=day, status=RecordStatus.CREDITED
    ).order_by("credited_at", "id")


def behaviour_days_of(
    *, user_id: int, since: datetime.date | None = None, until: datetime.date | None = None
) -> QuerySet[BehaviourDay]:
    """Per behaviour and day: quantity, records, held and credited carbon — badges and reports read this."""
    rows = (
        BehaviourDay.objects.filter(user_id=user_id)
        .select_related("behaviour")
        .order_by("day", "behaviour_id")
    )
    if since is not None:
        rows = rows.filter(day__gte=since)
    if until is not None:
        rows = rows.filter(day__lte=until)
    return rows
