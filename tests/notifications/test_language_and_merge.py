"""Pushes in the recipient's saved language (against the local WeChat server), and what an account
merge does to the inbox, preferences, quiet hours and WeChat grants."""

from __future__ import annotations

import datetime

import pytest
from allauth.socialaccount.models import SocialAccount

from accounts import services
from accounts.models import Notification, NotificationKind, NotificationPreference, QuietHours
from accounts.notifications.models import (
    PushStatus,
    WeChatPush,
    WeChatSubscription,
    WeChatSubscriptionReport,
    WeChatTemplate,
)
from accounts.notifications.push import push_send
from accounts.notifications.services import notification_raise, preferences_set
from tests.accounts.factories import UserFactory
from tests.notifications.test_wechat_push import TEMPLATE, _person_with_grants, _raise, wechat_api

pytestmark = pytest.mark.django_db

__all__ = ["wechat_api"]  # the local WeChat server, a fixture


def test_a_push_is_written_in_the_language_the_person_saved(client_for, wechat_api):
    # Given a person who reads English and granted one message
    person, app = _person_with_grants(client_for, grants=1)
    saved = app.patch("/api/v1/notifications/preferences", {"language": "en"}, format="json")
    assert saved.status_code == 200, saved.content
    assert saved.json()["language"] == "en"
    push = _raise(person)

    # When the push is sent
    assert push_send(push_id=push.pk) == PushStatus.SENT

    # Then WeChat got the English text, and English labels
    (sent,) = wechat_api.sends
    assert sent["lang"] == "en_US"
    assert sent["data"] == {
        "thing1": {"value": "首次骑行"},  # a parameter, as raised
        "thing2": {"value": "You earned the badge"},  # the body, cut at WeChat's 20 characters
        "thing3": {"value": "快去看看吧"},  # the template's fixed text
    }


def test_without_a_saved_language_pushes_are_in_chinese(client_for, wechat_api):
    person, app = _person_with_grants(client_for, grants=1)
    assert app.get("/api/v1/notifications/preferences").json()["language"] == ""

    assert push_send(push_id=_raise(person).pk) == PushStatus.SENT

    (sent,) = wechat_api.sends
    assert sent["lang"] == "zh_CN"
    assert sent["data"]["thing2"] == {"value": "你获得了徽章“首次骑行”。"}


def test_the_inbox_without_accept_language_is_in_the_saved_language(client_for):
    person = UserFactory()
    app = client_for(person)
    preferences_set(user=person, choices=[], language="en")
    notification_raise(
        user_id=person.pk,
        kind=NotificationKind.BADGE_EARNED,
        event_key="badge:first_ride",
        params={"key": "first_ride", "name": "首次骑行", "name_en": "First ride"},
    )

    saved = app.get("/api/v1/notifications").json()["results"][0]
    asked = app.get("/api/v1/notifications", HTTP_ACCEPT_LANGUAGE="zh-Hans").json()["results"][0]

    assert (saved["title"], saved["body"]) == ("New badge", "You earned the badge “First ride”.")
    assert asked["title"] == "新徽章"


def _badge(person, key: str) -> None:
    notification_raise(
        user_id=person.pk,
        kind=NotificationKind.BADGE_EARNED,
        event_key=f"badge:{key}",
        params={"key": key, "name": key, "name_en": key},
    )


def test_a_merge_moves_the_inbox_once_and_the_targets_choices_win():
    # Given a citizen and a guest, both told of one event (the guest read it), each with choices
    target, source = UserFactory(), UserFactory()
    for person in (target, source):
        _badge(person, "shared")
    _badge(source, "guest_only")
    Notification.objects.filter(user=source, event_key="badge:shared").update(
        read_at=datetime.datetime(2026, 11, 24, tzinfo=datetime.UTC)
    )
    preferences_set(
        user=target, choices=[(NotificationKind.BADGE_EARNED, "wechat", True)], language="zh-hans"
    )
    preferences_set(
        user=source,
        choices=[
            (NotificationKind.BADGE_EARNED, "wechat", False),
            (NotificationKind.COINS_EXPIRING, "inbox", False),
        ],
        quiet_hours=(datetime.time(22), datetime.time(7)),
        language="en",
    )

    # When the guest is merged into the citizen
    services.account_merge(source_user=source, target_user=target)

    # Then the citizen's inbox has each event once (the shared one read), the citizen's explicit
    # choices stand, the guest's fill what the citizen never chose
    inbox = sorted(Notification.objects.filter(user=target).values_list("event_key", "read_at"))
    assert [key for key, _read in inbox] == ["badge:guest_only", "badge:shared"]
    assert dict(inbox)["badge:shared"] is not None
    assert not Notification.objects.filter(user=source).exists()
    assert sorted(
        NotificationPreference.objects.filter(user=target).values_list("kind", "channel", "is_enabled")
    ) == [("badge_earned", "wechat", True), ("coins_expiring", "inbox", False)]
    quiet = QuietHours.objects.get(user=target)
    assert (quiet.starts_at, quiet.ends_at) == (datetime.time(22), datetime.time(7))
    target.refresh_from_db()
    assert target.language == "zh-hans"
    assert not NotificationPreference.objects.filter(user=source).exists()


def _grant(person, template, remaining: int, key: str) -> None:
    WeChatSubscription.objects.create(
        user=person, template=template, remaining=remaining, last_answer="accept"
    )
    WeChatSubscriptionReport.objects.create(user=person, idempotency_key=key)


def test_grants_follow_the_wechat_identity_that_gave_them(wechat_api):
    # Given a bank citizen without WeChat and a WeChat account (the guest here) with grants and a
    # push waiting; both granted the badge template
    badge = WeChatTemplate.objects.create(
        kind=NotificationKind.BADGE_EARNED,
        template_id=TEMPLATE,
        title="获得徽章通知",
        fields={"thing2": "body"},
    )
    coupon = WeChatTemplate.objects.create(
        kind=NotificationKind.COUPON_EXPIRING, template_id="tmpl-coupon", title="券到期", fields={}
    )
    target, source = UserFactory(), UserFactory()
    SocialAccount.objects.create(user=source, provider="wechat_miniprogram", uid="openid-source")
    _grant(target, badge, 1, "report-target")
    _grant(source, badge, 2, "report-shared")
    _grant(source, coupon, 1, "report-source")
    _raise(source)

    # When the WeChat account is merged into the citizen
    services.account_merge(source_user=source, target_user=target)

    # Then the grants add up per template, the reports' keys move, and the waiting push goes out
    # to the merged person's WeChat with one of them
    assert sorted(
        WeChatSubscription.objects.filter(user=target).values_list("template__template_id", "remaining")
    ) == [(TEMPLATE, 3), ("tmpl-coupon", 1)]
    assert sorted(
        WeChatSubscriptionReport.objects.filter(user=target).values_list("idempotency_key", flat=True)
    ) == ["report-shared", "report-source", "report-target"]
    push = WeChatPush.objects.get()
    assert push.notification.user_id == target.pk
    assert push_send(push_id=push.pk) == PushStatus.SENT
    assert wechat_api.sends[0]["touser"] == "openid-source"
    assert WeChatSubscription.objects.get(user=target, template=badge).remaining == 2


def test_grants_of_another_wechat_identity_do_not_count_for_the_target():
    badge = WeChatTemplate.objects.create(
        kind=NotificationKind.BADGE_EARNED, template_id=TEMPLATE, title="获得徽章通知", fields={}
    )
    target, source = UserFactory(), UserFactory()
    SocialAccount.objects.create(user=target, provider="wechat_miniprogram", uid="openid-target")
    SocialAccount.objects.create(user=source, provider="wechat_miniprogram", uid="openid-source")
    _grant(target, badge, 1, "report-target")
    _grant(source, badge, 4, "report-source")

    services.account_merge(source_user=source, target_user=target)

    assert list(WeChatSubscription.objects.values_list("user_id", "remaining")) == [(target.pk, 1)]
