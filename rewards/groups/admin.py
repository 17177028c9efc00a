"""Operators' pages for groups: verification of community, employer and school applications (as
merchants are approved), challenges and their sponsors' budgets (funded through the ledger)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core import admin as core_admin
from core.api.errors import ApplicationError
from rewards.groups import challenges, services
from rewards.groups.models import ChallengeSponsor, Group, GroupMembership, GroupStatus, TeamChallenge


class MembershipInline(admin.TabularInline):
    model = GroupMembership
    fields = ("user", "role", "joined_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Group)
class GroupAdmin(core_admin.ModelAdmin):
    list_display = ("name", "kind", "status", "district", "member_count", "applicant_name", "created_at")
    list_filter = ("status", "kind", "district")
    search_fields = ("name", "applicant_name", "=invite_code", "=public_id")
    readonly_fields = (
        "public_id",
        "kind",
        "status",
        "invite_code",
        "member_count",
        "applicant_name",
        "applicant_proof",
        "verified_at",
        "verified_by",
        "created_at",
    )
    fields = ("name", "description", "district", "verification_note", *readonly_fields)
    inlines = [MembershipInline]
    actions = ["approve", "reject"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people open groups in the app; operators verify them here

    def _review(self, request: HttpRequest, queryset: QuerySet[Group], *, approve: bool) -> None:
        decided = sum(
            services.group_verify(group=group, operator=request.user, approve=approve)
            for group in queryset.filter(status=GroupStatus.PENDING)
        )
        self.message_user(request, _("%(count)d application(s) decided.") % {"count": decided})

    @admin.action(description=_("Verify the selected applications (the groups open)"), permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Group]) -> None:
        self._review(request, queryset, approve=True)

    @admin.action(description=_("Reject the selected applications"), permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Group]) -> None:
        self._review(request, queryset, approve=False)


@admin.register(ChallengeSponsor)
class ChallengeSponsorAdmin(core_admin.ModelAdmin):
    list_display = ("name", "merchant_id", "budget", "created_at")
    search_fields = ("name",)
    actions = ["fund_100", "fund_1000", "fund_10000"]
    # Funding is keyed by the page's one-time key: the same page sent twice funds once.
    action_form = core_admin.OneTimeKeyActionForm

    @admin.display(description=_("budget left (coins)"))
    def budget(self, sponsor: ChallengeSponsor) -> int:
        return challenges.sponsor_balance(sponsor=sponsor)

    def _fund(self, request: HttpRequest, queryset: QuerySet[ChallengeSponsor], amount: int) -> None:
        request_key = core_admin.one_time_key(request)
        if request_key is None:
            self.message_user(request, _("The page was out of date: nothing was funded."), messages.ERROR)
            return
        for sponsor in queryset:
            try:
                challenges.sponsor_fund(
                    sponsor=sponsor, amount=amount, idempotency_key=f"admin:{request_key}"
                )
            except ApplicationError as error:
                self.message_user(request, f"{sponsor}: {error.error.message}", level=messages.ERROR)

    @admin.action(description=_("Fund the selected budgets with 100 coins"), permissions=["change"])
    def fund_100(self, request, queryset) -> None:
        self._fund(request, queryset, 100)

    @admin.action(description=_("Fund the selected budgets with 1,000 coins"), permissions=["change"])
    def fund_1000(self, request, queryset) -> None:
        self._fund(request, queryset, 1000)

    @admin.action(description=_("Fund the selected budgets with 10,000 coins"), permissions=["change"])
    def fund_10000(self, request, queryset) -> None:
        self._fund(request, queryset, 10000)


class TeamChallengeForm(forms.ModelForm):
    """A new challenge's terms are the service's to judge (`challenge_terms_check`): refused here as
    the form's error instead of failing the save. (The admin gives it its model and fields.)"""

    def clean(self) -> dict:
        data = super().clean()
        terms = ("group", "starts_on", "ends_on", "target_value")
        if self.instance.pk is None and all(data.get(name) is not None for name in terms):
            try:
                challenges.challenge_terms_check(**{name: data[name] for name in terms})
            except ApplicationError as refused:
                raise forms.ValidationError(str(refused.error.message)) from None
        return data


@admin.register(TeamChallenge)
class TeamChallengeAdmin(core_admin.ModelAdmin):
    form = TeamChallengeForm
    list_display = (
        "title",
        "group",
        "target_kind",
        "target_value",
        "starts_on",
        "ends_on",
        "status",
        "reward_kind",
        "paid_coins",
        "budget_coins",
    )
    list_filter = ("status", "reward_kind", "target_kind")
    search_fields = ("title", "group__name", "=public_id")
    autocomplete_fields = ("group", "sponsor")
    readonly_fields = ("public_id", "status", "paid_coins", "met_at", "budget_exhausted_at", "created_by")

    def get_readonly_fields(self, request: HttpRequest, obj: TeamChallenge | None = None):
        if obj is None:
            return self.readonly_fields
        # Once set, what a challenge promises does not change under the members' feet.
        return (
            *self.readonly_fields,
            "group",
            "target_kind",
            "target_value",
            "starts_on",
            "reward_kind",
            "sponsor",
            "coins_per_member",
            "welfare_project",
            "donation_coins",
            "budget_coins",
        )

    def save_model(self, request: HttpRequest, obj: TeamChallenge, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = challenges.challenge_create(
            group=obj.group,
            title=obj.title,
            target_kind=obj.target_kind,
            target_value=obj.target_value,
            starts_on=obj.starts_on,
            ends_on=obj.ends_on,
            created_by=request.user,
            reward_kind=obj.reward_kind,
            sponsor=obj.sponsor,
            coins_per_member=obj.coins_per_member,
            welfare_project=obj.welfare_project,
            donation_coins=obj.donation_coins,
            budget_coins=obj.budget_coins,
        )
        obj.pk = created.pk
        obj.refresh_from_db()
