"""The platform's local time: "a day" is a local day in settings.TIME_ZONE (Asia/Shanghai).

Python reads it here; SQL receives `LOCAL_TZ.key` as a parameter (never a literal in a statement).
"""

from __future__ import annotations

import datetime
import zoneinfo

from django.conf import settings

LOCAL_TZ = zoneinfo.ZoneInfo(settings.TIME_ZONE)


def local_day_of(moment: datetime.datetime) -> datetime.date:
    """The local day a moment falls on."""
    return moment.astimezone(LOCAL_TZ).date()


def local_day_start(day: datetime.date) -> datetime.datetime:
    """The first moment of a local day."""
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=LOCAL_TZ)
