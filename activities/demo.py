"""A few days of demo activity for the demo citizens: steps, bus and metro rides, one record under review.

Goes through the real services, so receipts, caps and DailyCarbon are what they would be. Safe to
run again: step counts that did not change and rides already stored come back as duplicates.
"""

from __future__ import annotations

import datetime

from django.db import connection
from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import DataSource, User
from activities import services
from activities.ingest import LOCAL_TZ, local_day_of
from activities.models import Partner

DEMO_PARTNER = "quzhou-transit"
CARDS = {"lin.wei": "QZ-0001", "zhang.min": "QZ-0002", "chen.hao": "QZ-0003"}
STEPS = {"lin.wei": [8200, 11_500, 6400, 12_800, 4300], "zhang.min": [3100, 5600, 9900, 7200, 2500],
         "chen.hao": [15_000, 2100, 8800, 10_400, 6100]}  # fmt: skip


def load_demo() -> list[str]:
    if connection.vendor != "postgresql":
        return ["activities: demo activity needs PostgreSQL (set DATABASE_URL); skipped"]
    partner = Partner.objects.filter(code=DEMO_PARTNER).first()
    if partner is None:
        partner = services.partner_create(
            code=DEMO_PARTNER,
            name="衢州市民卡 (Quzhou transit card)",
            source=DataSource.TRANSIT_CARD,
            behaviour_codes=["bus", "metro"],
        ).partner
    now = timezone.now()
    today = local_day_of(now)
    people = {user.username: user for user in User.objects.filter(username__in=CARDS)}
    for username, user in people.items():
        for source in (DataSource.PHONE_STEPS, DataSource.TRANSIT_CARD):
            accounts_services.data_source_authorize(user=user, source=source)
        services.partner_customer_link(partner=partner, customer_reference=CARDS[username], user=user)
        steps = {
            today - datetime.timedelta(days=days_ago): count for days_ago, count in enumerate(STEPS[username])
        }
        services.steps_sync(user=user, steps_by_day=steps, device_id=f"demo-phone-{username}")

    rides = []
    for days_ago in range(1, 5):
        day = today - datetime.timedelta(days=days_ago)
        morning = datetime.datetime.combine(day, datetime.time(8, 10), tzinfo=LOCAL_TZ)
        evening = datetime.datetime.combine(day, datetime.time(18, 5), tzinfo=LOCAL_TZ)
        for username, card in CARDS.items():
            if username not in people:
                continue
            for label, started, behaviour in (("am", morning, "bus"), ("pm", evening, "metro")):
                rides.append(
                    {
                        "id": f"demo-{card}-{day.isoformat()}-{label}",
                        "customer_reference": card,
                        "behaviour": behaviour,
                        "quantity": "1",
                        "occurred_at": started.isoformat(),
                        "ended_at": (started + datetime.timedelta(minutes=35)).isoformat(),
                    }
                )
    # One ride overlapping another: it waits in the review queue of the admin.
    if "lin.wei" in people:
        overlap = datetime.datetime.combine(
            today - datetime.timedelta(days=1), datetime.time(8, 20), tzinfo=LOCAL_TZ
        )
        rides.append(
            {
                "id": f"demo-QZ-0001-{overlap.date().isoformat()}-overlap",
                "customer_reference": "QZ-0001",
                "behaviour": "bus",
                "quantity": "1",
                "occurred_at": overlap.isoformat(),
                "ended_at": (overlap + datetime.timedelta(minutes=20)).isoformat(),
            }
        )
    outcomes = services.partner_records_ingest(partner=partner, records=rides, now=now)
    accepted = sum(outcome.status == "accepted" for outcome in outcomes)
    return [
        f"activities: partner {DEMO_PARTNER} (API key {partner.api_key}; rotate its secret in the admin "
        f"to sign requests), {len(people)} citizens with 5 days of steps; {accepted} new rides this run",
    ]
