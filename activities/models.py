"""Low-carbon behaviour turned into grams of CO2e avoided, explainably.

The methodology (behaviours, versioned factors, caps, allowed sources), partners and their
customer links, activity records with their receipts, the counters caps are applied against,
the review queue, and `DailyCarbon` — the contract with `rewards`: one row per person and local
day with the carbon credited (after caps, excluding records held for review) and how much of it
settlement has already turned into coins.

Amounts of carbon are integer milligrams of CO2e; days are local days in Asia/Shanghai.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from accounts.models import DataSource

# --- Methodology ------------------------------------------------------------------------------


class Unit(models.TextChoices):
    STEP = "step", _("step")
    RIDE = "ride", _("ride")
    KM = "km", _("km")
    PAYMENT = "payment", _("payment")
    DOCUMENT = "document", _("document")
    BOOKING = "booking", _("booking")
    ORDER = "order", _("order")
    KG = "kg", _("kg")


class StandardCategory(models.TextChoices):
    """The seven categories of the group standard T/ACEF 031-2022 (40 behaviours in all)."""

    CLOTHING = "clothing", _("clothing")
    FOOD = "food", _("food")
    HOUSING = "housing", _("housing")
    TRAVEL = "travel", _("travel")
    USE = "use", _("use")
    OFFICE = "office", _("office")
    DIGITAL_FINANCE = "digital_finance", _("digital finance")


class Behaviour(models.Model):
    """A low-carbon behaviour of the catalogue (walking, a bus ride, …). Its numbers live in `Factor`.

    `standard*` say which behaviour of a published standard it is (T/ACEF 031-2022 by default), so
    a statement another platform reads names it in terms both sides share (docs/interop.md).
    """

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=64)
    name_en = models.CharField(_("English name"), max_length=64)
    unit = models.CharField(_("unit"), max_length=16, choices=Unit.choices)
    is_trip = models.BooleanField(
        _("is a trip"), default=False, help_text=_("Trips of one person cannot overlap in time.")
    )
    sort_order = models.PositiveSmallIntegerField(default=0)
    standard = models.CharField(
        _("standard"), max_length=40, blank=True, default="", help_text=_("e.g. T/ACEF 031-2022")
    )
    standard_category = models.CharField(
        _("category in the standard"), max_length=16, choices=StandardCategory.choices, blank=True, default=""
    )
    standard_behaviour = models.CharField(
        _("behaviour in the standard"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("The behaviour as the standard names it, e.g. 公交出行."),
    )

    class Meta:
        ordering = ["sort_order", "code"]
        verbose_name = _("behaviour")
        verbose_name_plural = _("behaviours")

    def __str__(self) -> str:
        return self.code


class MethodologyVersion(models.Model):
    """A complete set of factors that takes effect on a local day. Never edited once in effect.

    A record is credited with the factors of the latest version in effect on the record's local day,
    and keeps a reference to the factor it used, so a later version never changes past credits.
    """

    number = models.PositiveIntegerField(_("version"), unique=True)
    effective_from = models.DateField(_("effective from"), unique=True)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-effective_from"]
        verbose_name = _("methodology version")
        verbose_name_plural = _("methodology versions")

    def __str__(self) -> str:
        return f"v{self.number} ({self.effective_from})"


class Factor(models.Model):
    """One behaviour's numbers in one methodology version: carbon per unit, caps, sources, plausibility."""

    version = models.ForeignKey(MethodologyVersion, on_delete=models.PROTECT, related_name="factors")
    behaviour = models.ForeignKey(Behaviour, on_delete=models.PROTECT, related_name="factors")
    carbon_mg_per_unit = models.PositiveBigIntegerField(_("mg CO2e per unit"))
    daily_cap_mg = models.PositiveBigIntegerField(_("daily cap (mg)"), null=True, blank=True)
    monthly_cap_mg = models.PositiveBigIntegerField(_("monthly cap (mg)"), null=True, blank=True)
    event_cap_mg = models.PositiveBigIntegerField(_("cap per record (mg)"), null=True, blank=True)
    sources = models.JSONField(
        _("allowed data sources"), default=list, help_text=_("Data source codes that may report it.")
    )
    review_above_daily_quantity = models.PositiveIntegerField(
        _("review above quantity per day"),
        null=True,
        blank=True,
        help_text=_("Records beyond this quantity in one day are held for review (implausible)."),
    )
    minimum_payment_fen = models.PositiveIntegerField(
        _("smallest payment counted (fen)"),
        null=True,
        blank=True,
        help_text=_("Payments below this amount are rejected; records must then carry their amount."),
    )
    source_note = models.CharField(_("where the figure comes from"), max_length=200, blank=True)
    # One real-world instance reported by several sources (the bank feed and an online-services
    # partner sending the same e-invoice) is credited once: these fields of a record's `instance`
    # identify it (`methodology.instance_identity`).
    instance_fields = models.JSONField(
        _("fields that identify one instance"),
        default=list,
        blank=True,
        help_text=_(
            "Fields of a record's `instance` that name one real-world instance across sources "
            "(e-invoice: issuer, invoice_number). Empty: every record counts on its own."
        ),
    )
    instance_time_tolerance_seconds = models.PositiveIntegerField(
        _("same instance within (seconds)"),
        null=True,
        blank=True,
        help_text=_(
            "Also compare the time a record occurred: reports this close in time are the same "
            "instance (a transit ride's boarding time). Empty: time does not identify instances."
        ),
    )
    source_precedence = models.JSONField(
        _("source precedence"),
        default=list,
        blank=True,
        help_text=_(
            "Data sources in order of preference when several report the same instance: the credit "
            "moves to a preferred source's report where nothing it stands for changes."
        ),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "behaviour"], name="one_factor_per_version_behaviour"),
        ]
        verbose_name = _("factor")
        verbose_name_plural = _("factors")

    def __str__(self) -> str:
        return f"{self.behaviour_id}@{self.version_id}"


# --- Partners ---------------------------------------------------------------------------------


class SignatureScheme(models.TextChoices):
    """How a partner signs its requests (activities/signing.py); the SM schemes also get signed answers."""

    HMAC_SHA256 = "hmac-sha256", "HMAC-SHA256"
    HMAC_SM3 = "hmac-sm3", "HMAC-SM3"
    SM2_SM3 = "sm2-sm3", _("SM2 signature with SM3 (the partner's public key)")


class Partner(models.Model):
    """A company that pushes activity records through the signed partner API (transit card, bank…)."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    source = models.CharField(_("data source"), max_length=32, choices=DataSource.choices)
    behaviours = models.ManyToManyField(Behaviour, verbose_name=_("allowed behaviours"), related_name="+")
    api_key = models.CharField(_("API key"), max_length=40, unique=True)
    # The signing secret is needed in clear to check signatures, so it is stored encrypted; the
    # admin shows it once when created or rotated. The previous secret stays valid for a grace period.
    signing_secret_ciphertext = models.TextField(editable=False)
    previous_signing_secret_ciphertext = models.TextField(editable=False, blank=True)
    previous_secret_valid_until = models.DateTimeField(null=True, blank=True, editable=False)
    secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    signature_scheme = models.CharField(
        _("signature scheme"),
        max_length=16,
        choices=SignatureScheme.choices,
        default=SignatureScheme.HMAC_SHA256,
    )
    # For SM2: the partner's public key (128 hex digits, x ‖ y) and the signer id it signs with.
    sm2_public_key = models.CharField(_("SM2 public key"), max_length=130, blank=True)
    sm2_signer_id = models.CharField(_("SM2 signer id"), max_length=64, default="1234567812345678")
    # Signatures cover the method and the path (`activities.signing.request_message`). Until this
    # moment the partner may still sign the earlier form without them; null: never.
    legacy_signature_until = models.DateTimeField(
        _("legacy signatures accepted until"),
        null=True,
        blank=True,
        help_text=_(
            "Until then the partner may still sign timestamp, request id and body without the method"
            " and path. Empty: only signatures of the method and path are accepted."
        ),
    )
    # When a legacy signature was last accepted (kept to the minute): whether the partner has moved.
    legacy_signature_seen_at = models.DateTimeField(
        _("legacy signature last used"), null=True, blank=True, editable=False
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("partner")
        verbose_name_plural = _("partners")

    def __str__(self) -> str:
        return self.name

    @property
    def uses_sm(self) -> bool:
        """Signs with an SM scheme: its answers then carry our SM2 signature."""
        return self.signature_scheme in (SignatureScheme.HMAC_SM3, SignatureScheme.SM2_SM3)


class PartnerCustomerLink(models.Model):
    """A partner's customer reference (a transit card number, a bank customer id) linked to a person."""

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="customer_links")
    customer_reference = models.CharField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="partner_links")
    linked_at = models.DateTimeField(auto_now_add=True)
    linked_by_partner = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "customer_reference"], name="one_person_per_customer_reference"
            ),
        ]
        indexes = [models.Index(fields=["user"], name="partner_link_user")]
        verbose_name = _("partner customer link")
        verbose_name_plural = _("partner customer links")

    def __str__(self) -> str:
        return f"{self.partner_id}:{self.customer_reference}"


# --- Records ----------------------------------------------------------------------------------


class RecordStatus(models.TextChoices):
    CREDITED = "credited", _("credited")
    HELD = "held", _("under review")
    REJECTED = "rejected", _("rejected after review")
    # Another source's report of the same instance holds the credit (`ActivityRecord.duplicate_of`).
    DUPLICATE = "duplicate", _("reported by another source too")


class HoldReason(models.TextChoices):
    SUPERHUMAN_STEPS = "superhuman_steps", _("more steps in a day than a person walks")
    TOO_MANY_IN_A_DAY = "too_many_in_a_day", _("more in a day than the behaviour allows")
    OVERLAPPING_TRIP = "overlapping_trip", _("overlaps another trip")
    SHARED_DEVICE = "shared_device", _("the phone is shared by many accounts")


class CapKind(models.TextChoices):
    NONE = "", _("not capped")
    EVENT = "event", _("cap per record")
    DAY = "day", _("daily cap")
    MONTH = "month", _("monthly cap")


class ActivityRecord(models.Model):
    """One reported activity and its receipt: quantity × factor (version) = grams, capped to …, because ….

    Rejected records are never stored (only counted in `RejectionTally`). A held record credits
    nothing until approved; approval applies the caps as they are at that moment.
    """

    # The table grows to tens of millions of rows and every index slows ingest: the foreign keys carry
    # no index of their own; (user, local_day) serves a person's history, a day's records and overlaps.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="activity_records", db_index=False
    )
    behaviour = models.ForeignKey(Behaviour, on_delete=models.PROTECT, related_name="+", db_index=False)
    factor = models.ForeignKey(Factor, on_delete=models.PROTECT, related_name="+", db_index=False)
    source = models.CharField(max_length=32, choices=DataSource.choices)
    partner = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # Unique per source; a partner's own ids are prefixed with its code so two banks never collide.
    external_id = models.CharField(max_length=160)
    quantity = models.DecimalField(max_digits=14, decimal_places=3)
    occurred_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    local_day = models.DateField()
    device_id = models.CharField(max_length=64, blank=True)
    gross_carbon_mg = models.BigIntegerField(_("before caps (mg)"))
    credited_carbon_mg = models.BigIntegerField(_("credited (mg)"), default=0)
    capped_by = models.CharField(max_length=8, choices=CapKind.choices, blank=True, default="")
    # What a merge of two accounts took off this record so the merged person's daily and monthly caps
    # hold (`capped_by` then says which cap). A database default: the set-based inserts leave it out.
    capped_at_merge_mg = models.BigIntegerField(_("capped when accounts were merged (mg)"), db_default=0)
    status = models.CharField(max_length=10, choices=RecordStatus.choices)
    hold_reason = models.CharField(max_length=20, choices=HoldReason.choices, blank=True, default="")
    created_at = models.DateTimeField()
    credited_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    appeal_note = models.TextField(blank=True, default="")
    appealed_at = models.DateTimeField(null=True, blank=True)
    # The instance this record reports, where the methodology identifies instances of its behaviour:
    # a digest of the identifying fields, and the time bucket where time is one of them (0 where it
    # is not; `methodology.instance_identity`). Null for records of other behaviours.
    instance_key = models.CharField(max_length=64, null=True, blank=True)
    instance_bucket = models.BigIntegerField(null=True, blank=True)
    # Set on a second report of an instance: the record that holds the instance's credit.
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates", db_index=False
    )
    # Set on a report of an instance another platform's imported statement already counts here (the
    # instance key of the statement matched): it credits nothing (docs/interop.md).
    imported_duplicate_of = models.ForeignKey(
        "ImportedInstance", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )

    class Meta:
        constraints = [
            # One credited report per instance, person and behaviour: two sources sending the same
            # instance at once cannot both be credited (the second insert conflicts and is rerun).
            # A rejected report holds nothing: a later report of its instance is credited.
            models.UniqueConstraint(
                fields=["user", "behaviour", "instance_key", "instance_bucket"],
                condition=Q(instance_key__isnull=False, duplicate_of__isnull=True) & ~Q(status="rejected"),
                name="one_credited_report_per_instance",
            ),
            # external_id leads: a batch's lookup of its ids stays selective whatever the mix of sources.
            models.UniqueConstraint(
                fields=["external_id", "source"], name="one_record_per_external_id_and_source"
            ),
            models.CheckConstraint(condition=Q(credited_carbon_mg__gte=0), name="record_credit_not_negative"),
            models.CheckConstraint(
                condition=Q(credited_carbon_mg__lte=F("gross_carbon_mg")), name="record_credit_within_gross"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="record_quantity_positive"),
        ]
        indexes = [
            models.Index(fields=["user", "local_day"], name="record_user_day"),
            models.Index(fields=["status", "id"], condition=Q(status="held"), name="record_review_queue"),
            # Only second reports carry it: the reports of one credit, for the person's history.
            models.Index(
                fields=["duplicate_of"], condition=Q(duplicate_of__isnull=False), name="record_duplicate_of"
            ),
        ]
        verbose_name = _("activity record")
        verbose_name_plural = _("activity records")

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class HeldRecord(ActivityRecord):
    """The review queue in the admin: records held by a plausibility rule."""

    class Meta:
        proxy = True
        verbose_name = _("record under review")
        verbose_name_plural = _("review queue")


class ReviewDecision(models.Model):
    """The audit trail of the review queue: who approved or rejected which record, when, and why."""

    class Decision(models.TextChoices):
        APPROVED = "approved", _("approved")
        REJECTED = "rejected", _("rejected")
        APPEALED = "appealed", _("appealed by the person")

    record = models.ForeignKey(ActivityRecord, on_delete=models.CASCADE, related_name="review_decisions")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    credited_carbon_mg = models.BigIntegerField(default=0)
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["-decided_at", "-id"]
        verbose_name = _("review decision")
        verbose_name_plural = _("review decisions")

    def __str__(self) -> str:
        return f"{self.record_id}:{self.decision}"


# --- Counters ---------------------------------------------------------------------------------


# The counters below are derived from activity records, in the statements that store them: their
# keys come from records whose own foreign keys PostgreSQL checks. They carry no database foreign
# keys of their own (Django still cascades and protects): a bulk import writes about one counter row
# per record, and three more deferred checks per record would cost more than the records' own four.
_COUNTER_KEY = {"related_name": "+", "db_index": False, "db_constraint": False}


class BehaviourDay(models.Model):
    """Per person, behaviour and local day: what was reported and credited. Also the daily cap counter.

    Updated in the same statement that stores the records (never read-modify-write). Badges and
    per-behaviour reports read it instead of scanning records.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, **_COUNTER_KEY)
    behaviour = models.ForeignKey(Behaviour, on_delete=models.PROTECT, **_COUNTER_KEY)
    day = models.DateField()
    quantity = models.DecimalField(max_digits=16, decimal_places=3, default=0)
    record_count = models.PositiveIntegerField(default=0)
    held_count = models.PositiveIntegerField(default=0)
    credited_carbon_mg = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "behaviour", "day"], name="one_behaviour_day"),
            models.CheckConstraint(condition=Q(credited_carbon_mg__gte=0), name="behaviour_day_not_negative"),
        ]
        verbose_name = _("behaviour day")
        verbose_name_plural = _("behaviour days")

    def __str__(self) -> str:
        return f"{self.user_id}:{self.behaviour_id}@{self.day}"


class BehaviourMonth(models.Model):
    """Per person, behaviour and month (its first day): the carbon credited, the monthly cap counter."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, **_COUNTER_KEY)
    behaviour = models.ForeignKey(Behaviour, on_delete=models.PROTECT, **_COUNTER_KEY)
    month = models.DateField()
    credited_carbon_mg = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "behaviour", "month"], name="one_behaviour_month"),
            models.CheckConstraint(
                condition=Q(credited_carbon_mg__gte=0), name="behaviour_month_not_negative"
            ),
        ]
        verbose_name = _("behaviour month")
        verbose_name_plural = _("behaviour months")

    def __str__(self) -> str:
        return f"{self.user_id}:{self.behaviour_id}@{self.month:%Y-%m}"


class StepDay(models.Model):
    """The highest cumulative step count a person's phone reported for a local day."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    steps = models.PositiveIntegerField(default=0)
    previous_steps = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="one_step_day")]
        verbose_name = _("step day")
        verbose_name_plural = _("step days")

    def __str__(self) -> str:
        return f"{self.user_id}@{self.day}: {self.steps}"


class DeviceAccount(models.Model):
    """Which accounts a phone has synced steps for: a phone shared by many accounts is suspicious."""

    device_id = models.CharField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device_id", "user"], name="one_device_account")]
        verbose_name = _("device account")
        verbose_name_plural = _("device accounts")

    def __str__(self) -> str:
        return f"{self.device_id}:{self.user_id}"


class RejectionTally(models.Model):
    """How many records were rejected, per source, partner, day and code. Nothing else of them is kept."""

    source = models.CharField(max_length=32, choices=DataSource.choices)
    partner_code = models.CharField(max_length=40, blank=True, default="")
    day = models.DateField()
    code = models.CharField(max_length=40)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "partner_code", "day", "code"], name="one_rejection_tally"
            ),
        ]
        verbose_name = _("rejection count")
        verbose_name_plural = _("rejection counts")

    def __str__(self) -> str:
        return f"{self.day} {self.partner_code or self.source} {self.code}: {self.count}"


class MergeCapCorrection(models.Model):
    """What merging one account into another took off one of the merged person's days.

    Both accounts' credits of a day add up after a merge; the caps hold per person, so what exceeds
    them is taken off the records (`ActivityRecord.capped_at_merge_mg`), the counters and the day's
    credited carbon. Coins already settled for that carbon are kept: `settled_kept_carbon_mg` is the
    carbon of the day that had already become coins beyond what stays credited (the day's settled
    carbon is lowered to its credited carbon, and the ledger is not touched).
    """

    # Plain ids, like the ledger's owners: the rows explain coins and outlive what they point to.
    target_user_id = models.BigIntegerField()
    source_user_id = models.BigIntegerField()
    day = models.DateField()
    capped_carbon_mg = models.BigIntegerField()
    settled_kept_carbon_mg = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["target_user_id", "day", "source_user_id"], name="one_merge_correction_per_day"
            ),
            models.CheckConstraint(condition=Q(capped_carbon_mg__gt=0), name="merge_correction_positive"),
        ]
        verbose_name = _("merge cap correction")
        verbose_name_plural = _("merge cap corrections")

    def __str__(self) -> str:
        return f"{self.source_user_id}→{self.target_user_id}@{self.day}: −{self.capped_carbon_mg}"


class DailyCarbon(models.Model):
    """Per person and local day (Asia/Shanghai): carbon credited and carbon settled, in milligrams.

    Capture adds to `credited_carbon_mg` with conditional set-based updates; settlement adds to
    `settled_carbon_mg`. A record approved from review after its day was settled raises
    `credited_carbon_mg` again, and the next settlement picks up the difference. The same way,
    `counted_carbon_mg` is what the people's progress (rewards' badge progress and all-time board)
    has counted of the day: a day whose credited carbon differs (`uncounted`) is counted by the next
    refresh of the progress, found through its partial index, so a night counts what changed, not
    the history.
    """

    # The unique (user, day) index serves lookups by person; no separate index on the key, and no
    # database foreign key (derived from the records, as the counters above).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="daily_carbon",
        db_index=False,
        db_constraint=False,
    )
    day = models.DateField()
    credited_carbon_mg = models.BigIntegerField(default=0)
    settled_carbon_mg = models.BigIntegerField(default=0)
    counted_carbon_mg = models.BigIntegerField(db_default=0)
    # Whether the progress has yet to count the day as it is: stored, so that the planner's
    # statistics know how few such days there are (a comparison of two columns it cannot estimate).
    uncounted = models.GeneratedField(
        expression=~Q(credited_carbon_mg=F("counted_carbon_mg")),
        output_field=models.BooleanField(),
        db_persist=True,
    )
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
            # A person's carbon not yet settled (the wallet read) without the settled days of years.
            models.Index(
                fields=["user"],
                condition=Q(credited_carbon_mg__gt=F("settled_carbon_mg")),
                name="daily_carbon_unsettled_person",
            ),
            # The days the people's progress has not counted as they are now (a handful a person:
            # today's and any changed late), for its refresh, which walks them by person in chunks.
            models.Index(fields=["user", "day"], condition=Q(uncounted=True), name="daily_carbon_uncounted"),
        ]
        verbose_name = _("daily carbon")
        verbose_name_plural = _("daily carbon")

    def __str__(self) -> str:
        return f"{self.user_id}@{self.day}"


# --- Statements from other platforms ----------------------------------------------------------


class PeerPlatform(models.Model):
    """Another carbon account platform whose signed statements people may bring here (docs/interop.md).

    Registered by an operator with its issuer (the `iss` of its statements), its public keys (a
    JWKS, pasted or fetched from `jwks_url` when a statement names a key we do not hold yet), what
    its statements count in, and whether they mint coins here and at what share of our coin rate.
    """

    name = models.CharField(_("name"), max_length=100)
    issuer = models.CharField(
        _("issuer"), max_length=200, unique=True, help_text=_("The `iss` of its statements, exactly.")
    )
    jwks_url = models.CharField(
        _("JWKS URL"),
        max_length=200,
        blank=True,
        validators=[URLValidator(schemes=["https", "http"])],
        help_text=_("Where its public keys are published (fetched on a new key id)."),
    )
    jwks = models.JSONField(
        _("public keys (JWKS)"), default=dict, blank=True, help_text='{"keys": [{"kty": "OKP", …}]}'
    )
    jwks_fetched_at = models.DateTimeField(_("keys fetched at"), null=True, blank=True, editable=False)
    counts_in_report = models.BooleanField(_("counts in the carbon report"), default=True)
    counts_in_rating = models.BooleanField(_("counts in the monthly rating"), default=False)
    counts_in_credit_profile = models.BooleanField(_("counts in the green credit profile"), default=False)
    mints_coins = models.BooleanField(_("mints carbon coins"), default=False)
    coin_share_percent = models.PositiveSmallIntegerField(
        _("coins at this share of our rate (percent)"),
        default=100,
        help_text=_("Coins minted for an imported statement: its carbon at our coin rate, times this share."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(coin_share_percent__gte=1, coin_share_percent__lte=100),
                name="peer_coin_share_percent",
            ),
        ]
        verbose_name = _("peer platform")
        verbose_name_plural = _("peer platforms")

    def __str__(self) -> str:
        return self.name


class StatementNonce(models.Model):
    """A one-time value the app hands a person to have a peer put into the statement it signs for us."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["nonce"], name="one_statement_nonce")]
        verbose_name = _("statement nonce")
        verbose_name_plural = _("statement nonces")

    def __str__(self) -> str:
        return f"{self.user_id}:{self.created_at:%Y-%m-%d %H:%M}"


class PeerSubject(models.Model):
    """A peer's pseudonymous subject belongs to one person here: its statements never feed two accounts."""

    peer = models.ForeignKey(PeerPlatform, on_delete=models.PROTECT, related_name="+")
    subject = models.CharField(max_length=128)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    linked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["peer", "subject"], name="one_person_per_peer_subject")
        ]
        indexes = [models.Index(fields=["user"], name="peer_subject_user")]
        verbose_name = _("peer subject")
        verbose_name_plural = _("peer subjects")

    def __str__(self) -> str:
        return f"{self.peer_id}:{self.subject}"


class PeerStatement(models.Model):
    """A statement of another platform that a person brought here, verified and imported once.

    Its reductions count where the peer's registration says (report, rating, credit profile), marked
    with the issuer; they never enter `DailyCarbon`, so nightly settlement never mints for them (coins
    come only from the peer's coin policy, once per statement: rewards.services.statements).
    """

    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    peer = models.ForeignKey(PeerPlatform, on_delete=models.PROTECT, related_name="statements")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="peer_statements", db_index=False
    )
    statement_id = models.CharField(_("statement id (jti)"), max_length=128)
    subject = models.CharField(max_length=128)
    nonce = models.OneToOneField(
        StatementNonce, null=True, blank=True, on_delete=models.SET_NULL, related_name="statement"
    )
    month = models.DateField(_("month"), help_text=_("The first day of the calendar month it covers."))
    # What counts here: the statement's total less the carbon of its instances this platform had
    # already credited (`stated_carbon_mg` is the total as signed).
    total_carbon_mg = models.BigIntegerField(_("counted here (mg)"))
    stated_carbon_mg = models.BigIntegerField(_("stated (mg)"), db_default=0)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    imported_at = models.DateTimeField()
    # The compact JWS as presented: anyone can verify it again against the peer's keys.
    token = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["public_id"], name="one_peer_statement_public_id"),
            models.UniqueConstraint(fields=["peer", "statement_id"], name="one_import_per_statement"),
            # One statement per account at the peer and month: a re-issued statement of a month
            # already imported would count it twice.
            models.UniqueConstraint(
                fields=["peer", "subject", "month"], name="one_import_per_peer_and_month"
            ),
            models.CheckConstraint(condition=Q(total_carbon_mg__gte=0), name="peer_statement_not_negative"),
        ]
        indexes = [
            models.Index(fields=["user", "month"], name="peer_statement_user_month"),
            models.Index(fields=["month"], name="peer_statement_month"),
        ]
        ordering = ["-month", "-id"]
        verbose_name = _("imported statement")
        verbose_name_plural = _("imported statements")

    def __str__(self) -> str:
        return f"{self.peer_id}:{self.statement_id}"


class ImportedReduction(models.Model):
    """One behaviour's carbon in an imported statement, as the issuing platform measured it."""

    statement = models.ForeignKey(PeerStatement, on_delete=models.CASCADE, related_name="reductions")
    behaviour = models.CharField(_("the issuer's behaviour code"), max_length=64)
    name = models.CharField(max_length=100, blank=True)
    unit = models.CharField(max_length=16, blank=True)
    quantity = models.DecimalField(max_digits=18, decimal_places=3, null=True, blank=True)
    standard = models.CharField(max_length=40, blank=True)
    standard_category = models.CharField(max_length=16, blank=True)
    standard_behaviour = models.CharField(max_length=64, blank=True)
    methodology_versions = models.JSONField(default=list)
    # What counts here, less the instances already credited here; `stated_carbon_mg` as signed.
    carbon_mg = models.BigIntegerField(_("counted here (mg)"))
    stated_carbon_mg = models.BigIntegerField(_("stated (mg)"), db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["statement", "behaviour"], name="one_imported_behaviour"),
            models.CheckConstraint(condition=Q(carbon_mg__gte=0), name="imported_reduction_not_negative"),
        ]
        verbose_name = _("imported reduction")
        verbose_name_plural = _("imported reductions")

    def __str__(self) -> str:
        return f"{self.statement_id}:{self.behaviour}"


class ImportedInstance(models.Model):
    """One behaviour instance an imported statement lists, under its pairwise instance key.

    The key is the one both platforms compute from the instance they saw (docs/interop.md): it
    matched a report this platform had already credited or held (`credited_record`: then it does not
    count here, unless that report is rejected with no other to credit the instance: see
    `handed_back_from`), or a report that comes later is a second report of it (`imported_duplicate_of`).
    """

    statement = models.ForeignKey(PeerStatement, on_delete=models.CASCADE, related_name="instances")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    behaviour = models.CharField(_("the issuer's behaviour code"), max_length=64)
    key = models.CharField(max_length=64)
    carbon_mg = models.BigIntegerField()
    credited_record = models.ForeignKey(
        ActivityRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # The report of ours it matched, rejected since with no other report of the instance to credit:
    # the statement counts the instance again, and that report cannot be appealed back into holding it.
    handed_back_from = models.ForeignKey(
        ActivityRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["statement", "behaviour", "key"], name="one_imported_instance"),
            models.CheckConstraint(condition=Q(carbon_mg__gt=0), name="imported_instance_positive"),
        ]
        indexes = [
            # A person's later reports look their keys up here.
            models.Index(fields=["user", "key"], name="imported_instance_user_key"),
            # The statements carbon was handed back to (the night's rounds of coins look them up).
            models.Index(
                fields=["statement"],
                condition=Q(handed_back_from__isnull=False),
                name="imported_instance_handed_back",
            ),
        ]
        verbose_name = _("imported instance")
        verbose_name_plural = _("imported instances")

    def __str__(self) -> str:
        return f"{self.statement_id}:{self.key}"
