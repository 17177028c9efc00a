"""Operators' pages for notifications: WeChat subscribe-message templates and their field mapping,
and the pushes (read-only: what was sent, refused or failed, with WeChat's errcode)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from accounts.notifications.models import WeChatPush, WeChatTemplate
from core import admin as core_admin


@admin.register(WeChatTemplate)
class WeChatTemplateAdmin(core_admin.ModelAdmin):
    list_display = ("title", "kind", "template_id", "is_active")
    list_filter = ("is_active", "kind")
    search_fields = ("title", "template_id")


@admin.register(WeChatPush)
class WeChatPushAdmin(core_admin.ModelAdmin):
    list_display = ("notification", "template", "status", "attempts", "errcode", "send_after", "sent_at")
    list_filter = ("status", "template")
    readonly_fields = ("notification", "template", "status", "attempts", "errcode", "send_after", "sent_at")
    ordering = ("-id",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
