"""Low-carbon behaviour turned into grams of CO2e avoided.

The activities helper owns this module; `DailyCarbon` is the contract with `rewards`:
one row per person and local day with the carbon credited (after caps, excluding records held
for review) and how much of it settlement has already turned into coins.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class DailyCarbon(models.Model):
    """Per person and local day (Asia/Shanghai): carbon credited and carbon settled, in milligrams.

    Capture adds to `credited_carbon_mg` with conditional set-based updates; settlement adds to
    `settled_carbon_mg`. A record approved from review after its day was settled raises
    `credited_carbon_mg` again, and the next settlement picks up the difference.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="daily_carbon")
    day = models.DateField()
    credited_carbon_mg = models.BigIntegerField(default=0)
    settled_carbon_mg = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "day"], name="one_daily_carbon_per_person_and_day"),
            models.CheckConstraint(
                condition=Q(settled_carbon_mg__lte=F("credited_carbon_mg")),
                name="settled_never_exceeds_credited",
            ),
            models.CheckConstraint(condition=Q(settled_carbon_mg__gte=0), name="settled_not_negative"),
        ]
        indexes = [
            models.Index(
                fields=["day"],
                condition=Q(credited_carbon_mg__gt=F("settled_carbon_mg")),
                name="daily_carbon_unsettled",
            ),
        ]
        verbose_name = _("daily carbon")
        verbose_name_plural = _("daily carbon")

    def __str__(self) -> str:
        return f"{self.user_id}@{self.day}"
