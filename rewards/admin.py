"""Operators look at the ledger here (read-only: history never changes), follow settlement runs,
manage coin rates (new versions only) and welfare projects.

Money never moves from this admin except through `rewards` services and tasks.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from rewards.models import (
    CoinLot,
    CoinRate,
    Donation,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Settlement,
    SettlementRun,
    WelfareProject,
)
from rewards.selectors import welfare_projects


class ReadOnlyAdmin(admin.ModelAdmin):
    """History: visible, searchable, never edited or deleted here."""

    # Counting millions of ledger rows on every page is slow and useless.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


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
class CoinRateAdmin(admin.ModelAdmin):
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
        "status",
        "accounts_settled",
        "grams_settled",
        "coins_minted",
        "duration",
        "chunks_committed",
        "attempts",
        "started_at",
        "finished_at",
    )
    list_filter = ("status",)
    date_hierarchy = "day"
    readonly_fields = [field.name for field in SettlementRun._meta.fields]
    actions = ["resume"]

    @admin.display(description=_("grams"), ordering="carbon_mg_settled")
    def grams_settled(self, run: SettlementRun) -> str:
        return f"{run.carbon_mg_settled / 1000:,.1f}"

    @admin.display(description=_("duration"), ordering="duration_seconds")
    def duration(self, run: SettlementRun) -> str:
        return "—" if run.duration_seconds is None else f"{run.duration_seconds:.1f} s"

    @admin.action(description=_("Resume or repeat the selected runs (settles only who is left)"))
    def resume(self, request: HttpRequest, queryset: QuerySet[SettlementRun]) -> None:
        from rewards.tasks import settlement_settle_day

        days = [run.day.isoformat() for run in queryset]
        for day in days:
            transaction.on_commit(lambda day=day: settlement_settle_day.delay(day))
        self.message_user(request, _("Queued: %(days)s") % {"days": ", ".join(days)}, messages.SUCCESS)


@admin.register(Settlement)
class SettlementAdmin(ReadOnlyAdmin):
    list_display = ("user_id", "day", "coins", "carbon_mg", "carbon_days", "transaction")
    list_filter = ("day",)
    search_fields = ("=user_id",)
    ordering = ("-id",)


@admin.register(WelfareProject)
class WelfareProjectAdmin(admin.ModelAdmin):
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
