"""The inbox (cursor-paginated, unread count, mark read), notification preferences and quiet hours,
and the report of the WeChat one-time subscriptions the person granted in the mini-program."""

from __future__ import annotations

import re
from contextlib import nullcontext

from django.utils import translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.apis.common import OPEN_WITHOUT_AGREEMENTS
from accounts.errors import NOTIFICATION_NOT_FOUND, QUIET_HOURS_INVALID
from accounts.models import Language
from accounts.notifications import selectors, services
from accounts.notifications.kinds import link_for, render
from accounts.notifications.models import NotificationChannel, NotificationKind
from core.api import idempotency
from core.api.errors import VALIDATION_FAILED, ApplicationError
from core.api.pagination import CursorPagination
from core.api.serializers import QuerySerializer
from core.api.views import JsonApiView

_IDEMPOTENCY_KEY = re.compile(idempotency.PATTERN)


class NotificationOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    kind = serializers.ChoiceField(choices=NotificationKind.choices)
    title = serializers.SerializerMethodField()
    body = serializers.SerializerMethodField()
    link = serializers.SerializerMethodField(help_text="The mini-program page to open.")
    params = serializers.DictField(help_text="What the texts were made from, for the app's own layouts.")
    created_at = serializers.DateTimeField()
    is_read = serializers.SerializerMethodField()

    def get_title(self, notification) -> str:
        return render(kind=notification.kind, params=notification.params)[0]

    def get_body(self, notification) -> str:
        return render(kind=notification.kind, params=notification.params)[1]

    def get_link(self, notification) -> str:
        return link_for(kind=notification.kind, params=notification.params)

    def get_is_read(self, notification) -> bool:
        return notification.read_at is not None


def reader_language(request: Request):
    """The inbox is in the request's language (Accept-Language); without one, in the language the
    person saved (`language` of the preferences), which is also the one their pushes are in."""
    language = request.user.language
    if "HTTP_ACCEPT_LANGUAGE" in request.META or not language:
        return nullcontext()
    return translation.override(language)


class NotificationsApi(JsonApiView):
    """The person's inbox, newest first, in the request's language (else the person's saved one);
    `?unread=true` for unread only."""

    permission_classes = OPEN_WITHOUT_AGREEMENTS
    # Declared on the view, so the schema shows the page (`next`, `previous`, `results`).
    pagination_class = CursorPagination

    class Query(QuerySerializer):
        unread = serializers.BooleanField(required=False, default=False)

    @extend_schema(parameters=[Query], responses=NotificationOutput(many=True))
    def get(self, request: Request) -> Response:
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = selectors.inbox_of(user=request.user, unread_only=query.validated_data["unread"])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        with reader_language(request):
            return paginator.get_paginated_response(NotificationOutput(page, many=True).data)


class UnreadOutput(serializers.Serializer):
    unread = serializers.IntegerField()


class UnreadCountApi(JsonApiView):
    permission_classes = OPEN_WITHOUT_AGREEMENTS

    @extend_schema(responses=UnreadOutput)
    def get(self, request: Request) -> Response:
        return Response({"unread": selectors.unread_count(user=request.user)})


class NotificationReadApi(JsonApiView):
    """Marks one notification read (again: no change)."""

    permission_classes = OPEN_WITHOUT_AGREEMENTS

    @extend_schema(request=None, responses={200: NotificationOutput})
    def post(self, request: Request, notification_id) -> Response:
        notification = services.notification_mark_read(user=request.user, public_id=notification_id)
        if notification is None:
            raise ApplicationError(NOTIFICATION_NOT_FOUND)
        with reader_language(request):
            return Response(NotificationOutput(notification).data)


class ReadAllOutput(serializers.Serializer):
    marked = serializers.IntegerField()
    unread = serializers.IntegerField()


class NotificationsReadAllApi(JsonApiView):
    """Marks every notification read."""

    permission_classes = OPEN_WITHOUT_AGREEMENTS

    @extend_schema(request=None, responses={200: ReadAllOutput})
    def post(self, request: Request) -> Response:
        marked = services.notifications_mark_all_read(user=request.user)
        return Response({"marked": marked, "unread": selectors.unread_count(user=request.user)})


class PreferenceItem(serializers.Serializer):
    kind = serializers.ChoiceField(choices=NotificationKind.choices)
    channel = serializers.ChoiceField(choices=NotificationChannel.choices)
    is_enabled = serializers.BooleanField()


class QuietHoursItem(serializers.Serializer):
    starts_at = serializers.TimeField(format="%H:%M")
    ends_at = serializers.TimeField(format="%H:%M")


class PreferencesOutput(serializers.Serializer):
    preferences = PreferenceItem(many=True, help_text="Every kind on every channel.")
    quiet_hours = QuietHoursItem(allow_null=True, help_text="Local time; pushes wait until they end.")
    language = serializers.ChoiceField(
        choices=[("", "")] + Language.choices,
        help_text="The language of the person's WeChat messages (and of the inbox when the app sends no "
        "Accept-Language); empty: Simplified Chinese, the platform's.",
    )


class PreferencesApi(JsonApiView):
    """Which kinds reach the person on which channel, and their quiet hours for pushes. PATCH
    changes the kinds it lists (and the quiet hours if given; null turns them off), and the language
    of the person's pushes if given."""

    permission_classes = OPEN_WITHOUT_AGREEMENTS

    class PatchInput(serializers.Serializer):
        preferences = PreferenceItem(many=True, required=False, default=list)
        quiet_hours = QuietHoursItem(required=False, allow_null=True)
        language = serializers.ChoiceField(choices=Language.choices, required=False)

    @extend_schema(responses=PreferencesOutput)
    def get(self, request: Request) -> Response:
        return Response(PreferencesOutput(selectors.preferences_of(user=request.user)).data)

    @extend_schema(request=PatchInput, responses={200: PreferencesOutput})
    def patch(self, request: Request) -> Response:
        data = self.PatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        quiet = False
        if "quiet_hours" in values:
            hours = values["quiet_hours"]
            if hours is not None and hours["starts_at"] == hours["ends_at"]:
                raise ApplicationError(
                    QUIET_HOURS_INVALID, fields={"quiet_hours": [str(QUIET_HOURS_INVALID.message)]}
                )
            quiet = None if hours is None else (hours["starts_at"], hours["ends_at"])
        services.preferences_set(
            user=request.user,
            choices=[(item["kind"], item["channel"], item["is_enabled"]) for item in values["preferences"]],
            quiet_hours=quiet,
            language=values.get("language"),
        )
        return Response(PreferencesOutput(selectors.preferences_of(user=request.user)).data)


class TemplateOutput(serializers.Serializer):
    template_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=NotificationKind.choices)
    title = serializers.CharField()
    remaining = serializers.IntegerField(help_text="Messages the person granted and we have not sent yet.")


class SubscriptionsApi(JsonApiView):
    """The WeChat templates to ask for with `wx.requestSubscribeMessage` (and how many messages the
    person granted of each); POST reports what it returned, once per Idempotency-Key."""

    permission_classes = OPEN_WITHOUT_AGREEMENTS

    class ReportInput(serializers.Serializer):
        results = serializers.DictField(
            child=serializers.ChoiceField(choices=services.ANSWERS),
            help_text="As wx.requestSubscribeMessage returned: template id → accept, reject, ban or filter.",
        )

    @extend_schema(responses=TemplateOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(TemplateOutput(selectors.subscriptions_of(user=request.user), many=True).data)

    @extend_schema(
        request=ReportInput,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "pattern": idempotency.PATTERN},
                OpenApiParameter.HEADER,
                required=False,
            )
        ],
        responses={200: TemplateOutput(many=True)},
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key") or None
        if key is not None and not _IDEMPOTENCY_KEY.match(key):
            raise ApplicationError(
                VALIDATION_FAILED, fields={"Idempotency-Key": [_("8 to 64 letters, digits, - or _.")]}
            )
        data = self.ReportInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.wechat_subscriptions_report(
            user=request.user, answers=data.validated_data["results"], idempotency_key=key
        )
        return Response(
            TemplateOutput(selectors.subscriptions_of(user=request.user), many=True).data,
            status=status.HTTP_200_OK,
        )
