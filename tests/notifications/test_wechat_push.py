"""WeChat subscribe messages against a local server speaking WeChat's protocol: the stable token,
subscribeMessage.send and its error codes; grants reported by the app and counted by us."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from allauth.socialaccount.models import SocialAccount
from django.utils import timezone

from accounts.models import (
    Notification,
    NotificationKind,
    PushStatus,
    QuietHours,
    WeChatPush,
    WeChatSubscription,
    WeChatTemplate,
)
from accounts.notifications.push import push_send
from accounts.notifications.services import notification_raise
from tests.accounts.conftest import _Server
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

TEMPLATE = "tmpl-badge-0001"


@dataclass
class FakeWeChatApi:
    """Issues stable tokens and answers sends with the errcodes queued in `answers` (then 0)."""

    answers: list[int] = field(default_factory=list)
    tokens_issued: int = 0
    sends: list[dict[str, Any]] = field(default_factory=list)
    valid_token: str = ""

    def token(self, body: dict) -> dict:
        if body.get("grant_type") != "client_credential" or body.get("appid") != "wx-test-app":
            return {"errcode": 40013, "errmsg": "invalid appid"}
        self.tokens_issued += 1
        self.valid_token = f"token-{self.tokens_issued}"
        return {"access_token": self.valid_token, "expires_in": 7200}

    def send(self, token: str, body: dict) -> dict:
        self.sends.append({"token": token, **body})
        if token != self.valid_token:
            return {"errcode": 40001, "errmsg": "invalid credential"}
        errcode = self.answers.pop(0) if self.answers else 0
        return {"errcode": errcode, "errmsg": "ok" if errcode == 0 else "error"}


@pytest.fixture
def wechat_api(settings) -> Iterator[FakeWeChatApi]:
    fake = FakeWeChatApi()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            url = urlparse(self.path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            if url.path == "/cgi-bin/stable_token":
                answer = fake.token(body)
            elif url.path == "/cgi-bin/message/subscribe/send":
                answer = fake.send(parse_qs(url.query).get("access_token", [""])[0], body)
            else:
                self.send_error(404)
                return
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = _Server(Handler)
    settings.WECHAT_API_BASE_URL = server.base_url
    settings.WECHAT_MINIPROGRAM_APP_ID = "wx-test-app"
    settings.WECHAT_MINIPROGRAM_SECRET = "secret"
    yield fake
    server.stop()


def _person_with_grants(client_for, grants: int = 1):
    person = UserFactory()
    SocialAccount.objects.create(user=person, provider="wechat_miniprogram", uid=f"openid-{person.pk}")
    WeChatTemplate.objects.create(
        kind=NotificationKind.BADGE_EARNED,
        template_id=TEMPLATE,
        title="获得徽章通知",
        fields={"thing1": "param:name", "thing2": "body", "thing3": "text:快去看看吧"},
    )
    app = client_for(person)
    for number in range(grants):
        app.post(
            "/api/v1/notifications/wechat-subscriptions",
            {"results": {TEMPLATE: "accept", "tmpl-unknown": "accept"}},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"report-{number:04d}",
        )
    return person, app


def _raise(person, key="first_ride") -> WeChatPush:
    notification_raise(
        user_id=person.pk,
        kind=NotificationKind.BADGE_EARNED,
        event_key=f"badge:{key}",
        params={"key": key, "name": "首次骑行", "name_en": "First ride"},
    )
    return WeChatPush.objects.get(notification__event_key=f"badge:{key}")


def test_grants_are_counted_once_per_report_and_listed(client_for):
    person, app = _person_with_grants(client_for, grants=2)

    replay = app.post(
        "/api/v1/notifications/wechat-subscriptions",
        {"results": {TEMPLATE: "accept"}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="report-0000",
    )
    listed = app.get("/api/v1/notifications/wechat-subscriptions").json()

    assert replay.status_code == 200
    assert listed == [
        {"template_id": TEMPLATE, "kind": "badge_earned", "title": "获得徽章通知", "remaining": 2}
    ]
    assert WeChatSubscription.objects.get(user=person).remaining == 2


def test_a_push_is_sent_with_the_cached_token_and_uses_one_grant(client_for, wechat_api):
    person, _app = _person_with_grants(client_for, grants=2)
    first, second = _raise(person, "a"), _raise(person, "b")

    assert push_send(push_id=first.pk) == PushStatus.SENT
    assert push_send(push_id=second.pk) == PushStatus.SENT
    assert push_send(push_id=second.pk) == "skipped"

    assert wechat_api.tokens_issued == 1
    sent = wechat_api.sends[0]
    assert sent["touser"] == f"openid-{person.pk}"
    assert sent["template_id"] == TEMPLATE
    assert sent["page"] == "pages/badges/index?badge=a"
    assert sent["data"] == {
        "thing1": {"value": "首次骑行"},
        "thing2": {"value": "你获得了徽章“首次骑行”。"},
        "thing3": {"value": "快去看看吧"},
    }
    assert WeChatSubscription.objects.get(user=person).remaining == 0


def test_an_expired_token_is_refreshed_and_the_send_retried(client_for, wechat_api):
    person, _app = _person_with_grants(client_for)
    push = _raise(person)
    from django.core.cache import cache

    cache.set("wechat:miniprogram:access_token", "stale", 600)

    assert push_send(push_id=push.pk) == PushStatus.SENT
    assert [send["token"] for send in wechat_api.sends] == ["stale", "token-1"]


def test_a_refusal_is_recorded_and_never_retried(client_for, wechat_api):
    person, _app = _person_with_grants(client_for, grants=3)
    wechat_api.answers = [43101]
    push = _raise(person)

    assert push_send(push_id=push.pk) == PushStatus.REFUSED

    WeChatPush.objects.filter(pk=push.pk).update(send_after=timezone.now())
    assert push_send(push_id=push.pk) == "skipped"
    assert len(wechat_api.sends) == 1
    assert WeChatPush.objects.get(pk=push.pk).errcode == 43101
    assert WeChatSubscription.objects.get(user=person).remaining == 0


def test_a_busy_wechat_is_retried_with_backoff_and_the_grant_kept(client_for, wechat_api):
    person, _app = _person_with_grants(client_for)
    wechat_api.answers = [-1, 45009]
    push = _raise(person)

    assert push_send(push_id=push.pk) == PushStatus.PENDING
    waited = WeChatPush.objects.get(pk=push.pk)
    assert waited.send_after > timezone.now() + datetime.timedelta(seconds=20)
    assert push_send(push_id=push.pk) == "skipped"  # not due yet
    assert WeChatSubscription.objects.get(user=person).remaining == 1
    WeChatPush.objects.filter(pk=push.pk).update(send_after=timezone.now())
    assert push_send(push_id=push.pk) == PushStatus.PENDING
    WeChatPush.objects.filter(pk=push.pk).update(send_after=timezone.now())
    assert push_send(push_id=push.pk) == PushStatus.SENT
    assert WeChatPush.objects.get(pk=push.pk).attempts == 3


def test_without_a_grant_no_push_is_queued(client_for):
    person = UserFactory()
    WeChatTemplate.objects.create(kind=NotificationKind.BADGE_EARNED, template_id=TEMPLATE, title="t")

    notification_raise(user_id=person.pk, kind=NotificationKind.BADGE_EARNED, event_key="badge:x", params={})

    assert Notification.objects.count() == 1
    assert WeChatPush.objects.count() == 0


def test_a_push_raised_in_quiet_hours_waits_until_they_end(client_for):
    person, _app = _person_with_grants(client_for)
    now = timezone.localtime()
    starts = (now - datetime.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    ends = (now + datetime.timedelta(hours=2)).time().replace(second=0, microsecond=0)
    QuietHours.objects.create(user=person, starts_at=starts, ends_at=ends)

    push = _raise(person)

    expected = timezone.localtime(push.send_after)
    assert expected.time() == ends
    assert expected > now
    assert expected - now <= datetime.timedelta(hours=2)


def test_a_waiting_push_is_not_sent_once_the_person_turned_wechat_off_for_its_kind(client_for, wechat_api):
    # The choices were read only when the notification was raised: a push that waited for the end
    # of quiet hours went out to someone who had turned the kind off on WeChat meanwhile.
    person, app = _person_with_grants(client_for)
    now = timezone.localtime()
    QuietHours.objects.create(
        user=person,
        starts_at=(now - datetime.timedelta(hours=1)).time().replace(microsecond=0),
        ends_at=(now + datetime.timedelta(hours=2)).time().replace(microsecond=0),
    )
    push = _raise(person)
    app.patch(
        "/api/v1/notifications/preferences",
        {"preferences": [{"kind": "badge_earned", "channel": "wechat", "is_enabled": False}]},
        format="json",
    )
    QuietHours.objects.filter(user=person).delete()
    WeChatPush.objects.filter(pk=push.pk).update(send_after=timezone.now())

    assert push_send(push_id=push.pk) == PushStatus.REFUSED

    assert wechat_api.sends == []
    assert WeChatPush.objects.get(pk=push.pk).errcode is None
    assert WeChatSubscription.objects.get(user=person).remaining == 1


def test_a_retried_push_waits_for_quiet_hours_set_meanwhile(client_for, wechat_api):
    person, app = _person_with_grants(client_for)
    wechat_api.answers = [-1]
    push = _raise(person)
    assert push_send(push_id=push.pk) == PushStatus.PENDING
    now = timezone.localtime()
    ends = (now + datetime.timedelta(hours=2)).time().replace(second=0, microsecond=0)
    app.patch(
        "/api/v1/notifications/preferences",
        {
            "quiet_hours": {
                "starts_at": (now - datetime.timedelta(hours=1)).strftime("%H:%M"),
                "ends_at": ends.strftime("%H:%M"),
            }
        },
        format="json",
    )
    WeChatPush.objects.filter(pk=push.pk).update(send_after=timezone.now())

    assert push_send(push_id=push.pk) == PushStatus.PENDING

    waiting = WeChatPush.objects.get(pk=push.pk)
    assert len(wechat_api.sends) == 1  # the busy attempt only
    assert timezone.localtime(waiting.send_after).time() == ends
    assert waiting.send_after > timezone.now()
    assert waiting.attempts == 1
    assert WeChatSubscription.objects.get(user=person).remaining == 1


def test_a_kind_off_in_the_inbox_still_reaches_wechat_and_stays_out_of_the_inbox(client_for, wechat_api):
    # A kind turned off in the inbox raised no row at all, and so queued no WeChat message, while
    # the preferences said WeChat was on for it.
    person, app = _person_with_grants(client_for)
    app.patch(
        "/api/v1/notifications/preferences",
        {"preferences": [{"kind": "badge_earned", "channel": "inbox", "is_enabled": False}]},
        format="json",
    )

    push = _raise(person)

    assert push_send(push_id=push.pk) == PushStatus.SENT
    assert len(wechat_api.sends) == 1
    assert app.get("/api/v1/notifications").json()["results"] == []
    assert app.get("/api/v1/notifications/unread-count").json() == {"unread": 0}


def test_a_kind_off_in_both_channels_raises_nothing(client_for):
    person, app = _person_with_grants(client_for)
    app.patch(
        "/api/v1/notifications/preferences",
        {
            "preferences": [
                {"kind": "badge_earned", "channel": "inbox", "is_enabled": False},
                {"kind": "badge_earned", "channel": "wechat", "is_enabled": False},
            ]
        },
        format="json",
    )

    notification_raise(user_id=person.pk, kind=NotificationKind.BADGE_EARNED, event_key="badge:x", params={})

    assert Notification.objects.count() == 0
    assert WeChatPush.objects.count() == 0
