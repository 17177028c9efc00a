"""Who uses the platform: people (bank users and guests), their districts and data-source consents."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class District(models.Model):
    """A district of the city: where a person lives, for district leaderboards and reports."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=64)
    name_en = models.CharField(_("English name"), max_length=64, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("district")
        verbose_name_plural = _("districts")

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person with a carbon account: a bank user, a mini-program user or a guest (tourist).

    `public_id` is what the API shows; the integer id never leaves the server.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    nickname = models.CharField(_("nickname"), max_length=40, blank=True)
    district = models.ForeignKey(
        District, null=True, blank=True, on_delete=models.PROTECT, related_name="residents"
    )
    is_guest = models.BooleanField(
        _("guest"), default=False, help_text=_("Opened without a bank or mini-program identity.")
    )
    shows_on_leaderboards = models.BooleanField(_("shows on leaderboards"), default=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        verbose_name = _("person")
        verbose_name_plural = _("people")

    def __str__(self) -> str:
        return self.nickname or self.username

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None


class DataSource(models.TextChoices):
    """The sources of activity data a person authorizes one by one (PIPL: travel data is sensitive)."""

    PHONE_STEPS = "phone_steps", _("Steps from my phone")
    TRANSIT_CARD = "transit_card", _("Transit card rides")
    BANK_PAYMENTS = "bank_payments", _("Bank payments and e-bills")
    RECYCLING_STATION = "recycling_station", _("Recycling stations")
    CHARGING_OPERATOR = "charging_operator", _("EV charging operators")
    SHARED_MOBILITY = "shared_mobility", _("Shared bicycles")
    ONLINE_SERVICES = "online_services", _("Online services (take-out, bookings, e-invoices)")
    CHARITY = "charity", _("Donation stations (old clothes)")


class DataSourceAuthorization(models.Model):
    """One grant of one data source by one person; revoking closes it, the row stays as history."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="data_source_authorizations")
    source = models.CharField(max_length=32, choices=DataSource.choices)
    granted_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "source"],
                condition=Q(revoked_at__isnull=True),
                name="one_active_authorization_per_source",
            ),
        ]
        indexes = [models.Index(fields=["source", "user"], name="authorization_source_user")]
        verbose_name = _("data source authorization")
        verbose_name_plural = _("data source authorizations")

    def __str__(self) -> str:
        return f"{self.user_id}:{self.source}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
