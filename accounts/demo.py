"""Demo people and districts for `make run`. Idempotent: looks up before it creates."""

from __future__ import annotations

import datetime

from django.utils import timezone

from accounts import services
from accounts.models import (
    AgreementKind,
    DataSource,
    DataSourceAuthorization,
    Device,
    District,
    Friendship,
    User,
)
from accounts.selectors import device_digest

DEMO_PASSWORD = "carbon-demo-2026"  # noqa: S105 - a published demo login on the local database only
DEMO_AGREEMENT_VERSION = "2026-01"
DEMO_GUEST_DEVICE_ID = "demo-guest-device-0001"
DEMO_CITIZENS_JOINED_DAYS_AGO = 60

DISTRICTS = [
    ("kecheng", "柯城区", "Kecheng"),
    ("qujiang", "衢江区", "Qujiang"),
    ("longyou", "龙游县", "Longyou"),
    ("jiangshan", "江山市", "Jiangshan"),
]

CITIZENS = [
    ("lin.wei", "林薇", "kecheng"),
    ("zhang.min", "张敏", "qujiang"),
    ("chen.hao", "陈浩", "kecheng"),
]

AGREEMENTS = [
    (
        AgreementKind.USER_AGREEMENT,
        "个人碳账户用户协议",
        "https://carbon.example/legal/user-agreement-2026-01",
    ),
    (
        AgreementKind.PRIVACY_POLICY,
        "个人碳账户隐私政策",
        "https://carbon.example/legal/privacy-policy-2026-01",
    ),
]


def load_demo() -> list[str]:
    districts = {}
    for code, name, name_en in DISTRICTS:
        districts[code], _ = District.objects.get_or_create(
            code=code, defaults={"name": name, "name_en": name_en}
        )

    for kind, title, url in AGREEMENTS:
        services.agreement_publish(kind=kind, version=DEMO_AGREEMENT_VERSION, title=title, url=url)

    if not User.objects.filter(username="admin").exists():
        User.objects.create_superuser(username="admin", password=DEMO_PASSWORD, nickname="Operator")

    citizens = []
    for username, nickname, district_code in CITIZENS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(
                username=username,
                password=DEMO_PASSWORD,
                nickname=nickname,
                district=districts[district_code],
            )
        citizens.append(user)
        # Every source is authorized, so activity from any partner is captured for them.
        for source in DataSource:
            services.data_source_authorize(user=user, source=source)
    # They did so when they joined, weeks ago: a partner's records count from the grant on, and the
    # demo's partners report the weeks before today (demo data only; a person grants from now).
    joined = timezone.now() - datetime.timedelta(days=DEMO_CITIZENS_JOINED_DAYS_AGO)
    DataSourceAuthorization.objects.filter(
        user__in=citizens, revoked_at__isnull=True, granted_at__gt=joined
    ).update(granted_at=joined)

    # The first two citizens are friends (friends' leaderboards have someone to show).
    first, second = citizens[0], citizens[1]
    if not Friendship.objects.filter(user=first, friend=second).exists():
        services.friendship_accept(user=first, code=services.invite_code_get_or_create(user=second).code)

    # A guest who opened an account on a phone, with steps authorized.
    if not Device.objects.filter(device_digest=device_digest(DEMO_GUEST_DEVICE_ID)).exists():
        guest, _ = services.guest_open(
            device_id=DEMO_GUEST_DEVICE_ID,
            versions=dict.fromkeys(AgreementKind.values, DEMO_AGREEMENT_VERSION),
        )
        services.profile_update(user=guest, nickname="游客")
        services.data_source_authorize(user=guest, source=DataSource.PHONE_STEPS)

    # Demo people (including those other apps' demos created on an earlier run) have accepted
    # the demo agreements, so their writes are not held at the consent screen.
    for user in User.objects.filter(closed_at__isnull=True, is_active=True):
        services.agreements_accept_current(user=user)

    return [
        f"admin (operator, Django admin at /admin/): admin / {DEMO_PASSWORD}",
        *(f"citizen {nickname}: {username} / {DEMO_PASSWORD}" for username, nickname, _ in CITIZENS),
        f"guest: POST /api/v1/guests with device_id={DEMO_GUEST_DEVICE_ID} "
        f"and agreement versions {DEMO_AGREEMENT_VERSION}",
    ]
