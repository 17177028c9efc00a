"""Carbon coins: wallets on a double-entry ledger, settlement, expiry, donations.

The ledger is three tables. `LedgerAccount` is anything that can hold coins (a person's wallet,
the issuance account that mints them, a merchant's clearing account, a welfare project, the expiry
sink). `LedgerTransaction` is one movement, with a kind, a reference to its cause and a unique
idempotency key. `LedgerEntry` rows are its legs: signed amounts that sum to zero per transaction.

Entries and transactions are append-only; in PostgreSQL, triggers refuse UPDATE and DELETE and
check that each transaction's entries sum to zero (migration 0002). `LedgerAccount.balance` is a
cache of the sum of the account's entries, kept in step by the services in the same database
transaction and checked by `manage.py ledger_audit`.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class LedgerAccountKind(models.TextChoices):
    WALLET = "wallet", _("Wallet")
    ISSUANCE = "issuance", _("Issuance")
    MERCHANT_CLEARING = "merchant_clearing", _("Merchant clearing")
    WELFARE_PROJECT = "welfare_project", _("Welfare project")
    EXPIRY_SINK = "expiry_sink", _("Expired coins")
    CHALLENGE_SPONSOR = "challenge_sponsor", _("Challenge sponsor's budget")


class LedgerAccount(models.Model):
    """An account of the ledger; `owner_id` is the user id, merchant id or project id of its kind.

    Rewards does not import merchants, and the ledger outlives erased people, so owners are plain
    integers rather than foreign keys. Issuance and the expiry sink have no owner.
    """

    kind = models.CharField(max_length=32, choices=LedgerAccountKind.choices)
    owner_id = models.BigIntegerField(null=True, blank=True)
    # A cache of the sum of this account's entries; only the services change it.
    balance = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "owner_id"], name="one_ledger_account_per_owner"),
            models.UniqueConstraint(
                fields=["kind"], condition=Q(owner_id__isnull=True), name="one_ownerless_account_per_kind"
            ),
            # Issuance is where coins come from: its balance is minus everything minted.
            models.CheckConstraint(
                condition=Q(balance__gte=0) | Q(kind=LedgerAccountKind.ISSUANCE),
                name="ledger_balance_never_negative",
            ),
            models.CheckConstraint(
                condition=Q(owner_id__isnull=True, kind__in=["issuance", "expiry_sink"])
                | Q(
                    owner_id__isnull=False,
                    kind__in=["wallet", "merchant_clearing", "welfare_project", "challenge_sponsor"],
                ),
                name="ledger_account_owner_matches_kind",
            ),
        ]
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")

    def __str__(self) -> str:
        return f"{self.kind}:{self.owner_id}" if self.owner_id is not None else self.kind

    @property
    def is_wallet(self) -> bool:
        return self.kind == LedgerAccountKind.WALLET


class LedgerTransactionKind(models.TextChoices):
    SETTLEMENT = "settlement", _("Settlement")
    REDEMPTION = "redemption", _("Redemption")
    COUPON_REFUND = "coupon_refund", _("Coupon refund")
    DONATION = "donation", _("Donation")
    EXPIRY = "expiry", _("Expiry")
    ACCOUNT_MERGE = "account_merge", _("Accounts merged")
    CORRECTION = "correction", _("Correction")
    ISSUANCE = "issuance", _("Issuance")
    SPONSOR_FUNDING = "sponsor_funding", _("Challenge budget funded")
    CHALLENGE_REWARD = "challenge_reward", _("Team challenge reward")
    PEER_STATEMENT = "peer_statement", _("Statement from another platform")


class AppendOnlyQuerySet(models.QuerySet):
    """Ledger rows are history: a mistake is corrected by a compensating transaction."""

    def update(self, **kwargs: Any) -> int:
        raise TypeError(f"{self.model.__name__} rows are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError(f"{self.model.__name__} rows are append-only")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError(f"{type(self).__name__} rows are append-only")


class LedgerTransaction(AppendOnlyModel):
    """One movement of coins: two or more entries summing to zero."""

    kind = models.CharField(max_length=32, choices=LedgerTransactionKind.choices)
    # What caused it, e.g. "settlement:2026-11-23", "coupon:<public id>", "donation:<public id>".
    reference = models.CharField(max_length=200)
    # Unique by a constraint rather than `unique=True`: the field option also builds a second,
    # pattern-matching index that every transaction would write and no look-up uses (keys are
    # only ever compared whole).
    idempotency_key = models.CharField(max_length=200)
    memo = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="ledger_transaction_idempotency_key")
        ]
        indexes = [models.Index(fields=["kind", "reference"], name="ledger_transaction_reference")]
        verbose_name = _("ledger transaction")
        verbose_name_plural = _("ledger transactions")

    def __str__(self) -> str:
        return f"{self.kind} {self.reference}"


class LedgerEntry(AppendOnlyModel):
    """One leg of a transaction: a signed amount of whole coins on one account."""

    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    # Looked up through the (account, -id) history index below; a second index would only slow inserts.
    account = models.ForeignKey(
        LedgerAccount, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    amount = models.BigIntegerField()

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="ledger_entry_not_zero")]
        indexes = [models.Index(fields=["account", "-id"], name="ledger_entry_account_history")]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount:+d}"


class CoinLot(models.Model):
    """Coins credited to a wallet together, and how many of them are left to spend or expire.

    Debits consume lots soonest-expiring first (`rewards.ledger.lots`), so the sum of
    `remaining_amount` over a wallet's lots equals its balance (the audit checks it). The expiry job
    empties lots whose day has come.
    """

    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="coin_lots")
    # Never looked up by transaction in bulk: no index, so settlement inserts stay cheap.
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="coin_lots", db_index=False
    )
    earned_on = models.DateField()
    expires_on = models.DateField()
    amount = models.BigIntegerField()
    remaining_amount = models.BigIntegerField()
    # Set by the daily job when the lot is within the reminder window, so the app can warn once.
    reminder_raised_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="coin_lot_amount_positive"),
            models.CheckConstraint(
                condition=Q(remaining_amount__gte=0, remaining_amount__lte=models.F("amount")),
                name="coin_lot_remaining_within_amount",
            ),
        ]
        # Only unspent lots are ever read on the hot paths, and a person earns a lot a night for
        # years: a debit walks a wallet's unspent lots in expiry order and the wallet read sums them
        # through `coin_lot_unspent`, the daily expiry job finds the lots due through
        # `coin_lot_expiring`; neither grows with the spent lots of the past.
        indexes = [
            models.Index(
                fields=["expires_on"], condition=Q(remaining_amount__gt=0), name="coin_lot_expiring"
            ),
            models.Index(
                fields=["account", "expires_on", "id"],
                condition=Q(remaining_amount__gt=0),
                name="coin_lot_unspent",
            ),
        ]
        verbose_name = _("coin lot")
        verbose_name_plural = _("coin lots")

    def __str__(self) -> str:
        return f"{self.remaining_amount}/{self.amount} until {self.expires_on}"


class CoinRate(models.Model):
    """How many milligrams of CO2e make one coin, from a local day on (versioned, never edited)."""

    valid_from = models.DateField(unique=True)
    carbon_mg_per_coin = models.BigIntegerField()
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(carbon_mg_per_coin__gt=0), name="coin_rate_positive"),
        ]
        verbose_name = _("coin rate")
        verbose_name_plural = _("coin rates")

    def __str__(self) -> str:
        return f"{self.carbon_mg_per_coin} mg/coin from {self.valid_from}"

    def clean(self) -> None:
        # A settled day keeps the rate it was settled at: new versions start tomorrow at the earliest.
        if self.valid_from is not None and self.valid_from <= timezone.localdate():
            raise ValidationError({"valid_from": _("A new coin rate can only start from tomorrow on.")})


class SettlementRunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class SettlementRun(models.Model):
    """One settlement of one local day; chunks commit as they go and a rerun resumes.

    Round 0 is the night's settlement of the day. Carbon credited on or before the day after it
    succeeded (a late review approval) waits for the next night, unless an operator settles it on
    purpose: that is round 1, 2, … of the same day, started by them (`started_by`).
    """

    day = models.DateField()
    round = models.PositiveSmallIntegerField(default=0)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The operator who asked for this round; empty for the nightly settlement.",
    )
    status = models.CharField(max_length=16, choices=SettlementRunStatus.choices)
    carbon_mg_per_coin = models.BigIntegerField()
    accounts_settled = models.BigIntegerField(default=0)
    carbon_mg_settled = models.BigIntegerField(default=0)
    coins_minted = models.BigIntegerField(default=0)
    chunks_committed = models.IntegerField(default=0)
    attempts = models.IntegerField(default=0)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-day", "-round"]
        constraints = [
            models.UniqueConstraint(fields=["day", "round"], name="one_settlement_run_per_day_and_round")
        ]
        verbose_name = _("settlement run")
        verbose_name_plural = _("settlement runs")

    def __str__(self) -> str:
        owed = f" round {self.round}" if self.round else ""
        return f"settlement {self.day}{owed} ({self.status})"

    @property
    def carbon_grams_settled(self) -> float:
        return self.carbon_mg_settled / 1000


class Settlement(models.Model):
    """A person's coins for one settlement run (a day's round): the key that makes it exactly-once.

    `carbon_days` lists the local days whose carbon it converted (the day itself and any earlier
    day approved late from the review queue), so the wallet history can point to the activity records.
    """

    user_id = models.BigIntegerField()
    day = models.DateField()
    # Settlements are looked up by person (the unique index below), never in bulk by run or transaction.
    run = models.ForeignKey(
        SettlementRun, on_delete=models.PROTECT, related_name="settlements", db_index=False
    )
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="settlements", db_index=False
    )
    carbon_mg = models.BigIntegerField()
    coins = models.BigIntegerField()
    carbon_days = models.JSONField(default=list)

    class Meta:
        constraints = [
            # The run names the day's round (0 the night's, then each operator's settlement of
            # what was owed): a person is settled once per round.
            models.UniqueConstraint(
                fields=["user_id", "day", "run"], name="one_settlement_per_person_and_run"
            ),
            models.CheckConstraint(condition=Q(coins__gt=0), name="settlement_coins_positive"),
        ]
        verbose_name = _("settlement")
        verbose_name_plural = _("settlements")

    def __str__(self) -> str:
        return f"{self.user_id}@{self.day}: {self.coins}"


class BackfillSettlement(models.Model):
    """Coins an operator's history back-fill minted for one person's back-filled day, at that day's rate.

    Back-filled days are settled by the back-fill itself (`rewards.services.backfill`), not by the
    nightly run: this is their record, as `Settlement` is the nightly run's. The lot it credited
    was earned on `day` and expires as that day's coins do.
    """

    user_id = models.BigIntegerField()
    day = models.DateField()
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="backfill_settlements", db_index=False
    )
    carbon_mg = models.BigIntegerField()
    coins = models.BigIntegerField()
    carbon_mg_per_coin = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "day", "transaction"], name="one_backfill_settlement_per_day_and_chunk"
            ),
            models.CheckConstraint(condition=Q(coins__gt=0), name="backfill_settlement_coins_positive"),
        ]
        verbose_name = _("back-fill settlement")
        verbose_name_plural = _("back-fill settlements")

    def __str__(self) -> str:
        return f"{self.user_id}@{self.day}: {self.coins} (back-fill)"


class StatementMint(models.Model):
    """Coins minted for a statement another platform signed, under that platform's coin policy.

    A statement is minted in rounds: round 1 at import, for the carbon it counted then; a later
    round each night that carbon was handed back to it (a report of ours it matched was rejected),
    for what it counts beyond the rounds before. Each round settles its carbon whole: a remainder
    short of a coin is not carried, and a round that buys no whole coin mints nothing (no ledger
    transaction) but still settles its carbon. One round per number and statement (its key); the
    ledger transaction's idempotency key is the statement's and round's
    (`peer_statement:<peer>:<jti>`, then `…:<round>`): a round mints once however it is reached.
    """

    statement = models.ForeignKey(
        "activities.PeerStatement", on_delete=models.PROTECT, related_name="mints", db_index=False
    )
    round = models.PositiveSmallIntegerField(_("round"), default=1)
    transaction = models.ForeignKey(
        LedgerTransaction,
        on_delete=models.PROTECT,
        related_name="statement_mints",
        db_index=False,
        null=True,
        blank=True,
    )
    carbon_mg = models.BigIntegerField()
    coin_share_percent = models.PositiveSmallIntegerField()
    carbon_mg_per_coin = models.BigIntegerField()
    coins = models.BigIntegerField()
    minted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["statement", "round"], name="one_statement_mint_per_round"),
            models.CheckConstraint(condition=Q(round__gte=1), name="statement_mint_round_from_one"),
            # Round 1 may settle nothing (everything the statement listed was held here at import).
            models.CheckConstraint(
                condition=Q(carbon_mg__gt=0) | Q(round=1, carbon_mg=0), name="statement_mint_carbon_settled"
            ),
            # Coins move through a ledger transaction; a round that buys no whole coin has none.
            models.CheckConstraint(
                condition=Q(coins__gt=0, transaction__isnull=False) | Q(coins=0, transaction__isnull=True),
                name="statement_mint_coins_with_transaction",
            ),
        ]
        verbose_name = _("coins for an imported statement")
        verbose_name_plural = _("coins for imported statements")

    def __str__(self) -> str:
        return f"{self.statement_id} round {self.round}: {self.coins}"


class WelfareProject(models.Model):
    """A public-welfare project people donate coins to (planting trees, protecting a wetland …)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(_("title"), max_length=120)
    description = models.TextField(_("description"))
    image = models.ImageField(_("image"), upload_to="welfare_projects/", blank=True)
    goal_coins = models.BigIntegerField(_("goal in coins"))
    is_open = models.BooleanField(_("open for donations"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(goal_coins__gt=0), name="welfare_goal_positive")]
        verbose_name = _("welfare project")
        verbose_name_plural = _("welfare projects")

    def __str__(self) -> str:
        return self.title


class Donation(models.Model):
    """Coins a person gave to a project; the ledger transaction is the record of truth."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="donations"
    )
    project = models.ForeignKey(WelfareProject, on_delete=models.PROTECT, related_name="donations")
    transaction = models.OneToOneField(LedgerTransaction, on_delete=models.PROTECT, related_name="donation")
    amount = models.BigIntegerField()
    # The name printed on the certificate, fixed when the donation is made.
    donor_name = models.CharField(max_length=80)
    idempotency_key = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="one_donation_per_request"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="donation_amount_positive"),
        ]
        # The hourly badge run's donations since a moment.
        indexes = [models.Index(fields=["created_at"], name="donation_created")]
        verbose_name = _("donation")
        verbose_name_plural = _("donations")

    def __str__(self) -> str:
        return f"{self.amount} → {self.project_id}"


# --- Leaderboards ---------------------------------------------------------------------------------


class LeaderboardPeriod(models.TextChoices):
    TODAY = "today", _("Today")
    WEEK = "week", _("This week")
    MONTH = "month", _("This month")
    ALL_TIME = "all_time", _("All time")


class LeaderboardBuild(models.Model):
    """One build of one board (a period kind and its first day); its id is the board's version.

    Readers use the latest finished build of a board; a rebuild writes a new build's entries beside
    the old ones, then deletes the old ones, so a board is never seen half-built.
    """

    period = models.CharField(max_length=16, choices=LeaderboardPeriod.choices)
    period_start = models.DateField()
    # The last local day whose carbon the build counts (today's board: today, credited so far).
    through_day = models.DateField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    people = models.BigIntegerField(default=0)
    duration_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["period", "period_start", "-id"], name="leaderboard_build_latest")]
        verbose_name = _("leaderboard build")
        verbose_name_plural = _("leaderboard builds")

    def __str__(self) -> str:
        return f"{self.period} {self.period_start} #{self.pk}"


class LeaderboardEntry(models.Model):
    """A person's place on one build of a board: city rank, district rank, score.

    Derived data, rebuilt set-based from `DailyCarbon` (one INSERT … SELECT with ROW_NUMBER()).
    Plain integer columns, no foreign keys: the table is millions of rows written in bulk. On
    PostgreSQL each build is a partition of its own (migration 0010): written without indexes,
    indexed once, attached; dropped whole when a newer build replaces it. The `id` is only a
    sequence number there (a partitioned table's primary key would have to include the build).
    """

    build_id = models.BigIntegerField()
    user_id = models.BigIntegerField()
    district_id = models.BigIntegerField(null=True)
    carbon_mg = models.BigIntegerField()
    city_rank = models.BigIntegerField()
    district_rank = models.BigIntegerField(null=True)

    class Meta:
        # One full index (a person's place, and friends'); the tops are read through partial
        # indexes of the first 50 only, so a rebuild maintains one index over millions of rows.
        constraints = [
            models.UniqueConstraint(fields=["build_id", "user_id"], name="leaderboard_person"),
            models.UniqueConstraint(
                fields=["build_id", "city_rank"], condition=Q(city_rank__lte=50), name="leaderboard_city_top"
            ),
        ]
        indexes = [
            models.Index(
                fields=["build_id", "district_id", "district_rank"],
                condition=Q(district_rank__lte=50),
                name="leaderboard_district_top",
            )
        ]
        verbose_name = _("leaderboard entry")
        verbose_name_plural = _("leaderboard entries")

    def __str__(self) -> str:
        return f"#{self.city_rank} {self.user_id}"


# --- Ratings --------------------------------------------------------------------------------------


class RatingLevel(models.TextChoices):
    DARK_GREEN = "dark_green", _("Dark green")
    MEDIUM_GREEN = "medium_green", _("Medium green")
    LIGHT_GREEN = "light_green", _("Light green")


class RatingThresholds(models.Model):
    """The thresholds of the monthly rating; the latest row is in force (older rows are history)."""

    dark_green_top_percent = models.PositiveSmallIntegerField(
        _("dark green: top percent"),
        default=10,
        # xgettext:no-python-format
        help_text=_("The top N % of active accounts."),
    )
    medium_green_next_percent = models.PositiveSmallIntegerField(
        _("medium green: next percent"), default=30, help_text=_("The next N % after the dark greens.")
    )
    light_green_minimum_mg = models.PositiveBigIntegerField(
        _("light green: minimum carbon (mg)"),
        default=1,
        help_text=_("Anyone else who reduced at least this much in the month."),
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(dark_green_top_percent__lte=100)
                & Q(medium_green_next_percent__lte=100 - F("dark_green_top_percent")),
                name="rating_percents_within_100",
            ),
            models.CheckConstraint(
                condition=Q(light_green_minimum_mg__gte=1), name="rating_minimum_positive"
            ),
        ]
        verbose_name = _("rating thresholds")
        verbose_name_plural = _("rating thresholds")

    def __str__(self) -> str:
        return f"top {self.dark_green_top_percent}% / next {self.medium_green_next_percent}%"


class RatingRun(models.Model):
    """One rating of one month, with the thresholds it used; a rerun of the month replaces its ratings."""

    month = models.DateField(unique=True)
    # The last day counted: a run before the month is over is provisional; the one after it, final.
    through_day = models.DateField()
    dark_green_top_percent = models.PositiveSmallIntegerField()
    medium_green_next_percent = models.PositiveSmallIntegerField()
    light_green_minimum_mg = models.BigIntegerField()
    rated = models.BigIntegerField(default=0)
    dark_green = models.BigIntegerField(default=0)
    medium_green = models.BigIntegerField(default=0)
    light_green = models.BigIntegerField(default=0)
    finished_at = models.DateTimeField()

    class Meta:
        ordering = ["-month"]
        verbose_name = _("rating run")
        verbose_name_plural = _("rating runs")

    def __str__(self) -> str:
        return f"ratings {self.month:%Y-%m}"

    @property
    def is_final(self) -> bool:
        next_month = (self.month.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
        return self.through_day >= next_month - datetime.timedelta(days=1)


class MonthlyRating(models.Model):
    """A person's rating for one month: level, carbon reduced, and where it placed them."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    month = models.DateField()
    level = models.CharField(max_length=16, choices=RatingLevel.choices)
    carbon_mg = models.BigIntegerField()
    city_rank = models.BigIntegerField()
    # The share of active accounts that reduced more, in basis points (0 = nobody did).
    share_above_bp = models.IntegerField()

    class Meta:
        ordering = ["-month"]
        constraints = [models.UniqueConstraint(fields=["user", "month"], name="one_rating_per_person_month")]
        indexes = [models.Index(fields=["month", "level", "city_rank"], name="rating_month_level")]
        verbose_name = _("monthly rating")
        verbose_name_plural = _("monthly ratings")

    def __str__(self) -> str:
        return f"{self.user_id}@{self.month:%Y-%m}: {self.level}"

    @property
    def is_ambassador(self) -> bool:
        return self.level == RatingLevel.DARK_GREEN


# --- Badges ---------------------------------------------------------------------------------------


class Badge(models.Model):
    """A badge: which rule of the registry (rewards.gamification.badges) awards it, with what parameters."""

    key = models.SlugField(max_length=40, unique=True)
    rule = models.CharField(_("rule"), max_length=40)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    name = models.CharField(_("name"), max_length=64)
    name_en = models.CharField(_("English name"), max_length=64)
    description = models.CharField(_("description"), max_length=200, blank=True)
    description_en = models.CharField(_("English description"), max_length=200, blank=True)
    sort_order = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(_("awarded"), default=True)
    # The latest refresh of the people's progress (`ProgressRefresh`) whose changes the full run has
    # looked at for this badge: the next full run looks at the people changed since (and donations
    # and ratings made final since a day before it began). None for a badge not looked at yet (new,
    # or its rule or parameters changed), which the next full run looks at for everyone.
    looked_through_refresh = models.BigIntegerField(
        _("looked through progress refresh"), null=True, blank=True
    )

    class Meta:
        ordering = ["sort_order", "key"]
        verbose_name = _("badge")
        verbose_name_plural = _("badges")

    def __str__(self) -> str:
        return self.key


class BadgeAward(models.Model):
    """A badge a person earned; the unique key makes the award job safe to run any number of times."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    badge = models.ForeignKey(Badge, on_delete=models.PROTECT, related_name="awards", db_index=False)
    awarded_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["badge", "user"], name="one_award_per_person_badge")]
        verbose_name = _("badge award")
        verbose_name_plural = _("badge awards")

    def __str__(self) -> str:
        return f"{self.user_id}:{self.badge_id}"


class ProgressRefresh(models.Model):
    """One refresh of the people's progress (`rewards.gamification.progress`): the days it counted
    (through `through_day`) and the people whose progress it changed, its chunks' totals as they
    commit; `finished_at` when the last of them has. Refreshes run one at a time; their ids, in
    order, say which people changed since a badge's last look."""

    through_day = models.DateField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    days_counted = models.BigIntegerField()
    people_changed = models.BigIntegerField()
    people_recounted = models.BigIntegerField()

    class Meta:
        ordering = ["-id"]
        verbose_name = _("progress refresh")
        verbose_name_plural = _("progress refreshes")

    def __str__(self) -> str:
        return f"progress through {self.through_day} (#{self.pk})"


class BadgeProgress(models.Model):
    """A person's progress towards the badges, as the last refresh that changed it left it
    (`refresh_number`, `rewards.gamification.progress`): carbon credited in all, the latest run of
    consecutive local days with credited carbon and the longest. It is what the person's days have
    counted (`DailyCarbon.counted_carbon_mg`). Reading a person's progress adds their days after that
    latest run (`statements.PROGRESS`), so it costs those days, not the history; the all-time board
    ranks the carbon of everyone's progress."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    carbon_mg = models.BigIntegerField()
    # The latest run of consecutive local days with credited carbon: its first and last day.
    run_start = models.DateField()
    run_end = models.DateField()
    longest_days = models.PositiveIntegerField()
    # The `ProgressRefresh` that last changed it, which says through which day and when (no foreign
    # key: the refreshes are the platform's, the progress each person's).
    refresh_number = models.BigIntegerField(db_default=0, db_index=True)

    class Meta:
        verbose_name = _("badge progress")
        verbose_name_plural = _("badge progress")

    def __str__(self) -> str:
        return f"{self.user_id} after refresh {self.refresh_number}: longest {self.longest_days}"


# --- The green credit profile ---------------------------------------------------------------------


class CreditProfileConsent(models.Model):
    """A person lets one partner bank read their green credit profile; revoking closes the row."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    partner = models.ForeignKey("activities.Partner", on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-granted_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "partner"],
                condition=Q(revoked_at__isnull=True),
                name="one_active_credit_consent_per_partner",
            ),
        ]
        verbose_name = _("credit profile consent")
        verbose_name_plural = _("credit profile consents")

    def __str__(self) -> str:
        return f"{self.user_id}→{self.partner_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class CreditProfileAccess(models.Model):
    """Every fetch of a profile by a partner, disclosed or refused; the person sees them all."""

    class Outcome(models.TextChoices):
        DISCLOSED = "disclosed", _("Disclosed")
        REFUSED = "refused", _("Refused: no consent")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+")
    partner = models.ForeignKey("activities.Partner", on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    partner_request_id = models.CharField(max_length=100)
    accessed_at = models.DateTimeField()

    class Meta:
        ordering = ["-accessed_at", "-id"]
        indexes = [models.Index(fields=["user", "-accessed_at"], name="credit_access_person")]
        verbose_name = _("credit profile access")
        verbose_name_plural = _("credit profile accesses")

    def __str__(self) -> str:
        return f"{self.partner_id}→{self.user_id} {self.outcome}"


# --- Groups and team challenges (rewards.groups) ---------------------------------------------------

from rewards.groups.models import (  # noqa: E402, F401 - the app's models, defined beside their services
    ChallengePayout,
    ChallengeReward,
    ChallengeSponsor,
    ChallengeStatus,
    ChallengeTarget,
    Group,
    GroupBoardBuild,
    GroupBoardEntry,
    GroupKind,
    GroupMemberBoardEntry,
    GroupMembership,
    GroupRole,
    GroupStatus,
    TeamChallenge,
)


class ChunkedRun(models.Model):
    """One run of a nightly job split into person-id ranges that any number of workers share.

    `key` names the run (`settlement:2026-11-20:0`, `expiry:2026-11-20`): starting it twice finds
    the same run. The run is finished by whichever chunk's commit brings `chunks_done` to
    `chunks_total` (docs/scaling.md, "Work that spreads over workers").

    `followers` are the tasks to send once the run is finished (serialized Celery signatures; a
    settlement's rebuilds, or what the dashboard's press chains after it), kept here rather than in
    the chunks' messages so that a finished run whose followers could not be sent (the broker down
    at that moment) is found and sent by the next catch-up; `followers_sent_at` says they were.
    """

    job = models.CharField(max_length=32)
    key = models.CharField(max_length=96)
    chunks_total = models.IntegerField()
    chunks_done = models.IntegerField(default=0)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    followers = models.JSONField(null=True, blank=True)
    followers_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key"], name="one_chunked_run_per_key")]
        verbose_name = _("chunked run")
        verbose_name_plural = _("chunked runs")

    def __str__(self) -> str:
        return f"{self.key} ({self.chunks_done}/{self.chunks_total})"


class RunChunk(models.Model):
    """One person-id range (lower exclusive, upper inclusive) of a chunked run, done once."""

    run = models.ForeignKey(ChunkedRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.IntegerField()
    lower = models.BigIntegerField()
    upper = models.BigIntegerField()
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="one_chunk_per_run_and_index")]
        verbose_name = _("run chunk")
        verbose_name_plural = _("run chunks")

    def __str__(self) -> str:
        return f"{self.run.key} #{self.index} ({self.lower}, {self.upper}]"
