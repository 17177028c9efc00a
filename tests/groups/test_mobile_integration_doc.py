"""The groups, challenge, inbox and subscription examples in docs/mobile-integration.md come from
the running API (`tests.mobile_doc`; `UPDATE_DOCS=1` rewrites them)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.models import NotificationKind, WeChatTemplate
from accounts.notifications.services import bank_identity_joined_notify, notification_raise
from rewards.groups.challenges import challenge_create, sponsor_fund
from rewards.groups.models import ChallengeSponsor, Group
from tests.accounts.factories import UserFactory
from tests.mobile_doc import Recorder, examples_check, is_together_example
from tests.rewards.factories import carbon_credit

pytestmark = pytest.mark.django_db


def test_the_documented_group_and_inbox_examples_are_what_the_api_answers(client_for):
    owner, neighbour = UserFactory(nickname="小绿"), UserFactory(nickname="阿青")
    app, other = client_for(owner), client_for(neighbour)
    rec = Recorder()

    team = rec.call(
        "together-open-team", app, "post", "/api/v1/groups", {"kind": "team", "name": "柯城骑行队"}
    )
    code = team.json()["invite_code"]
    rec.call("together-join", other, "post", "/api/v1/groups/join", {"invite_code": code})
    rec.call("together-join-twice", other, "post", "/api/v1/groups/join", {"invite_code": code})

    group = Group.objects.get()
    sponsor = ChallengeSponsor.objects.create(name="衢州市生态环境局")
    sponsor_fund(sponsor=sponsor, amount=1000, idempotency_key="doc")
    today = timezone.localdate()
    challenge_create(
        group=group,
        title="一周一起减碳 1 千克",
        target_kind="carbon",
        target_value=1000,
        starts_on=today,
        ends_on=today + datetime.timedelta(days=6),
        reward_kind="coins",
        sponsor=sponsor,
        coins_per_member=20,
    )
    carbon_credit(owner, today, 420_000)
    rec.call("together-challenges", other, "get", f"/api/v1/groups/{group.public_id}/challenges")

    bank_identity_joined_notify(user_id=neighbour.pk, bank="衢州银行", identity_id=1)
    notification_raise(
        user_id=neighbour.pk,
        kind=NotificationKind.BADGE_EARNED,
        event_key="badge:first_ride",
        params={"key": "first_ride", "name": "首次骑行", "name_en": "First ride"},
    )
    inbox = rec.call(
        "together-inbox", other, "get", "/api/v1/notifications", headers={"Accept-Language": "en"}
    )
    first = inbox.json()["results"][0]["id"]
    rec.call("together-read", other, "post", f"/api/v1/notifications/{first}/read")
    rec.call("together-read-all", other, "post", "/api/v1/notifications/read-all")
    rec.call(
        "together-preferences",
        other,
        "patch",
        "/api/v1/notifications/preferences",
        {
            "preferences": [{"kind": "monthly_report_ready", "channel": "wechat", "is_enabled": False}],
            "quiet_hours": {"starts_at": "22:00", "ends_at": "07:30"},
        },
    )
    WeChatTemplate.objects.create(
        kind=NotificationKind.COINS_EXPIRING,
        template_id="Xr7kQ2coinsExpiringTmpl01",
        title="积分到期提醒",
        fields={"thing1": "title", "number2": "param:coins", "date3": "param:expires_on"},
    )
    rec.call(
        "together-subscribe",
        other,
        "post",
        "/api/v1/notifications/wechat-subscriptions",
        {"results": {"Xr7kQ2coinsExpiringTmpl01": "accept"}},
        headers={"Idempotency-Key": "6b1f0c2e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"},
    )

    examples_check(rec, owns=is_together_example)
