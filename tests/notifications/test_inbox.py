"""The inbox: raised once per event, rendered in the reader's language, paginated, marked read;
preferences and the nightly expiry reminders (set-based)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.models import Notification, NotificationKind
from accounts.notifications.services import notification_raise
from rewards.models import CoinLot
from rewards.services.expiry import expiry_notifications_raise
from tests.accounts.factories import UserFactory
from tests.rewards.factories import fund_wallet

pytestmark = pytest.mark.django_db


def _badge(user, key="first_ride"):
    return notification_raise(
        user_id=user.pk,
        kind=NotificationKind.BADGE_EARNED,
        event_key=f"badge:{key}",
        params={"key": key, "name": "首次骑行", "name_en": "First ride"},
    )


def test_an_event_is_told_once_and_read_in_the_readers_language(client_for):
    person = UserFactory()
    first, again = _badge(person), _badge(person)
    app = client_for(person)

    english = app.get("/api/v1/notifications", HTTP_ACCEPT_LANGUAGE="en").json()
    chinese = app.get("/api/v1/notifications", HTTP_ACCEPT_LANGUAGE="zh-Hans").json()

    assert (first.notifications, again.notifications) == (1, 0)
    item = english["results"][0]
    assert item["kind"] == "badge_earned"
    assert item["title"] == "New badge"
    assert item["body"] == "You earned the badge “First ride”."
    assert item["link"] == "/pages/badges/index?badge=first_ride"
    assert item["is_read"] is False
    assert chinese["results"][0]["body"] == "你获得了徽章“首次骑行”。"


def test_the_inbox_pages_by_cursor_counts_unread_and_marks_read(client_for):
    person = UserFactory()
    for number in range(3):
        _badge(person, key=f"b{number}")
    app = client_for(person)

    page = app.get("/api/v1/notifications?page_size=2").json()
    rest = app.get(page["next"]).json()
    read = app.post(f"/api/v1/notifications/{page['results'][0]['id']}/read")
    unread = app.get("/api/v1/notifications/unread-count").json()
    all_read = app.post("/api/v1/notifications/read-all").json()
    missing = app.post("/api/v1/notifications/7d0c5a3e-2b1f-4e8a-9c6d-5f4e3a2b1c0d/read")

    assert len(page["results"]) == 2
    assert len(rest["results"]) == 1
    assert rest["next"] is None
    assert read.json()["is_read"] is True
    assert unread == {"unread": 2}
    assert all_read == {"marked": 2, "unread": 0}
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "notification_not_found"


def test_someone_elses_notification_cannot_be_marked(client_for):
    owner = UserFactory()
    _badge(owner)
    notification = Notification.objects.get()

    response = client_for(UserFactory()).post(f"/api/v1/notifications/{notification.public_id}/read")

    assert response.status_code == 404
    assert Notification.objects.get().read_at is None


def test_a_kind_turned_off_in_the_inbox_is_not_raised(client_for):
    person = UserFactory()
    response = client_for(person).patch(
        "/api/v1/notifications/preferences",
        {
            "preferences": [{"kind": "badge_earned", "channel": "inbox", "is_enabled": False}],
            "quiet_hours": {"starts_at": "22:00", "ends_at": "07:30"},
        },
        format="json",
    )

    raised = _badge(person)

    assert raised.notifications == 0
    body = response.json()
    assert body["quiet_hours"] == {"starts_at": "22:00", "ends_at": "07:30"}
    assert {"kind": "badge_earned", "channel": "inbox", "is_enabled": False} in body["preferences"]
    assert {"kind": "badge_earned", "channel": "wechat", "is_enabled": True} in body["preferences"]
    assert len(body["preferences"]) == len(NotificationKind.values) * 2


def test_quiet_hours_that_do_not_span_time_are_refused(client_for):
    response = client_for(UserFactory()).patch(
        "/api/v1/notifications/preferences",
        {"quiet_hours": {"starts_at": "22:00", "ends_at": "22:00"}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "quiet_hours_invalid"


def test_expiry_reminders_come_30_and_7_days_before_once_per_month_and_week():
    alice, bob = UserFactory(), UserFactory()
    fund_wallet(alice, 50)
    fund_wallet(bob, 20)
    today = timezone.localdate()
    CoinLot.objects.filter(account__owner_id=alice.pk).update(expires_on=today + datetime.timedelta(days=5))
    CoinLot.objects.filter(account__owner_id=bob.pk).update(expires_on=today + datetime.timedelta(days=20))

    first = expiry_notifications_raise(today=today)
    again = expiry_notifications_raise(today=today)

    assert (first, again) == (3, 0)
    rows = {
        (row.user_id, row.params["days"]): row.params
        for row in Notification.objects.filter(kind="coins_expiring")
    }
    in_five = (today + datetime.timedelta(days=5)).isoformat()
    assert rows == {
        (alice.pk, 30): {"coins": 50, "days": 30, "expires_on": in_five},
        (alice.pk, 7): {"coins": 50, "days": 7, "expires_on": in_five},
        (bob.pk, 30): {
            "coins": 20,
            "days": 30,
            "expires_on": (today + datetime.timedelta(days=20)).isoformat(),
        },
    }


def test_expiry_reminders_are_one_statement_per_window_whatever_the_number_of_people():
    # Given 40 people with coins expiring in 5 days, half of them with a WeChat grant for the kind
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import WeChatPush, WeChatSubscription, WeChatTemplate

    template = WeChatTemplate.objects.create(
        kind=NotificationKind.COINS_EXPIRING, template_id="tmpl-expiring", title="积分到期提醒", fields={}
    )
    people = [UserFactory() for _ in range(40)]
    for person in people:
        fund_wallet(person, 10)
    WeChatSubscription.objects.bulk_create(
        [WeChatSubscription(user=person, template=template, remaining=1) for person in people[:20]]
    )
    today = timezone.localdate()
    CoinLot.objects.update(expires_on=today + datetime.timedelta(days=5))

    # When the night's reminders are raised
    with CaptureQueriesContext(connection) as statements:
        raised = expiry_notifications_raise(today=today)

    # Then two statements (one per window, each after its JIT setting) made 80 notifications and
    # queued 40 pushes: nothing per person came back to Python
    assert raised == 80
    assert [query["sql"].split()[0] for query in statements.captured_queries] == ["SET", "WITH"] * 2
    assert WeChatPush.objects.count() == 40
