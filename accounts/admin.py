"""Operators' view of people, agreements and consents. Personal identifiers appear masked only;
consent evidence is read-only; erasure and agreement publishing go through the services."""

from __future__ import annotations

from allauth.socialaccount.admin import SocialAccountAdmin as AllauthSocialAccountAdmin
from allauth.socialaccount.models import SocialAccount
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.masking import mask_identifier
from accounts.models import (
    Agreement,
    AgreementAcceptance,
    DataSourceAuthorization,
    Device,
    District,
    Friendship,
    IdentityJoin,
    InviteCode,
    PoolingConsent,
    User,
)
from accounts.selectors import users_with_phone_number, verified_details_masked
from core import admin as core_admin
from core.admin import ReadOnlyAdminMixin


class IdentityInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SocialAccount
    fields = ("provider", "masked_uid", "date_joined", "last_login")
    readonly_fields = fields
    extra = 0
    verbose_name = _("sign-in identity")

    @admin.display(description=_("account"))
    def masked_uid(self, account: SocialAccount) -> str:
        return mask_identifier(account.uid)


class DataSourceAuthorizationInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = DataSourceAuthorization
    fields = ("source", "granted_at", "revoked_at")
    readonly_fields = fields
    extra = 0


class AgreementAcceptanceInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = AgreementAcceptance
    fields = ("agreement", "accepted_at")
    readonly_fields = fields
    extra = 0


@admin.register(User)
class PersonAdmin(core_admin.ChangedFieldsAdminMixin, UserAdmin):
    list_display = (
        "username",
        "nickname",
        "district",
        "is_guest",
        "masked_phone_number",
        "date_joined",
        "closed_at",
    )
    list_filter = ("is_guest", "is_staff", "is_active", "district", ("closed_at", admin.EmptyFieldListFilter))
    search_fields = ("username", "nickname", "public_id")
    readonly_fields = ("public_id", "masked_phone_number", "masked_id_number", "closed_at", "merged_into")
    fieldsets = (
        *UserAdmin.fieldsets,
        (
            _("Carbon account"),
            {
                "fields": (
                    "public_id",
                    "nickname",
                    "district",
                    "avatar",
                    "is_guest",
                    "shows_on_leaderboards",
                    "closed_at",
                    "merged_into",
                )
            },
        ),
        (_("Verified by the bank (masked)"), {"fields": ("masked_phone_number", "masked_id_number")}),
    )
    inlines = [IdentityInline, DataSourceAuthorizationInline, AgreementAcceptanceInline]
    actions = ["erase_personal_data"]

    @admin.display(description=_("phone number"))
    def masked_phone_number(self, user: User) -> str:
        return verified_details_masked(user=user)["phone_number"]

    @admin.display(description=_("ID number"))
    def masked_id_number(self, user: User) -> str:
        return verified_details_masked(user=user)["id_number"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        # A full phone number finds the person through the blind index, never a plain-text scan.
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        digits = search_term.strip().replace(" ", "")
        if digits.lstrip("+").isdigit() and len(digits) >= 11:
            results |= queryset.filter(pk__in=users_with_phone_number(phone_number=digits).values("pk"))
        return results, may_have_duplicates

    @admin.action(description=_("Erase personal data of the selected people"))
    def erase_personal_data(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        count = 0
        for user in queryset.filter(closed_at__isnull=True, is_superuser=False):
            services.account_erase(user=user)
            count += 1
        self.message_user(request, f"{count} account(s) closed and erased.", messages.SUCCESS)


@admin.register(District)
class DistrictAdmin(core_admin.ModelAdmin):
    list_display = ("code", "name", "name_en")
    search_fields = ("code", "name", "name_en")


@admin.register(DataSourceAuthorization)
class DataSourceAuthorizationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "source", "granted_at", "revoked_at")
    list_filter = ("source", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("user__username", "user__public_id")
    date_hierarchy = "granted_at"
    list_select_related = ("user",)


@admin.register(PoolingConsent)
class PoolingConsentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "agreement", "granted_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("user__username", "user__public_id")
    date_hierarchy = "granted_at"
    list_select_related = ("user", "agreement")


@admin.register(Agreement)
class AgreementAdmin(core_admin.ModelAdmin):
    list_display = ("kind", "version", "title", "effective_at", "acceptance_count")
    list_filter = ("kind",)
    search_fields = ("version", "title")
    ordering = ("kind", "-effective_at")

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "url":
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # A published version is evidence of what people accepted: its identity never changes.
        return ("kind", "version", "effective_at", "created_at") if obj else ("created_at",)

    @admin.display(description=_("acceptances"))
    def acceptance_count(self, agreement: Agreement) -> int:
        return agreement.acceptances.count()

    def save_model(self, request: HttpRequest, obj: Agreement, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        published = services.agreement_publish(
            kind=obj.kind,
            version=obj.version,
            title=obj.title,
            url=obj.url,
            summary=obj.summary,
            effective_at=obj.effective_at,
        )
        obj.pk = published.pk

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(AgreementAcceptance)
class AgreementAcceptanceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "agreement", "accepted_at")
    list_filter = ("agreement__kind", "agreement")
    search_fields = ("user__username", "user__public_id")
    date_hierarchy = "accepted_at"
    list_select_related = ("user", "agreement")


@admin.register(IdentityJoin)
class IdentityJoinAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Bank identities that joined an account at their first sign-in: their bank verified the ID
    number that account holds (one person across banks)."""

    list_display = ("user", "provider", "joined_at", "seen_at")
    list_filter = ("provider",)
    search_fields = ("user__username", "user__public_id")
    date_hierarchy = "joined_at"
    list_select_related = ("user",)


@admin.register(Device)
class DeviceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "short_digest", "created_at", "last_seen_at")
    search_fields = ("user__username", "user__public_id")
    list_select_related = ("user",)

    @admin.display(description=_("device"))
    def short_digest(self, device: Device) -> str:
        return mask_identifier(device.device_digest)


@admin.register(Friendship)
class FriendshipAdmin(core_admin.ModelAdmin):
    list_display = ("user", "friend", "created_at")
    search_fields = ("user__username", "friend__username")
    raw_id_fields = ("user", "friend")
    list_select_related = ("user", "friend")


@admin.register(InviteCode)
class InviteCodeAdmin(core_admin.ModelAdmin):
    list_display = ("code", "user", "created_at")
    search_fields = ("code", "user__username")
    raw_id_fields = ("user",)


# allauth's own admin lists the provider's uid (an openid, a bank's subject) and its extra data
# in full: ours masks the uid and shows no extra data.
if admin.site.is_registered(SocialAccount):
    admin.site.unregister(SocialAccount)


@admin.register(SocialAccount)
class SocialAccountAdmin(core_admin.ChangedFieldsAdminMixin, AllauthSocialAccountAdmin):
    list_display = ("user", "provider", "masked_uid", "date_joined", "last_login")
    search_fields = ("user__username", "user__public_id")
    fields = ("user", "provider", "masked_uid", "date_joined", "last_login")
    readonly_fields = ("user", "provider", "masked_uid", "date_joined", "last_login")

    @admin.display(description=_("account"))
    def masked_uid(self, account: SocialAccount) -> str:
        return mask_identifier(account.uid)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


from accounts.notifications import admin as _notifications_admin  # noqa: E402, F401 - its pages
