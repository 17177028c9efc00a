"""The dates the API takes: one range, one field per shape, one message.

A day, a moment or a month read from a request (body, query or path) must fall between the first
of January of the platform's first year (`API_DATES_FIRST_YEAR`) and the last day of the year
`API_DATES_YEARS_AHEAD` years from now. Outside it a request is refused with `validation_failed`
and a message naming the range: a year 9999 (whose next day or month does not exist) or year 1
would otherwise reach date arithmetic and the database and answer 500.

Every input serializer takes its dates through `DateField` / `DateTimeField` below, every
`YYYY-MM` or `YYYY` text (a path's month, a report's label) through `month_from_text` /
`year_from_text`, and the merchant console's forms through `validate_day`. The rules of a domain
(a step day in the sync window, a report month that has begun) come after, in its own words.
"""

from __future__ import annotations

import datetime
import re

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.schema import MONTH_PATTERN

_MONTH = re.compile(r"(\d{4})-(\d{2})", re.ASCII)
_YEAR = re.compile(r"\d{4}", re.ASCII)


def date_bounds() -> tuple[datetime.date, datetime.date]:
    """The first and last day a request may name."""
    last_year = timezone.localdate().year + settings.API_DATES_YEARS_AHEAD
    return datetime.date(settings.API_DATES_FIRST_YEAR, 1, 1), datetime.date(last_year, 12, 31)


def _out_of_range() -> serializers.ValidationError:
    earliest, latest = date_bounds()
    message = _("Give a date from %(earliest)s to %(latest)s.") % {
        "earliest": earliest.isoformat(),
        "latest": latest.isoformat(),
    }
    return serializers.ValidationError(message, code="date_out_of_range")


def check_day(day: datetime.date) -> datetime.date:
    earliest, latest = date_bounds()
    if not earliest <= day <= latest:
        raise _out_of_range()
    return day


def validate_day(value: datetime.date) -> None:
    """The same range as a validator of Django's forms (the merchant console's report and offer)."""
    if isinstance(value, datetime.datetime):
        value = (timezone.localtime(value) if timezone.is_aware(value) else value).date()
    try:
        check_day(value)
    except serializers.ValidationError as error:
        raise DjangoValidationError(str(error.detail[0]), code="date_out_of_range") from None


class DateField(serializers.DateField):
    """DRF's `DateField`, held to the API's range of dates."""

    def to_internal_value(self, value: object) -> datetime.date:
        return check_day(super().to_internal_value(value))


class DateTimeField(serializers.DateTimeField):
    """DRF's `DateTimeField`, held to the API's range of dates (its local day)."""

    def to_internal_value(self, value: object) -> datetime.datetime:
        # DRF has already moved the moment into the current time zone (refusing one that overflows
        # there): its date is the local day. A naive moment in year 1 overflows on its way there.
        try:
            moment = super().to_internal_value(value)
        except OverflowError:
            raise _out_of_range() from None
        check_day(moment.date())
        return moment


@extend_schema_field({"type": "string", "pattern": MONTH_PATTERN})
class MonthField(serializers.CharField):
    """A `YYYY-MM` month inside the API's range, as its first day (`month_from_text`)."""

    def to_internal_value(self, data: object) -> datetime.date:
        text = super().to_internal_value(data)
        try:
            return month_from_text(text, field=self.field_name)
        except serializers.ValidationError as error:
            raise serializers.ValidationError(error.detail[self.field_name]) from None


def month_from_text(text: str, *, field: str = "month") -> datetime.date:
    """The first day of a `YYYY-MM` month inside the API's range, or `validation_failed` naming `field`."""
    match = _MONTH.fullmatch(text or "")
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise serializers.ValidationError({field: [_("Give the month as YYYY-MM.")]})
    year, month = int(match.group(1)), int(match.group(2))
    earliest, latest = date_bounds()
    if not (earliest.year, earliest.month) <= (year, month) <= (latest.year, latest.month):
        raise serializers.ValidationError({field: _out_of_range().detail})
    return datetime.date(year, month, 1)


def year_from_text(text: str, *, field: str = "year") -> int:
    """A `YYYY` year inside the API's range, or `validation_failed` naming `field`."""
    if _YEAR.fullmatch(text or "") is None:
        raise serializers.ValidationError({field: [_("Give the year as YYYY.")]})
    earliest, latest = date_bounds()
    if not earliest.year <= int(text) <= latest.year:
        raise serializers.ValidationError({field: _out_of_range().detail})
    return int(text)
