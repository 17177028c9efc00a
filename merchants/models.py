"""Merchants, their reward catalog, coupons and verification at the counter.

Money-like state lives here too: an offer's `stock_left` and a person's redemption count per
offer only ever change through conditional updates in `merchants/services.py`, and check
constraints keep them from going negative or past their limits.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import District


class MerchantCategory(models.TextChoices):
    FOOD_AND_DRINK = "food_and_drink", _("Food and drink")
    TRANSPORT = "transport", _("Transport")
    GROCERIES = "groceries", _("Groceries")
    RETAIL = "retail", _("Retail")
    SERVICES = "services", _("Services")
    CULTURE_AND_LEISURE = "culture_and_leisure", _("Culture and leisure")


class Merchant(models.Model):
    """A business that offers coupons for coins. Applies, then an operator approves or rejects it."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for review")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=80)
    category = models.CharField(_("category"), max_length=32, choices=MerchantCategory.choices)
    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="merchants")
    licence_number = models.CharField(_("business licence number"), max_length=32, unique=True)
    contact_name = models.CharField(_("contact name"), max_length=40)
    contact_phone = models.CharField(_("contact phone"), max_length=20)
    address = models.CharField(_("address"), max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    applied_at = models.DateTimeField(auto_now_add=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_note = models.CharField(_("review note"), max_length=200, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["status", "applied_at"], name="merchant_status_applied")]
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")

    def __str__(self) -> str:
        return self.name

    @property
    def is_approved(self) -> bool:
        return self.status == self.Status.APPROVED


class MerchantStaff(models.Model):
    """A person who works for a merchant. A person works for at most one merchant."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        CLERK = "clerk", _("Clerk")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="staff")
    # One merchant per person keeps "which merchant am I acting for" unambiguous in every request.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="merchant_staff"
    )
    role = models.CharField(max_length=8, choices=Role.choices)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["merchant", "added_at"]
        verbose_name = _("merchant staff member")
        verbose_name_plural = _("merchant staff")

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, {self.merchant})"

    @property
    def is_owner(self) -> bool:
        return self.role == self.Role.OWNER


# What an owner may set on an offer, the same wherever it is set (the API, the console, the admin).
OFFER_NUMBER_BOUNDS: dict[str, tuple[int, int]] = {
    "price_coins": (1, 1_000_000),
    "total_stock": (0, 10_000_000),
    "limit_per_person": (1, 1000),
    "coupon_valid_days": (1, 366),
}


def bounded(name: str) -> list:
    """The validators of an offer's number `name`: within its `OFFER_NUMBER_BOUNDS`."""
    lowest, highest = OFFER_NUMBER_BOUNDS[name]
    return [MinValueValidator(lowest), MaxValueValidator(highest)]


class Offer(models.Model):
    """What coins buy: a coupon type with a price, a stock, a per-person limit and a sale window."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PENDING_REVIEW = "pending_review", _("Waiting for review")
        LIVE = "live", _("Live")
        PAUSED = "paused", _("Paused")
        ENDED = "ended", _("Ended")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="offers")
    title = models.CharField(_("title"), max_length=80)
    description = models.TextField(_("description"), max_length=2000, blank=True)
    image = models.ImageField(upload_to="offers/", blank=True)
    thumbnail = models.ImageField(upload_to="offers/thumbnails/", blank=True)
    category = models.CharField(_("category"), max_length=32, choices=MerchantCategory.choices)
    price_coins = models.PositiveIntegerField(_("price in coins"), validators=bounded("price_coins"))
    total_stock = models.PositiveIntegerField(_("total stock"), validators=bounded("total_stock"))
    stock_left = models.PositiveIntegerField(_("stock left"))
    limit_per_person = models.PositiveIntegerField(
        _("limit per person"), default=1, validators=bounded("limit_per_person")
    )
    sale_starts_at = models.DateTimeField(_("sale starts at"))
    sale_ends_at = models.DateTimeField(_("sale ends at"))
    coupon_valid_days = models.PositiveIntegerField(
        _("coupon valid for (days)"), default=30, validators=bounded("coupon_valid_days")
    )
    # Empty means valid in every district.
    districts = models.ManyToManyField(District, blank=True, related_name="offers")
    refunds_on_expiry = models.BooleanField(
        _("refund coins when a coupon expires unused"),
        default=False,
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # An approved offer that the owner paused comes back live without a new review,
    # unless its content changed since the review.
    is_reviewed = models.BooleanField(default=False)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_note = models.CharField(_("review note"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(price_coins__gt=0), name="offer_price_positive"),
            models.CheckConstraint(
                condition=Q(stock_left__lte=F("total_stock")), name="offer_stock_le_total"
            ),
            models.CheckConstraint(condition=Q(limit_per_person__gt=0), name="offer_limit_positive"),
            models.CheckConstraint(condition=Q(coupon_valid_days__gt=0), name="offer_validity_positive"),
            models.CheckConstraint(
                condition=Q(sale_ends_at__gt=F("sale_starts_at")), name="offer_sale_window_ordered"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "category"], name="offer_status_category"),
            models.Index(fields=["merchant", "status"], name="offer_merchant_status"),
        ]
        verbose_name = _("offer")
        verbose_name_plural = _("offers")

    def __str__(self) -> str:
        return self.title


class OfferRedemptionCount(models.Model):
    """How many coupons of one offer one person holds: the per-person limit, enforced by the database."""

    # Found through the unique (offer, user) index: no index of its own to write on every redemption.
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="+", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    redeemed_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["offer", "user"], name="one_redemption_count_per_offer_person"),
        ]

    def __str__(self) -> str:
        return f"{self.offer_id}:{self.user_id}={self.redeemed_count}"


class Coupon(models.Model):
    """What a redemption buys: one use at the issuing merchant, until `valid_until`.

    `user` becomes NULL when the person erases their account: the coupon stays for the
    merchant's books and the ledger, anonymous.
    """

    class Status(models.TextChoices):
        ISSUED = "issued", _("Ready to use")
        VERIFIED = "verified", _("Used")
        EXPIRED = "expired", _("Expired")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Unique by a constraint (Meta) rather than `unique=True`, which would also build a
    # pattern-matching index every redemption writes and no look-up uses.
    code = models.CharField(max_length=16)
    # Every redemption writes a coupon, and each index is written with it: the merchant and the
    # person are found through the composite indexes below, the clerk through a partial one.
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="coupons")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="coupons", db_index=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="coupons",
        db_index=False,
    )
    # What was bought, as the offer named it at purchase, like the price: the owner may rename
    # the offer later, and the holder and the clerk still see what was paid for.
    title = models.CharField(_("title at purchase"), max_length=80)
    price_coins = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ISSUED)
    issued_at = models.DateTimeField()
    valid_until = models.DateTimeField()
    # The offer's refund promise as it stood at purchase, like the price and the validity: what
    # the holder paid for, whatever the owner changes on the offer later.
    refunds_on_expiry = models.BooleanField(
        _("refund coins when a coupon expires unused"), default=False, db_default=False
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    expired_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    # The client's Idempotency-Key, with a fingerprint of what it asked for.
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-issued_at"]
        constraints = [
            models.UniqueConstraint(fields=["code"], name="coupon_code"),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="one_coupon_per_person_idempotency_key",
            ),
            models.CheckConstraint(
                condition=~Q(status="verified") | Q(verified_at__isnull=False),
                name="coupon_verified_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "issued_at"], name="coupon_user_issued"),
            models.Index(fields=["merchant", "offer", "status"], name="coupon_merchant_offer_status"),
            models.Index(
                fields=["valid_until"], condition=Q(status="issued"), name="coupon_issued_valid_until"
            ),
            # Empty until a clerk verifies: an issued coupon adds nothing to it.
            models.Index(
                fields=["verified_by"], condition=Q(verified_by__isnull=False), name="coupon_verified_by"
            ),
            # The night's refunds: only coupons expired, promised a refund, still held and not refunded
            # yet, so the scan stays as small as what is due whatever the history holds.
            models.Index(
                fields=["id"],
                condition=Q(
                    status="expired", refunds_on_expiry=True, refunded_at__isnull=True, user__isnull=False
                ),
                name="coupon_refund_due",
            ),
        ]
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")

    def __str__(self) -> str:
        return self.code

    @property
    def current_status(self) -> str:
        """The status as the holder and the clerk should see it now: a coupon past its validity is
        expired even before the daily job records it."""
        if self.status == self.Status.ISSUED and self.valid_until <= timezone.now():
            return self.Status.EXPIRED
        return self.status

    @property
    def display_code(self) -> str:
        """The code in groups of four, easier to read aloud and type at the counter."""
        return "-".join(self.code[index : index + 4] for index in range(0, len(self.code), 4))
