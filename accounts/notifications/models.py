"""The notification inbox, per-person preferences and quiet hours, and WeChat subscribe messages.

Notifications live in accounts, the lowest app, so that the job or service that knows of an event
(rewards' expiry, activities' review queue, merchants' coupons) can raise one without importing to
its right. A notification stores its kind and parameters, never text: it is rendered in the
reader's language when read (`accounts.notifications.kinds`).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class NotificationKind(models.TextChoices):
    COINS_EXPIRING = "coins_expiring", _("Coins about to expire")
    REVIEW_DECIDED = "review_decided", _("Activity review decided")
    APPEAL_DECIDED = "appeal_decided", _("Appeal decided")
    BADGE_EARNED = "badge_earned", _("Badge earned")
    COUPON_EXPIRING = "coupon_expiring", _("Coupon about to expire")
    CHALLENGE_MET = "challenge_met", _("Team challenge met")
    MONTHLY_REPORT_READY = "monthly_report_ready", _("Monthly report ready")
    BANK_IDENTITY_JOINED = "bank_identity_joined", _("Bank identity joined")


class NotificationChannel(models.TextChoices):
    INBOX = "inbox", _("In-app inbox")
    WECHAT = "wechat", _("WeChat subscribe message")


class Notification(models.Model):
    """One event told to one person; `event_key` makes raising it twice a harmless conflict."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    # What the text is made from (numbers, days, names); rendered at read time.
    params = models.JSONField(default=dict, blank=True)
    # Names the event, e.g. "coins_expiring:30:2027-01" or "badge:first_ride".
    event_key = models.CharField(max_length=200)
    created_at = models.DateTimeField(db_default=models.functions.Now())
    read_at = models.DateTimeField(null=True, blank=True)
    # False for a kind the person turned off in the inbox but not on WeChat: the row is there only
    # to carry its WeChat message, and the inbox and the unread count leave it out.
    in_inbox = models.BooleanField(default=True, db_default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "event_key"], name="one_notification_per_event"),
        ]
        indexes = [
            # The inbox, newest first, and the unread count.
            models.Index(fields=["user", "-id"], name="notification_inbox"),
            models.Index(fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread"),
        ]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")

    def __str__(self) -> str:
        return f"{self.kind} → {self.user_id}"


class NotificationPreference(models.Model):
    """A person's choice for one kind on one channel; without a row, the kind is on."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    channel = models.CharField(max_length=16, choices=NotificationChannel.choices)
    is_enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "channel"], name="one_preference_per_kind_channel"
            )
        ]
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}/{self.channel}: {self.is_enabled}"


class QuietHours(models.Model):
    """A person's quiet hours for pushes, in local time (start > end spans midnight)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiet_hours"
    )
    starts_at = models.TimeField()
    ends_at = models.TimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(starts_at=models.F("ends_at")), name="quiet_hours_span")
        ]
        verbose_name = _("quiet hours")
        verbose_name_plural = _("quiet hours")

    def __str__(self) -> str:
        return f"{self.starts_at:%H:%M}–{self.ends_at:%H:%M}"


class WeChatTemplate(models.Model):
    """A subscribe-message template of the mini-program, for one kind of notification.

    `fields` maps the template's keywords to what fills them: {"thing1": "title", "number2":
    "param:coins", "date3": "param:expires_on", "thing4": "text:请及时使用"} — the rendered title or
    body, one of the notification's parameters, or fixed text.
    """

    kind = models.CharField(_("kind"), max_length=32, choices=NotificationKind.choices, unique=True)
    template_id = models.CharField(_("template id"), max_length=64, unique=True)
    title = models.CharField(_("title"), max_length=60, help_text=_("As named in the WeChat console."))
    fields = models.JSONField(_("field mapping"), default=dict)
    page = models.CharField(
        _("page"), max_length=200, blank=True, help_text=_("Opened from the message; default: the link.")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("WeChat template")
        verbose_name_plural = _("WeChat templates")

    def __str__(self) -> str:
        return f"{self.title} ({self.kind})"


class WeChatSubscription(models.Model):
    """How many one-time messages a person granted us for a template (WeChat does not say)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    template = models.ForeignKey(WeChatTemplate, on_delete=models.CASCADE, related_name="subscriptions")
    remaining = models.IntegerField(default=0)
    # The last answer of wx.requestSubscribeMessage: accept, reject, ban (or filter).
    last_answer = models.CharField(max_length=16, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "template"], name="one_subscription_per_template"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0), name="subscription_remaining_never_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} × {self.template_id}: {self.remaining}"


class WeChatSubscriptionReport(models.Model):
    """A report already counted (its Idempotency-Key), so a retried report adds no grant."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    idempotency_key = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"], name="one_subscription_report_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.idempotency_key}"


class PushStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    SENT = "sent", _("Sent")
    REFUSED = "refused", _("Refused by the person")
    NO_GRANT = "no_grant", _("No subscription left")
    FAILED = "failed", _("Failed")


class WeChatPush(models.Model):
    """One subscribe message for one notification: sent once, or recorded why not."""

    notification = models.OneToOneField(Notification, on_delete=models.CASCADE, related_name="wechat_push")
    template = models.ForeignKey(WeChatTemplate, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=PushStatus.choices, default=PushStatus.PENDING)
    # Not before: the end of the person's quiet hours when the event came during them.
    send_after = models.DateTimeField()
    attempts = models.IntegerField(default=0)
    errcode = models.IntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["send_after"], condition=Q(status="pending"), name="wechat_push_due")]
        verbose_name = _("WeChat push")
        verbose_name_plural = _("WeChat pushes")

    def __str__(self) -> str:
        return f"{self.notification_id} {self.status}"
