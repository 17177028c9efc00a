"""The registry's admin: lots from creation to retirement, their exports, sales and proceeds.

Every step goes through the services (one conditional UPDATE, an event appended); nothing is edited
in place or deleted. Operators (operations/operators.py) see everything and run the lifecycle; the
contributions and events are read-only evidence. The allocation's rows (per person, day, behaviour
and version) have the composite primary key the admin cannot show; the invariants read them.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from activities.models import Behaviour, MethodologyVersion
from core import admin as core_admin
from core.admin import ReadOnlyAdmin
from core.api.errors import ApplicationError
from registry import services
from registry.exports import export_zip
from registry.models import (
    LotBehaviour,
    LotContribution,
    LotEvent,
    LotExport,
    LotProceedsShare,
    LotRetirement,
    LotSale,
    ReductionLot,
)


class LotCreateForm(forms.ModelForm):
    behaviours = forms.ModelMultipleChoiceField(
        queryset=Behaviour.objects.order_by("sort_order"), label=_("behaviours")
    )
    methodology_version = forms.ModelChoiceField(
        queryset=MethodologyVersion.objects.order_by("-effective_from"),
        label=_("methodology version"),
        help_text=_("The version whose records the lot takes, for each behaviour."),
    )
    request_key = core_admin.one_time_key_field()

    class Meta:
        model = ReductionLot
        fields = [
            "title",
            "period_start",
            "period_end",
            "proceeds_policy",
            "contributors_share_percent",
            "welfare_project",
            "fen_per_coin",
        ]

    def clean(self) -> dict:
        """What the service would refuse, as the form's error rather than a server error."""
        data = super().clean()
        start, end = data.get("period_start"), data.get("period_end")
        version, behaviours = data.get("methodology_version"), data.get("behaviours") or []
        if start and end and version:
            try:
                services.lot_terms_check(
                    period_start=start, period_end=end, behaviours=[(item, version) for item in behaviours]
                )
            except ApplicationError as error:
                raise forms.ValidationError(str(error.error.message)) from error
        return data


class RegisterForm(forms.Form):
    exchange_reference = forms.CharField(label=_("exchange reference"), max_length=100)


class SellForm(forms.Form):
    request_key = core_admin.one_time_key_field()
    tonnes = forms.IntegerField(label=_("tonnes"), min_value=1)
    price_fen_per_tonne = forms.IntegerField(label=_("price per tonne (fen)"), min_value=0)
    buyer = forms.CharField(label=_("buyer"), max_length=200)
    sold_on = forms.DateField(label=_("sold on"))


class RetireForm(forms.Form):
    request_key = core_admin.one_time_key_field()
    tonnes = forms.IntegerField(label=_("tonnes"), min_value=1)
    beneficiary = forms.CharField(label=_("on behalf of"), max_length=200)
    reason = forms.CharField(label=_("why"), max_length=500)
    event_name = forms.CharField(label=_("event offset"), max_length=200, required=False)


class LotBehaviourInline(admin.TabularInline):
    model = LotBehaviour
    extra = 0
    can_delete = False
    readonly_fields = ["behaviour", "methodology_version"]

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ReductionLot)
class ReductionLotAdmin(core_admin.ModelAdmin):
    list_display = [
        "title",
        "period_start",
        "period_end",
        "status",
        "volume_mg",
        "tonnes",
        "sold_tonnes",
        "retired_tonnes",
        "contributor_count",
    ]
    list_filter = ["status"]
    search_fields = ["title", "exchange_reference"]
    inlines = [LotBehaviourInline]
    actions = ["allocate", "submit"]
    change_form_template = "admin/registry/reductionlot/change_form.html"

    def get_form(self, request: HttpRequest, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = LotCreateForm
            # The lot's own fields; the form adds its behaviours, version and one-time key (the lot's
            # request_key is not editable: the form's names it).
            kwargs["fields"] = LotCreateForm.Meta.fields
        return super().get_form(request, obj, **kwargs)

    def get_inlines(self, request: HttpRequest, obj=None):
        return self.inlines if obj is not None else []

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return []
        return [field.name for field in ReductionLot._meta.fields if field.name != "pseudonym_salt"]

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return [*LotCreateForm.Meta.fields, "behaviours", "methodology_version", "request_key"]
        return self.get_readonly_fields(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ReductionLot, form, change: bool) -> None:
        if change:
            return  # a lot changes only through its steps
        version = form.cleaned_data["methodology_version"]
        lot = services.lot_create(
            title=obj.title,
            period_start=obj.period_start,
            period_end=obj.period_end,
            behaviours=[(behaviour, version) for behaviour in form.cleaned_data["behaviours"]],
            proceeds_policy=obj.proceeds_policy,
            contributors_share_percent=obj.contributors_share_percent,
            welfare_project=obj.welfare_project,
            fen_per_coin=obj.fen_per_coin,
            actor=request.user.get_username(),
            request_key=form.cleaned_data["request_key"],
        )
        obj.pk = lot.pk
        obj.__dict__.update({key: value for key, value in lot.__dict__.items() if not key.startswith("_")})

    def save_related(self, request, form, formsets, change) -> None:
        return  # the service wrote the lot's behaviours

    def _each(self, request: HttpRequest, queryset: QuerySet, step, done: str) -> None:
        for lot in queryset.order_by("pk"):
            try:
                step(lot=lot, actor=request.user.get_username())
            except ApplicationError as error:
                self.message_user(request, f"{lot}: {error.error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{lot}: {done}")

    @admin.action(
        description=_("Allocate: pool the settled grams of consenting people"), permissions=["change"]
    )
    def allocate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, services.lot_allocate, str(_("allocated")))

    @admin.action(description=_("Submit to the exchange (builds the signed export)"), permissions=["change"])
    def submit(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, services.lot_submit, str(_("submitted")))

    def get_urls(self):
        return [
            path("<int:lot_id>/step/", self.admin_site.admin_view(self.step_view), name="registry_lot_step"),
            path(
                "<int:lot_id>/export.zip",
                self.admin_site.admin_view(self.export_view),
                name="registry_lot_export",
            ),
            *super().get_urls(),
        ]

    def step_view(self, request: HttpRequest, lot_id: int) -> HttpResponse:
        """Register, sell or retire: one small form each, through the services."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        lot = get_object_or_404(ReductionLot, pk=lot_id)
        forms_by_step = {
            "register": RegisterForm(request.POST or None, prefix="register"),
            "sell": SellForm(request.POST or None, prefix="sell"),
            "retire": RetireForm(request.POST or None, prefix="retire"),
        }
        step = request.POST.get("step")
        if request.method == "POST" and step in forms_by_step:
            form = forms_by_step[step]
            if form.is_valid():
                actor = request.user.get_username()
                try:
                    if step == "register":
                        services.lot_register(lot=lot, actor=actor, **form.cleaned_data)
                    elif step == "sell":
                        services.lot_sell(lot=lot, actor=actor, **form.cleaned_data)
                    else:
                        services.lot_retire(lot=lot, actor=actor, **form.cleaned_data)
                except ApplicationError as error:
                    self.message_user(request, str(error.error.message), messages.ERROR)
                else:
                    self.message_user(request, _("Done."))
                    return HttpResponseRedirect(reverse("admin:registry_reductionlot_change", args=[lot.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "lot": lot,
            "forms": forms_by_step,
            "title": lot.title,
        }
        return render(request, "admin/registry/reductionlot/step.html", context)

    def export_view(self, request: HttpRequest, lot_id: int) -> HttpResponse:
        export = get_object_or_404(LotExport, lot_id=lot_id)
        response = HttpResponse(export_zip(export=export), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="lot-{export.lot.public_id}.zip"'
        return response


@admin.register(LotSale)
class LotSaleAdmin(ReadOnlyAdmin):
    list_display = [
        "lot",
        "tonnes",
        "price_fen_per_tonne",
        "proceeds_fen",
        "buyer",
        "sold_on",
        "proceeds_paid_at",
    ]
    list_filter = [("proceeds_paid_at", admin.EmptyFieldListFilter)]
    actions = ["pay_proceeds"]

    def has_pay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("registry.change_reductionlot")

    @admin.action(description=_("Pay the proceeds as the lot's policy says (once)"), permissions=["pay"])
    def pay_proceeds(self, request: HttpRequest, queryset: QuerySet) -> None:
        for sale in queryset.select_related("lot").order_by("pk"):
            try:
                paid = services.sale_proceeds_pay(sale=sale, actor=request.user.get_username())
            except ApplicationError as error:
                self.message_user(request, f"{sale}: {error.error.message}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("%(sale)s: %(contributors)s coins to contributors, %(welfare)s to the welfare project.")
                    % {"sale": sale, "contributors": paid.contributor_coins, "welfare": paid.welfare_coins},
                )


@admin.register(LotRetirement)
class LotRetirementAdmin(ReadOnlyAdmin):
    list_display = ["lot", "tonnes", "beneficiary", "event_name", "retired_at"]
    search_fields = ["beneficiary", "event_name"]


@admin.register(LotEvent)
class LotEventAdmin(ReadOnlyAdmin):
    list_display = ["lot", "kind", "actor", "created_at"]
    list_filter = ["kind"]


@admin.register(LotContribution)
class LotContributionAdmin(ReadOnlyAdmin):
    list_display = ["lot", "contributor_id", "carbon_mg"]
    search_fields = ["contributor_id"]


@admin.register(LotProceedsShare)
class LotProceedsShareAdmin(ReadOnlyAdmin):
    list_display = ["sale", "user_id", "coins", "transaction"]


@admin.register(LotExport)
class LotExportAdmin(ReadOnlyAdmin):
    list_display = ["lot", "key_id", "created_at"]
    exclude = ["lot_csv"]
