"""Operators look at the ledger here (read-only: history never changes), follow settlement runs,
manage coin rates (new versions only) and welfare projects.

Money never moves from this admin except through `rewards` services and tasks.
"""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core import admin as core_admin
from rewards.models import (
    Badge,
    BadgeAward,
    ChunkedRun,
    CoinLot,
    CoinRate,
    CreditProfileAccess,
    CreditProfileConsent,
    Donation,
    LeaderboardBuild,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    MonthlyRating,
    ProgressRefresh,
    RatingRun,
    RatingThresholds,
    Settlement,
    SettlementRun,
    StatementMint,
    WelfareProject,
)
from rewards.selectors import settlement_owed, welfare_projects

logger = logging.getLogger(__name__)


class ReadOnlyAdmin(core_admin.ReadOnlyAdmin):
    """History: visible, searchable, never edited or deleted here."""

    # Counting millions of ledger rows on every page is slow and useless.
    show_full_result_count = False


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    fields = ("account", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "owner_id", "balance", "created_at")
    list_filter = ("kind",)
    search_fields = ("=owner_id", "=id")
    ordering = ("-id",)


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "reference", "idempotency_key", "created_at")
    list_filter = ("kind",)
    search_fields = ("reference", "=idempotency_key", "=id")
    date_hierarchy = "created_at"
    ordering = ("-id",)
    inlines = [LedgerEntryInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "transaction", "account", "amount")
    list_filter = ("account__kind", "transaction__kind")
    search_fields = ("=account__owner_id", "=transaction__id", "transaction__reference")
    list_select_related = ("transaction", "account")
    ordering = ("-id",)


@admin.register(CoinLot)
class CoinLotAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "account",
        "earned_on",
        "expires_on",
        "amount",
        "remaining_amount",
        "reminder_raised_at",
    )
    list_filter = ("expires_on",)
    search_fields = ("=account__owner_id",)
    list_select_related = ("account",)
    ordering = ("-id",)


@admin.register(CoinRate)
class CoinRateAdmin(core_admin.ModelAdmin):
    """A new rate is a new version from a day on; versions already written are never edited."""

    list_display = ("valid_from", "carbon_mg_per_coin", "grams_per_coin", "note", "created_at")
    ordering = ("-valid_from",)

    @admin.display(description=_("grams per coin"))
    def grams_per_coin(self, rate: CoinRate) -> str:
        return f"{rate.carbon_mg_per_coin / 1000:g}"

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(SettlementRun)
class SettlementRunAdmin(ReadOnlyAdmin):
    list_display = (
        "day",
        "round",
        "status",
        "accounts_settled",
        "grams_settled",
        "coins_minted",
        "duration",
        "chunks_committed",
        "attempts",
        "started_at",
        "finished_at",
        "started_by",
    )
    list_filter = ("status",)
    list_select_related = ("started_by",)
    date_hierarchy = "day"
    readonly_fields = [field.name for field in SettlementRun._meta.fields]
    actions = ["resume", "settle_owed"]

    @admin.display(description=_("grams"), ordering="carbon_mg_settled")
    def grams_settled(self, run: SettlementRun) -> str:
        return f"{run.carbon_mg_settled / 1000:,.1f}"

    @admin.display(description=_("duration"), ordering="duration_seconds")
    def duration(self, run: SettlementRun) -> str:
        return "—" if run.duration_seconds is None else f"{run.duration_seconds:.1f} s"

    def has_start_settlement_permission(self, request: HttpRequest) -> bool:
        # Starting a settlement mints coins: a superuser's, like the dashboard's "Run tonight's jobs
        # now". The operators' view right on runs is a right to read them.
        return request.user.is_superuser

    @admin.action(
        description=_("Resume or repeat the selected runs (settles only who is left)"),
        permissions=["start_settlement"],
    )
    def resume(self, request: HttpRequest, queryset: QuerySet[SettlementRun]) -> None:
        from kombu.exceptions import OperationalError as BrokerUnavailable

        from rewards.tasks import settlement_settle_day

        days = [run.day.isoformat() for run in queryset]
        try:
            # Nothing is written here, so there is no commit to wait for. No result is kept: nobody
            # reads it, and subscribing to it is what would hang on a Redis that is down.
            for day in days:
                settlement_settle_day.apply_async(args=[day], ignore_result=True)
        except BrokerUnavailable:
            self.message_user(
                request,
                _(
                    "The task queue is unreachable: nothing was queued. The settlement of the day that "
                    "ended is caught up by itself once the queue is back; repeat this action then for "
                    "older days."
                ),
                messages.WARNING,
            )
            return
        self.message_user(request, _("Queued: %(days)s") % {"days": ", ".join(days)}, messages.SUCCESS)

    @admin.action(
        description=_("Settle now what the selected days still owe (credited after they were settled)"),
        permissions=["start_settlement"],
    )
    def settle_owed(self, request: HttpRequest, queryset: QuerySet[SettlementRun]) -> None:
        """A new round of each selected day, paid by the settlement service; the run records who asked
        (`started_by`). Days with nothing owed are left alone."""
        from kombu.exceptions import OperationalError as BrokerUnavailable

        from rewards.tasks import settlement_settle_owed

        owed = [settlement_owed(day=day) for day in sorted(set(queryset.values_list("day", flat=True)))]
        queued = [day_owed for day_owed in owed if day_owed.people]
        try:
            for day_owed in queued:
                settlement_settle_owed.apply_async(
                    args=[day_owed.day.isoformat(), request.user.pk], ignore_result=True
                )
        except BrokerUnavailable:
            self.message_user(
                request,
                _(
                    "The task queue is unreachable: nothing was queued. What these days owe is paid by "
                    "the next nightly settlement, or repeat this action once the queue is back."
                ),
                messages.WARNING,
            )
            return
        logger.info(
            "settlement.owed_requested",
            extra={
                "operator": request.user.pk,
                "days": [day_owed.day.isoformat() for day_owed in queued],
                "people": sum(day_owed.people for day_owed in queued),
                "coins": sum(day_owed.coins for day_owed in queued),
            },
        )
        for day_owed in queued:
            self.message_user(
                request,
                _("Queued for %(day)s: %(people)s people, %(grams)s g (%(coins)s coins).")
                % {
                    "day": day_owed.day.isoformat(),
                    "people": day_owed.people,
                    "grams": f"{day_owed.carbon_mg / 1000:,.1f}",
                    "coins": day_owed.coins,
                },
                messages.SUCCESS,
            )
        nothing = [day_owed.day.isoformat() for day_owed in owed if not day_owed.people]
        if nothing:
            self.message_user(
                request, _("Nothing owed on %(days)s.") % {"days": ", ".join(nothing)}, messages.INFO
            )


@admin.register(Settlement)
class SettlementAdmin(ReadOnlyAdmin):
    list_display = ("user_id", "day", "coins", "carbon_mg", "carbon_days", "transaction")
    list_filter = ("day",)
    search_fields = ("=user_id",)
    ordering = ("-id",)


@admin.register(StatementMint)
class StatementMintAdmin(ReadOnlyAdmin):
    list_display = (
        "statement",
        "round",
        "minted_at",
        "coins",
        "carbon_mg",
        "coin_share_percent",
        "carbon_mg_per_coin",
        "transaction",
    )
    search_fields = ("=statement__statement_id",)
    ordering = ("-id",)


@admin.register(WelfareProject)
class WelfareProjectAdmin(core_admin.ModelAdmin):
    list_display = ("title", "goal_coins", "donated", "donor_count", "is_open", "created_at")
    list_filter = ("is_open",)
    search_fields = ("title", "slug", "=public_id")
    prepopulated_fields = {"slug": ("title",)}
    readonly_fields = ("public_id", "created_at")
    actions = ["close", "reopen"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WelfareProject]:
        return welfare_projects()

    @admin.display(description=_("donated coins"), ordering="donated_coins")
    def donated(self, project: WelfareProject) -> int:
        return project.donated_coins

    @admin.display(description=_("donors"), ordering="donors")
    def donor_count(self, project: WelfareProject) -> int:
        return project.donors

    @admin.action(description=_("Close the selected projects to donations"))
    def close(self, request: HttpRequest, queryset: QuerySet[WelfareProject]) -> None:
        closed = WelfareProject.objects.filter(pk__in=queryset.values("pk")).update(is_open=False)
        self.message_user(request, _("Closed: %(count)s") % {"count": closed}, messages.SUCCESS)

    @admin.action(description=_("Reopen the selected projects"))
    def reopen(self, request: HttpRequest, queryset: QuerySet[WelfareProject]) -> None:
        opened = WelfareProject.objects.filter(pk__in=queryset.values("pk")).update(is_open=True)
        self.message_user(request, _("Reopened: %(count)s") % {"count": opened}, messages.SUCCESS)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Donations point at projects: close a project instead.
        return False


@admin.register(Donation)
class DonationAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "project", "amount", "donor_name", "created_at")
    list_filter = ("project",)
    search_fields = ("=public_id", "donor_name", "=user__id")
    list_select_related = ("project",)
    date_hierarchy = "created_at"
    ordering = ("-id",)


# --- Leaderboards, ratings, badges, the green credit profile ----------------------------------


@admin.register(LeaderboardBuild)
class LeaderboardBuildAdmin(ReadOnlyAdmin):
    list_display = ("id", "period", "period_start", "through_day", "people", "duration", "finished_at")
    list_filter = ("period",)
    date_hierarchy = "period_start"
    ordering = ("-id",)
    actions = ["rebuild"]

    @admin.display(description=_("duration"), ordering="duration_seconds")
    def duration(self, build: LeaderboardBuild) -> str:
        return "—" if build.duration_seconds is None else f"{build.duration_seconds:.1f} s"

    @admin.action(description=_("Rebuild the current board of the selected periods now"))
    def rebuild(self, request: HttpRequest, queryset: QuerySet[LeaderboardBuild]) -> None:
        from rewards.gamification.leaderboards import leaderboard_rebuild

        periods = sorted(set(queryset.values_list("period", flat=True)))
        for period in periods:
            leaderboard_rebuild(period=period)
        self.message_user(
            request, _("Rebuilt: %(periods)s") % {"periods": ", ".join(periods)}, messages.SUCCESS
        )


@admin.register(RatingThresholds)
class RatingThresholdsAdmin(core_admin.ModelAdmin):
    """The latest row is in force from the next rating run on; older rows stay as history."""

    list_display = (
        "id",
        "dark_green_top_percent",
        "medium_green_next_percent",
        "light_green_minimum_mg",
        "note",
        "created_at",
    )
    ordering = ("-id",)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # A change is a new row: the thresholds each past month was rated with stay on record.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(RatingRun)
class RatingRunAdmin(ReadOnlyAdmin):
    list_display = (
        "month",
        "through_day",
        "rated",
        "dark_green",
        "medium_green",
        "light_green",
        "dark_green_top_percent",
        "medium_green_next_percent",
        "finished_at",
    )
    ordering = ("-month",)
    actions = ["rerate"]

    @admin.action(description=_("Rate the selected months again with the thresholds in force"))
    def rerate(self, request: HttpRequest, queryset: QuerySet[RatingRun]) -> None:
        from rewards.gamification.ratings import ratings_rate_month

        months = [run.month for run in queryset]
        for run in queryset:
            ratings_rate_month(month=run.month, through_day=run.through_day)
        self.message_user(
            request, _("Rated again: %(months)s") % {"months": ", ".join(f"{m:%Y-%m}" for m in months)}
        )


@admin.register(ProgressRefresh)
class ProgressRefreshAdmin(ReadOnlyAdmin):
    """The refreshes of the people's progress: how many days each counted, for how many people, and
    how many of them it counted again from all their days; of one running, its chunks done so far."""

    list_display = (
        "id",
        "through_day",
        "days_counted",
        "people_changed",
        "people_recounted",
        "chunks",
        "started_at",
        "finished_at",
    )
    ordering = ("-id",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProgressRefresh]:
        from django.db.models import CharField, OuterRef, Subquery, Value
        from django.db.models.functions import Cast, Concat

        run = ChunkedRun.objects.filter(key=Concat(Value("progress:"), Cast(OuterRef("pk"), CharField())))
        return (
            super()
            .get_queryset(request)
            .annotate(
                run_chunks_done=Subquery(run.values("chunks_done")[:1]),
                run_chunks_total=Subquery(run.values("chunks_total")[:1]),
            )
        )

    @admin.display(description=_("chunks done"))
    def chunks(self, refresh: ProgressRefresh) -> str:
        if refresh.run_chunks_total is None:
            return "—"  # recorded before refreshes ran as chunked runs
        return f"{refresh.run_chunks_done} / {refresh.run_chunks_total}"


@admin.register(MonthlyRating)
class MonthlyRatingAdmin(ReadOnlyAdmin):
    list_display = ("user", "month", "level", "carbon_mg", "city_rank", "share_above_bp")
    list_filter = ("level", "month")
    search_fields = ("=user__id", "user__nickname", "=user__public_id")
    list_select_related = ("user",)
    ordering = ("-month", "city_rank")


@admin.register(Badge)
class BadgeAdmin(core_admin.ModelAdmin):
    list_display = ("key", "name", "name_en", "rule", "parameters", "is_active", "awarded", "sort_order")
    list_filter = ("rule", "is_active")
    search_fields = ("key", "name", "name_en")
    actions = ["award_now"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Badge]:
        from django.db.models import Count

        return super().get_queryset(request).annotate(award_count=Count("awards"))

    @admin.display(description=_("awarded"), ordering="award_count")
    def awarded(self, badge: Badge) -> int:
        return badge.award_count

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        # The key is what the app and the awards refer to: fixed once the badge exists. Which refresh
        # of the progress it last looked through is the award job's to keep.
        return ("key", "looked_through_refresh") if obj is not None else ("looked_through_refresh",)

    def save_model(self, request: HttpRequest, obj: Badge, form, change: bool) -> None:
        from django.core.exceptions import ValidationError

        from rewards.gamification.badges import RULES

        if obj.rule not in RULES:
            raise ValidationError(f"unknown rule {obj.rule!r}; known: {', '.join(RULES)}")
        stored = Badge.objects.filter(pk=obj.pk).values_list("rule", "parameters").first() if change else None
        super().save_model(request, obj, form, change)
        if stored is not None and stored != (obj.rule, obj.parameters):
            # Another rule or threshold: the next full run looks at everyone again.
            Badge.objects.filter(pk=obj.pk).update(looked_through_refresh=None)

    @admin.action(description=_("Award the selected badges now to everyone who qualifies"))
    def award_now(self, request: HttpRequest, queryset: QuerySet[Badge]) -> None:
        from rewards.gamification.badges import badges_award

        awarded = sum(badges_award(badges=queryset).values())
        self.message_user(request, _("Awarded: %(count)s") % {"count": awarded}, messages.SUCCESS)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Awards point at badges: retire a badge by unticking "awarded" instead.
        return False


@admin.register(BadgeAward)
class BadgeAwardAdmin(ReadOnlyAdmin):
    list_display = ("user", "badge", "awarded_at")
    list_filter = ("badge",)
    search_fields = ("=user__id", "user__nickname", "=user__public_id")
    list_select_related = ("user", "badge")
    date_hierarchy = "awarded_at"
    ordering = ("-id",)


@admin.register(CreditProfileConsent)
class CreditProfileConsentAdmin(ReadOnlyAdmin):
    list_display = ("user", "partner", "granted_at", "revoked_at")
    list_filter = ("partner", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("=user__id", "=user__public_id")
    list_select_related = ("user", "partner")
    ordering = ("-id",)


@admin.register(CreditProfileAccess)
class CreditProfileAccessAdmin(ReadOnlyAdmin):
    list_display = ("accessed_at", "partner", "user", "outcome", "partner_request_id")
    list_filter = ("outcome", "partner")
    search_fields = ("=user__id", "=user__public_id", "=partner_request_id")
    list_select_related = ("user", "partner")
    date_hierarchy = "accessed_at"
    ordering = ("-id",)


from rewards.groups import admin as _groups_admin  # noqa: E402, F401 - its pages
