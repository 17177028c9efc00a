"""The methodology as the capture paths need it: which factor is in effect for a behaviour on a day."""

from __future__ import annotations

import bisect
import datetime
import hashlib
import string
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from activities.capture_rules import CLOCK_SKEW
from activities.models import Behaviour, Factor, Unit
from core.local_time import local_day_of

DEFAULT_MAX_DAILY_STEPS = 60_000


def methodology_first_open_day(now: datetime.datetime | None = None) -> datetime.date:
    """The first local day a methodology version may still be prepared for (edited, or moved to).

    A version whose first day is before it may already price credited records: capture accepts a
    record up to CLOCK_SKEW ahead of now, so a minute before midnight tomorrow's version is in use.
    Editing it then would change what those records' receipts say they were credited by.
    """
    return local_day_of((now or timezone.now()) + CLOCK_SKEW) + datetime.timedelta(days=1)


def methodology_version_in_effect(
    effective_from: datetime.date, now: datetime.datetime | None = None
) -> bool:
    """A version from this day on may already have priced records: it is history, read-only."""
    return effective_from < methodology_first_open_day(now)


def max_daily_steps() -> int:
    """More steps than this in one local day are held for review (a setting, 60,000 by default)."""
    return int(getattr(settings, "ACTIVITIES_MAX_DAILY_STEPS", DEFAULT_MAX_DAILY_STEPS))


@dataclass(frozen=True, slots=True)
class FactorInEffect:
    id: int
    behaviour_id: int
    version_number: int
    effective_from: datetime.date
    carbon_mg_per_unit: int
    daily_cap_mg: int | None
    monthly_cap_mg: int | None
    event_cap_mg: int | None
    sources: frozenset[str]
    review_above_daily_quantity: int | None
    minimum_payment_fen: int | None = None
    instance_fields: tuple[str, ...] = ()
    instance_time_tolerance_seconds: int | None = None
    source_precedence: tuple[str, ...] = ()

    def source_rank(self, source: str) -> int:
        """Lower is preferred; sources the precedence does not list come after those it lists."""
        return (
            self.source_precedence.index(source)
            if source in self.source_precedence
            else len(self.source_precedence)
        )


@dataclass(slots=True)
class Methodology:
    """Every behaviour and every version of its factor, loaded in two queries."""

    behaviours_by_code: dict[str, Behaviour]
    behaviours_by_id: dict[int, Behaviour]
    _days: dict[int, list[datetime.date]] = field(default_factory=dict)
    _factors: dict[int, list[FactorInEffect]] = field(default_factory=dict)

    def factor_for(self, behaviour_id: int, day: datetime.date) -> FactorInEffect | None:
        days = self._days.get(behaviour_id)
        if not days:
            return None
        position = bisect.bisect_right(days, day) - 1
        return self._factors[behaviour_id][position] if position >= 0 else None

    def factors_of(self, behaviour_id: int) -> tuple[FactorInEffect, ...]:
        """Every version of a behaviour's factor, oldest first (each in effect until the next one's
        `effective_from`); none for a behaviour without a factor."""
        return tuple(self._factors.get(behaviour_id, ()))

    def all_factors(self) -> Iterator[FactorInEffect]:
        """Every version of every behaviour's factor."""
        for factors in self._factors.values():
            yield from factors

    def review_threshold(self, behaviour: Behaviour, factor: FactorInEffect) -> int | None:
        if factor.review_above_daily_quantity is not None:
            return factor.review_above_daily_quantity
        if behaviour.unit == Unit.STEP:
            return max_daily_steps()
        return None


def methodology_load() -> Methodology:
    behaviours = list(Behaviour.objects.all())
    methodology = Methodology(
        behaviours_by_code={behaviour.code: behaviour for behaviour in behaviours},
        behaviours_by_id={behaviour.id: behaviour for behaviour in behaviours},
    )
    factors = Factor.objects.select_related("version").order_by("behaviour_id", "version__effective_from")
    for factor in factors:
        methodology._days.setdefault(factor.behaviour_id, []).append(factor.version.effective_from)
        methodology._factors.setdefault(factor.behaviour_id, []).append(factor_in_effect(factor))
    return methodology


def factor_in_effect(factor: Factor) -> FactorInEffect:
    return FactorInEffect(
        id=factor.id,
        behaviour_id=factor.behaviour_id,
        version_number=factor.version.number,
        effective_from=factor.version.effective_from,
        carbon_mg_per_unit=factor.carbon_mg_per_unit,
        daily_cap_mg=factor.daily_cap_mg,
        monthly_cap_mg=factor.monthly_cap_mg,
        event_cap_mg=factor.event_cap_mg,
        sources=frozenset(factor.sources or []),
        review_above_daily_quantity=factor.review_above_daily_quantity,
        minimum_payment_fen=factor.minimum_payment_fen,
        instance_fields=tuple(factor.instance_fields or ()),
        instance_time_tolerance_seconds=factor.instance_time_tolerance_seconds or None,
        source_precedence=tuple(factor.source_precedence or ()),
    )


# --- One instance across sources -----------------------------------------------------------------

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
INSTANCE_SEPARATOR = "\x1f"
# Values are compared with surrounding spaces removed and ASCII letters in upper case: exactly what
# the bulk import's SQL does (`translate(btrim(value, ' '), …)`), whatever the server's locale.
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
# An instance value: printable text of at most this many characters (longer values are refused).
MAX_INSTANCE_VALUE_LENGTH = 100


def instance_value(value: str) -> str:
    return value.strip(" ").translate(_ASCII_UPPER)


def instance_identity(
    factor: FactorInEffect, instance: dict[str, str] | None, occurred_at: datetime.datetime
) -> tuple[str, int] | None:
    """Which real-world instance a record reports: (key, time bucket), or None when it names none.

    The key is the SHA-256 (hex) of the factor's `instance_fields` values, in the declared order,
    joined by the unit separator; a record lacking one of them names no instance and counts on its
    own. With a time tolerance T the bucket is ⌊seconds since the epoch / T⌋, so two reports within
    T of each other fall into the same or neighbouring buckets (capture looks at both neighbours
    and compares the times); without one it is 0. The bulk import computes the same in SQL
    (`sql_statements.bulk_import.import_plain_lines_type`), and a parity test keeps them equal.
    """
    if not factor.instance_fields or not instance:
        return None
    values = []
    for name in factor.instance_fields:
        value = instance.get(name)
        normalized = instance_value(value) if isinstance(value, str) else ""
        if not normalized:
            return None
        values.append(normalized)
    key = hashlib.sha256(INSTANCE_SEPARATOR.join(values).encode()).hexdigest()
    tolerance = factor.instance_time_tolerance_seconds
    bucket = (occurred_at - EPOCH) // datetime.timedelta(seconds=tolerance) if tolerance else 0
    return key, bucket
