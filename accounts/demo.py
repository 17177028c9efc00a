"""Demo people and districts for `make run`. Idempotent: looks up before it creates."""

from __future__ import annotations

from accounts.models import District, User

DEMO_PASSWORD = "carbon-demo-2026"  # noqa: S105 - a published demo login on the local database only

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


def load_demo() -> list[str]:
    districts = {}
    for code, name, name_en in DISTRICTS:
        districts[code], _ = District.objects.get_or_create(
            code=code, defaults={"name": name, "name_en": name_en}
        )

    if not User.objects.filter(username="admin").exists():
        User.objects.create_superuser(username="admin", password=DEMO_PASSWORD, nickname="Operator")

    for username, nickname, district_code in CITIZENS:
        if not User.objects.filter(username=username).exists():
            User.objects.create_user(
                username=username,
                password=DEMO_PASSWORD,
                nickname=nickname,
                district=districts[district_code],
            )
    return [
        f"admin (operator, Django admin at /admin/): admin / {DEMO_PASSWORD}",
        *(f"citizen {nickname}: {username} / {DEMO_PASSWORD}" for username, nickname, _ in CITIZENS),
    ]
