"""Operators review merchants and offers here (in bulk) and look up coupons (read-only).

Every change goes through `merchants.services`, as the API's do: an approval is the same rule
whether it comes from a button here or anywhere else.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core import admin as core_admin
from core.admin import ReadOnlyAdmin
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


class MerchantStaffInline(admin.TabularInline):
    model = MerchantStaff
    extra = 0
    fields = ("user", "role", "added_at")
    readonly_fields = ("added_at",)
    raw_id_fields = ("user",)


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
class MerchantStaffAdmin(core_admin.ModelAdmin):
    list_display = ("user", "merchant", "role", "added_at")
    list_filter = ("role",)
    search_fields = ("user__username", "user__nickname", "merchant__name")
    raw_id_fields = ("user", "merchant")


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
        _run_in_bulk(
            self,
            request,
            queryset.select_related("merchant"),
            lambda offer: services.offer_approve(offer=offer, reviewer=request.user),
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
        "offer",
        "merchant",
        "status",
        "price_coins",
        "issued_at",
        "valid_until",
        "verified_at",
    )
    list_filter = ("status", "merchant")
    search_fields = ("code", "public_id", "offer__title", "merchant__name")
    date_hierarchy = "issued_at"
    list_select_related = ("offer", "merchant")
