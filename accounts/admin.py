from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import DataSourceAuthorization, District, User


@admin.register(User)
class PersonAdmin(UserAdmin):
    list_display = ("username", "nickname", "district", "is_guest", "is_staff", "date_joined")
    list_filter = ("is_guest", "is_staff", "district")
    search_fields = ("username", "nickname", "public_id")
    fieldsets = (
        *UserAdmin.fieldsets,
        (
            "Carbon account",
            {"fields": ("nickname", "district", "is_guest", "shows_on_leaderboards", "closed_at")},
        ),
    )


@admin.register(District)
class DistrictAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "name_en")
    search_fields = ("code", "name", "name_en")


@admin.register(DataSourceAuthorization)
class DataSourceAuthorizationAdmin(admin.ModelAdmin):
    list_display = ("user", "source", "granted_at", "revoked_at")
    list_filter = ("source",)
    search_fields = ("user__username",)
    readonly_fields = ("user", "source", "granted_at", "revoked_at")
