"""Operators review merchants and offers here (in bulk), change merchants' staff (by actions) and look
up coupons (read-only).

Every change goes through `merchants.services`, as the API's do: an approval is the same rule
whether it comes from a button here or anywhere else.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core import admin as core_admin
from core.admin import ReadOnlyAdmin, ReadOnlyAdminMixin
from core.api.errors import ApplicationError
from merchants import services
from merchants.models import Coupon, Merchant, MerchantStaff, Offer


def _run_in_bulk(modeladmin, request: HttpRequest, queryset: QuerySet, action, done: str) -> None:
    succeeded, refused = 0, []
    for obj in queryset.order_by("pk"):
        try:
            action(obj)
            succeeded += 1
        except ApplicationError as error:
            refused.append(f"{obj}: {error.message or error.error.message}")
    if succeeded:
        modeladmin.message_user(request, f"{done}: {succeeded}", messages.SUCCESS)
    if refused:
        modeladmin.message_user(request, "; ".join(refused), messages.WARNING)


class MerchantStaffInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Who works for the merchant, to read: staff change through the staff page's actions, which call
    the services (a merchant keeps at least one owner)."""

    model = MerchantStaff
    extra = 0
    fields = ("user", "role", "added_at")
    readonly_fields = fields


@admin.register(Merchant)
class MerchantAdmin(core_admin.ModelAdmin):
    list_display = ("name", "category", "district", "licence_number", "contact_name", "status", "applied_at")
    list_filter = ("status", "category", "district")
    search_fields = ("name", "licence_number", "contact_name", "contact_phone", "public_id")
    readonly_fields = ("public_id", "status", "applied_at", "reviewed_at", "reviewed_by")
    date_hierarchy = "applied_at"
    inlines = [MerchantStaffInline]
    actions = ["approve", "reject"]

    @admin.action(description=_("Approve the selected merchant applications"), permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Merchant]) -> None:
        _run_in_bulk(
            self,
            request,
            queryset,
            lambda merchant: services.merchant_approve(merchant=merchant, reviewer=request.user),
            "Approved",
        )

    @admin.action(description=_("Reject the selected merchant applications"), permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Merchant]) -> None:
        _run_in_bulk(
            self,
            request,
            queryset,
            lambda merchant: services.merchant_reject(merchant=merchant, reviewer=request.user),
            "Rejected",
        )


@admin.register(MerchantStaff)
class MerchantStaffAdmin(ReadOnlyAdmin):
    """Staff change only through the actions here, which call the services as an owner's app does:
    the last owner of a merchant can be neither removed nor made a clerk."""

    list_display = ("user", "merchant", "role", "added_at")
    list_filter = ("role",)
    search_fields = ("user__username", "user__nickname", "merchant__name")
    actions = ["make_owner", "make_clerk", "remove"]

    def has_staff_permission(self, request: HttpRequest) -> bool:
        # The rows stay read-only; the change permission is what lets a person use the actions.
        return request.user.has_perm("merchants.change_merchantstaff")

    def _change_role(self, request: HttpRequest, queryset: QuerySet[MerchantStaff], role: str) -> None:
        _run_in_bulk(
            self,
            request,
            queryset,
            lambda staff: services.staff_change_role(staff=staff, role=role),
            "Changed",
        )

    @admin.action(description=_("Make the selected staff owners"), permissions=["staff"])
    def make_owner(self, request: HttpRequest, queryset: QuerySet[MerchantStaff]) -> None:
        self._change_role(request, queryset, MerchantStaff.Role.OWNER)

    @admin.action(description=_("Make the selected staff clerks"), permissions=["staff"])
    def make_clerk(self, request: HttpRequest, queryset: QuerySet[MerchantStaff]) -> None:
        self._change_role(request, queryset, MerchantStaff.Role.CLERK)

    @admin.action(description=_("Remove the selected staff from their merchant"), permissions=["staff"])
    def remove(self, request: HttpRequest, queryset: QuerySet[MerchantStaff]) -> None:
        _run_in_bulk(self, request, queryset, lambda staff: services.staff_remove(staff=staff), "Removed")


class OfferReviewActionForm(ActionForm):
    """The changelist's actions with the moment the page was loaded: an approval is of the offers as
    they were then (`services.offer_approve` refuses one changed since)."""

    page_loaded_at = forms.CharField(widget=forms.HiddenInput, required=False, label="")


@admin.register(Offer)
class OfferAdmin(core_admin.ModelAdmin):
    list_display = (
        "title",
        "merchant",
        "category",
        "price_coins",
        "stock_left",
        "total_stock",
        "status",
        "sale_starts_at",
        "sale_ends_at",
        "preview",
    )
    list_filter = ("status", "category", "refunds_on_expiry", "districts")
    search_fields = ("title", "merchant__name", "public_id")
    date_hierarchy = "created_at"
    # Stock and status change only through services (conditional updates, reviews).
    readonly_fields = (
        "public_id",
        "merchant",
        "stock_left",
        "total_stock",
        "status",
        "is_reviewed",
        "submitted_at",
        "reviewed_at",
        "reviewed_by",
        "created_at",
        "updated_at",
        "preview",
    )
    fields = (
        "public_id",
        "merchant",
        "title",
        "description",
        "preview",
        "category",
        "price_coins",
        "total_stock",
        "stock_left",
        "limit_per_person",
        "sale_starts_at",
        "sale_ends_at",
        "coupon_valid_days",
        "districts",
        "refunds_on_expiry",
        "status",
        "review_note",
        "submitted_at",
        "reviewed_at",
        "reviewed_by",
    )
    actions = ["approve", "reject"]
    action_form = OfferReviewActionForm

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        loaded_at = timezone.now()  # before the page reads any offer
        response = super().changelist_view(request, extra_context)
        action_form = (getattr(response, "context_data", None) or {}).get("action_form")
        if action_form is not None:
            action_form.initial["page_loaded_at"] = loaded_at.isoformat()
        return response

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # merchants write offers through the API; operators review them

    def has_change_permission(self, request: HttpRequest, obj: Offer | None = None) -> bool:
        return False  # a change would bypass the review; operators approve or reject

    def has_review_permission(self, request: HttpRequest) -> bool:
        # The offer's form stays read-only; the change permission is what lets a person review.
        return request.user.has_perm("merchants.change_offer")

    @admin.display(description=_("picture"))
    def preview(self, offer: Offer) -> str:
        if not offer.thumbnail:
            return "—"
        return format_html('<img src="{}" style="height:48px">', offer.thumbnail.url)

    @admin.action(description=_("Approve the selected offers (they go live)"), permissions=["review"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Offer]) -> None:
        seen_at = parse_datetime(request.POST.get("page_loaded_at", ""))
        if seen_at is None:
            self.message_user(request, _("The page was out of date: nothing was approved."), messages.ERROR)
            return
        _run_in_bulk(
            self,
            request,
            queryset.select_related("merchant"),
            lambda offer: services.offer_approve(offer=offer, reviewer=request.user, seen_at=seen_at),
            "Approved",
        )

    @admin.action(description=_("Send the selected offers back to draft"), permissions=["review"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Offer]) -> None:
        _run_in_bulk(
            self,
            request,
            queryset,
            lambda offer: services.offer_reject(offer=offer, reviewer=request.user),
            "Sent back",
        )


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = (
        "code",
        "title",
        "offer",
        "merchant",
        "status",
        "price_coins",
        "issued_at",
        "valid_until",
        "verified_at",
    )
    list_filter = ("status", "merchant")
    search_fields = ("code", "public_id", "title", "merchant__name")
    date_hierarchy = "issued_at"
    list_select_related = ("offer", "merchant")
