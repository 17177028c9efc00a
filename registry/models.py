"""The reduction registry: lots of pooled, settled reductions, their life on a carbon exchange, the
retirements (offsets) made from them and the proceeds paid back to the people who made them.

Amounts of carbon are integers in milligrams of CO2e, as everywhere; a lot is registered and traded in
whole tonnes (1 t = 10^9 mg), each tonne with a serial number (`QZ-2026-11-000001`).
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from rewards.models import AppendOnlyModel

MG_PER_TONNE = 1_000_000_000


def _salt() -> str:
    return secrets.token_hex(16)


class LotStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    SUBMITTED = "submitted", _("submitted to the exchange")
    REGISTERED = "registered", _("registered")


class ProceedsPolicy(models.TextChoices):
    CONTRIBUTORS = "contributors", _("bonus coins to the contributors, pro rata")
    WELFARE = "welfare", _("to a welfare project")
    BOTH = "both", _("shared between the contributors and a welfare project")


class ReductionLot(models.Model):
    """A lot: the settled, verified reductions of consenting people over a period and a set of
    behaviours (one methodology version each), allocated once, then submitted, registered, sold
    and/or retired in whole tonnes. Counters change only by conditional UPDATEs in the services."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    title = models.CharField(_("title"), max_length=120)
    period_start = models.DateField(_("period from"))
    period_end = models.DateField(_("period to (inclusive)"))
    status = models.CharField(_("status"), max_length=16, choices=LotStatus.choices, default=LotStatus.DRAFT)
    # What happens to the proceeds of a sale (set when the lot is made; the agreement text says it).
    proceeds_policy = models.CharField(
        _("proceeds policy"),
        max_length=16,
        choices=ProceedsPolicy.choices,
        default=ProceedsPolicy.CONTRIBUTORS,
    )
    contributors_share_percent = models.PositiveSmallIntegerField(
        _("contributors' share (%)"),
        default=100,
        help_text=_("With the policy 'both': the contributors' share; the rest goes to the welfare project."),
    )
    welfare_project = models.ForeignKey(
        "rewards.WelfareProject",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("welfare project"),
    )
    # At least one fen: the proceeds are divided by it (a lot of 0 fen per coin could never pay a sale).
    fen_per_coin = models.PositiveIntegerField(
        _("fen per coin"),
        default=10,
        validators=[MinValueValidator(1)],
        help_text=_("What one bonus coin stands for when proceeds are paid."),
    )
    # Filled by the allocation, once.
    allocated_at = models.DateTimeField(_("allocated at"), null=True, blank=True)
    volume_mg = models.BigIntegerField(_("volume (mg CO2e)"), default=0)
    contributor_count = models.BigIntegerField(_("contributors"), default=0)
    tonnes = models.BigIntegerField(_("tonnes"), default=0)
    serial_prefix = models.CharField(_("serial prefix"), max_length=32, blank=True)
    serial_start = models.BigIntegerField(_("first serial number"), null=True, blank=True)
    # A secret of the lot: contributors' pseudonyms are derived with it, so they cannot be linked
    # across lots or to an account id by anyone else.
    pseudonym_salt = models.CharField(max_length=32, default=_salt, editable=False)
    merkle_root = models.CharField(_("Merkle root (SHA-256, hex)"), max_length=64, blank=True)
    # The exchange's side.
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    registered_at = models.DateTimeField(_("registered at"), null=True, blank=True)
    exchange_reference = models.CharField(_("exchange reference"), max_length=100, blank=True)
    sold_tonnes = models.BigIntegerField(_("sold (t)"), default=0)
    retired_tonnes = models.BigIntegerField(_("retired (t)"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The operator's add form that made it (its one-time key): the same form sent twice makes one lot.
    request_key = models.UUIDField(unique=True, null=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(period_end__gte=F("period_start")), name="lot_period_ordered"),
            models.CheckConstraint(
                condition=Q(sold_tonnes__gte=0, retired_tonnes__gte=0)
                & Q(sold_tonnes__lte=F("tonnes") - F("retired_tonnes")),
                name="lot_sold_and_retired_within_tonnes",
            ),
            models.CheckConstraint(
                condition=Q(contributors_share_percent__lte=100), name="lot_share_is_a_percentage"
            ),
            models.CheckConstraint(
                condition=Q(proceeds_policy="contributors") | Q(welfare_project__isnull=False),
                name="lot_welfare_policy_names_a_project",
            ),
            models.CheckConstraint(condition=Q(fen_per_coin__gte=1), name="lot_fen_per_coin_at_least_one"),
        ]
        verbose_name = _("reduction lot")
        verbose_name_plural = _("reduction lots")

    def __str__(self) -> str:
        return self.title

    @property
    def available_tonnes(self) -> int:
        return self.tonnes - self.sold_tonnes - self.retired_tonnes

    def serial(self, offset: int) -> str:
        """The serial number of the lot's tonne `offset` (0-based)."""
        return serial_number(self.serial_prefix, self.serial_start + offset)

    @property
    def serial_first(self) -> str:
        return self.serial(0) if self.tonnes else ""

    @property
    def serial_last(self) -> str:
        return self.serial(self.tonnes - 1) if self.tonnes else ""


def serial_number(prefix: str, number: int) -> str:
    return f"{prefix}-{number:06d}"


class LotBehaviour(models.Model):
    """A behaviour a lot takes, with the one methodology version whose records it takes."""

    lot = models.ForeignKey(ReductionLot, on_delete=models.CASCADE, related_name="behaviours")
    behaviour = models.ForeignKey("activities.Behaviour", on_delete=models.PROTECT, related_name="+")
    methodology_version = models.ForeignKey(
        "activities.MethodologyVersion", on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["lot", "behaviour"], name="one_version_per_lot_behaviour")
        ]
        verbose_name = _("behaviour of a lot")
        verbose_name_plural = _("behaviours of a lot")

    def __str__(self) -> str:
        return f"{self.lot_id}:{self.behaviour_id}@{self.methodology_version_id}"


class LotAllocation(models.Model):
    """The grams of one person, day, behaviour and methodology version that went into a lot.

    The primary key is that quadruple, with no lot in it: those grams are in one lot, ever. Two
    allocations racing for the same key meet at the key's index; the second inserts nothing for it.
    The key is the table's only index (no surrogate id, no second unique index) and the rows are
    narrow: a city's month is written in one statement, and each index and byte costs it.
    """

    pk = models.CompositePrimaryKey("user_id", "day", "behaviour_id", "methodology_version_id")
    # No database foreign key: rows are written by the allocation's one statement for its own lot (as
    # DailyCarbon carries none), so a city's month is not checked row by row by a trigger.
    lot = models.ForeignKey(
        ReductionLot, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    user_id = models.BigIntegerField()
    carbon_mg = models.BigIntegerField()
    day = models.DateField()
    # Ids of behaviours and methodology versions (tens of rows each) in 32 bits: the key is 20 bytes
    # instead of 32. An id past 2^31 would fail the allocation's statement, not wrap.
    behaviour_id = models.IntegerField()
    methodology_version_id = models.IntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(carbon_mg__gt=0), name="allocation_positive"),
        ]
        # No index by lot: a city's month is written in one statement and every index costs it; the
        # lot's rows are read whole (contributions are made from the statement's own RETURNING).
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")

    def __str__(self) -> str:
        return f"{self.lot_id}:{self.user_id}@{self.day}"


class LotContribution(models.Model):
    """One person's share of a lot: a leaf of the lot's Merkle commitment (docs/registry.md).

    `contributor_id` is the person's pseudonym in this lot (what the published list shows).
    """

    lot = models.ForeignKey(
        ReductionLot, on_delete=models.PROTECT, related_name="contributions", db_index=False
    )
    user_id = models.BigIntegerField()
    contributor_id = models.CharField(max_length=32)
    carbon_mg = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["lot", "user_id"], name="one_contribution_per_lot_person"),
            models.UniqueConstraint(fields=["lot", "contributor_id"], name="one_pseudonym_per_lot"),
        ]
        indexes = [models.Index(fields=["user_id"], name="contribution_user")]
        verbose_name = _("contribution")
        verbose_name_plural = _("contributions")

    def __str__(self) -> str:
        return f"{self.lot_id}:{self.contributor_id}"


class SerialCounter(models.Model):
    """The last serial number handed out under a prefix (e.g. `QZ-2026-11`); raised in one statement."""

    prefix = models.CharField(max_length=32, unique=True)
    last_number = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("serial counter")
        verbose_name_plural = _("serial counters")

    def __str__(self) -> str:
        return f"{self.prefix}:{self.last_number}"


class LotExport(models.Model):
    """The package handed to the exchange at submission: the lot as CSV and JSON, and a manifest of
    their SHA-256 digests signed with the platform's Ed25519 key (docs/registry.md verifies it)."""

    lot = models.OneToOneField(ReductionLot, on_delete=models.PROTECT, related_name="export")
    lot_csv = models.TextField()
    lot_json = models.TextField()
    manifest_json = models.TextField()
    signature = models.CharField(max_length=200, help_text="Ed25519 over the manifest's bytes, base64url.")
    key_id = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("export package")
        verbose_name_plural = _("export packages")

    def __str__(self) -> str:
        return f"{self.lot_id}"


class LotSale(models.Model):
    """Tonnes of a lot sold on the exchange: the price, the buyer, the date; its proceeds paid once."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    lot = models.ForeignKey(ReductionLot, on_delete=models.PROTECT, related_name="sales")
    tonnes = models.BigIntegerField(_("tonnes"))
    serial_offset = models.BigIntegerField()
    price_fen_per_tonne = models.BigIntegerField(_("price per tonne (fen)"))
    proceeds_fen = models.BigIntegerField(_("proceeds (fen)"))
    buyer = models.CharField(_("buyer"), max_length=200)
    sold_on = models.DateField(_("sold on"))
    created_at = models.DateTimeField(auto_now_add=True)
    # The operator's submission (the form's one-time key): the form sent again records nothing more.
    request_key = models.UUIDField(unique=True, editable=False)
    # Filled when the proceeds are paid (once): the coins to contributors and to the welfare project.
    proceeds_paid_at = models.DateTimeField(null=True, blank=True)
    contributor_coins = models.BigIntegerField(default=0)
    welfare_coins = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["lot", "serial_offset"]
        constraints = [
            models.CheckConstraint(condition=Q(tonnes__gt=0), name="sale_tonnes_positive"),
            models.CheckConstraint(condition=Q(price_fen_per_tonne__gte=0), name="sale_price_not_negative"),
        ]
        verbose_name = _("sale")
        verbose_name_plural = _("sales")

    def __str__(self) -> str:
        return f"{self.lot_id}: {self.tonnes} t to {self.buyer}"


class LotProceedsShare(models.Model):
    """A contributor's coins from one sale: one row per person and sale (paid once), written by the
    payout's one statement with the sale's ledger transaction."""

    sale = models.ForeignKey(LotSale, on_delete=models.PROTECT, related_name="shares", db_index=False)
    user_id = models.BigIntegerField()
    coins = models.BigIntegerField()
    transaction = models.ForeignKey(
        "rewards.LedgerTransaction", on_delete=models.PROTECT, related_name="+", db_index=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sale", "user_id"], name="one_share_per_sale_person"),
            models.CheckConstraint(condition=Q(coins__gt=0), name="share_positive"),
        ]
        verbose_name = _("proceeds share")
        verbose_name_plural = _("proceeds shares")

    def __str__(self) -> str:
        return f"{self.sale_id}:{self.user_id}:{self.coins}"


class LotRetirement(models.Model):
    """Tonnes of a registered lot retired for good, on someone's behalf: an offset of an event, a
    company's footprint. It has a public page and a certificate."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    lot = models.ForeignKey(ReductionLot, on_delete=models.PROTECT, related_name="retirements")
    tonnes = models.BigIntegerField(_("tonnes"))
    serial_offset = models.BigIntegerField()
    beneficiary = models.CharField(_("on behalf of"), max_length=200)
    reason = models.CharField(_("why"), max_length=500)
    event_name = models.CharField(_("event offset"), max_length=200, blank=True)
    retired_at = models.DateTimeField()
    # The operator's submission (the form's one-time key): the form sent again records nothing more.
    request_key = models.UUIDField(unique=True, editable=False)

    class Meta:
        ordering = ["lot", "serial_offset"]
        constraints = [models.CheckConstraint(condition=Q(tonnes__gt=0), name="retirement_tonnes_positive")]
        verbose_name = _("retirement")
        verbose_name_plural = _("retirements")

    def __str__(self) -> str:
        return f"{self.lot_id}: {self.tonnes} t for {self.beneficiary}"

    @property
    def serial_first(self) -> str:
        return self.lot.serial(self.serial_offset)

    @property
    def serial_last(self) -> str:
        return self.lot.serial(self.serial_offset + self.tonnes - 1)


class LotEventKind(models.TextChoices):
    CREATED = "created", _("created")
    ALLOCATED = "allocated", _("allocated")
    SUBMITTED = "submitted", _("submitted")
    REGISTERED = "registered", _("registered")
    SOLD = "sold", _("sold")
    RETIRED = "retired", _("retired")
    PROCEEDS_PAID = "proceeds_paid", _("proceeds paid")


class LotEvent(AppendOnlyModel):
    """One step of a lot's life, in order: who did it, when, and what it said. Never edited."""

    lot = models.ForeignKey(ReductionLot, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=16, choices=LotEventKind.choices)
    # The operator's user name as it was (the event outlives the account; no key to update).
    actor = models.CharField(max_length=150, blank=True)
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["lot", "id"]
        verbose_name = _("lot event")
        verbose_name_plural = _("lot events")

    def __str__(self) -> str:
        return f"{self.lot_id}:{self.kind}"
