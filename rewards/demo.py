"""Demo rewards for `make run`: the demo citizens' past days settled into coins, welfare projects,
a donation with its certificate; leaderboards, this month's (provisional) and last month's ratings,
badges, and lin.wei's consent for the demo bank to read the green credit profile.

Idempotent: settlement is exactly-once per person and day, projects are looked up by slug, and the
donation uses a fixed idempotency key.
"""

from __future__ import annotations

import datetime
import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F
from django.utils import timezone
from PIL import Image, ImageDraw

from accounts.models import User
from activities.models import DailyCarbon
from rewards.models import WelfareProject
from rewards.services import donation_make, settlement_run, wallet_account_for_user, welfare_project_create

PROJECTS = [
    (
        "qujiang-hills-trees",
        "衢江青山植树",
        "每 500 枚碳币在衢江北部山地种下一棵本地树苗，由林业站养护三年。",
        50_000,
        (52, 120, 70),
    ),
    (
        "wuxi-river-wetland",
        "乌溪江湿地守护",
        "保护乌溪江下游湿地：清理河道垃圾，恢复芦苇带，为越冬候鸟留一片家园。",
        80_000,
        (60, 120, 160),
    ),
    (
        "school-solar-lamps",
        "山区学校太阳能路灯",
        "为龙游山区小学的上学路装上太阳能路灯，孩子们冬天放学不再摸黑。",
        30_000,
        (210, 160, 40),
    ),
]

DEMO_DONOR = "lin.wei"
DEMO_DONATION_KEY = "demo-donation-lin-wei-trees"
DEMO_BANK = "quzhou-bank"


def _project_image(colour: tuple[int, int, int]) -> SimpleUploadedFile:
    image = Image.new("RGB", (800, 450), colour)
    draw = ImageDraw.Draw(image)
    for step in range(9):
        shade = tuple(min(255, channel + step * 12) for channel in colour)
        draw.ellipse((step * 90 - 60, 250 - step * 10, step * 90 + 140, 520), fill=shade)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return SimpleUploadedFile("project.png", buffer.getvalue(), content_type="image/png")


def past_days_settle() -> list[datetime.date]:
    """Settles, one night at a time, every past day on which someone still has carbon owed: a night
    already settled gets a new round for what was credited since (a later demo's people)."""
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    days = sorted(
        set(
            DailyCarbon.objects.filter(day__lte=yesterday, credited_carbon_mg__gt=F("settled_carbon_mg"))
            .values_list("day", flat=True)
            .distinct()
        )
    )
    for day in days:
        settlement_run(day=day, within_transaction=True, owed=True)
    return days


def load_demo() -> list[str]:
    settled_days = past_days_settle()
    projects = {}
    for slug, title, description, goal, colour in PROJECTS:
        project = WelfareProject.objects.filter(slug=slug).first()
        if project is None:
            project = welfare_project_create(
                slug=slug, title=title, description=description, goal_coins=goal, image=_project_image(colour)
            )
        projects[slug] = project
    donor = User.objects.filter(username=DEMO_DONOR).first()
    lines = [f"rewards: {len(settled_days)} past day(s) settled, {len(projects)} welfare projects"]
    if donor is not None and wallet_account_for_user(user_id=donor.pk).balance >= 5:
        donation = donation_make(
            user=donor, project=projects["qujiang-hills-trees"], amount=5, idempotency_key=DEMO_DONATION_KEY
        )
        lines.append(
            f"rewards: {donor.nickname} donated 5 coins; certificate at "
            f"/api/v1/welfare/donations/{donation.public_id}/certificate.png"
        )
    lines += gamification_load()
    return lines


def gamification_load() -> list[str]:
    """Boards, ratings and badges rebuilt from the demo's carbon (derived data: safe to redo)."""
    from activities.models import Partner
    from rewards.gamification.badges import badges_award
    from rewards.gamification.credit_profile import credit_consent_grant
    from rewards.gamification.leaderboards import leaderboards_rebuild
    from rewards.gamification.ratings import ratings_rate_month, ratings_rate_recent

    builds = leaderboards_rebuild()
    today = timezone.localdate()
    last_month = (today.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
    ratings_rate_month(month=last_month)
    run = ratings_rate_recent()
    awarded = sum(badges_award().values())
    lines = [
        "rewards: leaderboards "
        + ", ".join(f"{result.build.period} {result.build.people}" for result in builds)
        + f"; {run.month:%Y-%m} rated ({run.rated}); {awarded} badge(s) awarded",
    ]
    donor = User.objects.filter(username=DEMO_DONOR).first()
    bank = Partner.objects.filter(code=DEMO_BANK).first()
    if donor is not None and bank is not None and bank.source == "bank_payments":
        credit_consent_grant(user=donor, partner_code=DEMO_BANK)
        lines.append(f"rewards: {donor.nickname} lets {bank.name} read the green credit profile")
    return lines
