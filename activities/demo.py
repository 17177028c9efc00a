"""Three weeks of demo activity for the demo citizens: steps, bus and metro rides, bank payments.

Goes through the real services, so receipts, caps, the review queue and DailyCarbon are what they
would be. Safe to run again: every figure is derived from the person and the date, so step counts
that did not change and records already stored come back as duplicates.
"""

from __future__ import annotations

import datetime
import hashlib

from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import DataSource, User
from activities import services
from activities.ingest import ACCEPTED
from activities.models import Partner
from core.local_time import LOCAL_TZ, local_day_of

DAYS = 21
TRANSIT_PARTNER = "quzhou-transit"
BANK_PARTNER = "quzhou-bank"
CARDS = {"lin.wei": "QZ-0001", "zhang.min": "QZ-0002", "chen.hao": "QZ-0003"}
BANK_CUSTOMERS = {"lin.wei": "QZB-7001", "zhang.min": "QZB-7002", "chen.hao": "QZB-7003"}


def _number(*parts: object) -> int:
    """A stable pseudo-random number for a person and a day: the demo is the same on every run."""
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def _partner(code: str, name: str, source: str, behaviour_codes: list[str]) -> Partner:
    partner = Partner.objects.filter(code=code).first()
    if partner is None:
        partner = services.partner_create(
            code=code, name=name, source=source, behaviour_codes=behaviour_codes
        ).partner
    return partner


def _at(day: datetime.date, hour: int, minute: int) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=LOCAL_TZ)


def _rides(people: dict[str, User], days: list[datetime.date]) -> list[dict]:
    """Weekday commutes (bus in the morning, metro in the evening), and one ride overlapping another."""
    rides = []
    for day in days:
        if day.weekday() >= 5:
            continue
        for username in people:
            card = CARDS[username]
            for label, started, behaviour in (
                ("am", _at(day, 8, 10), "bus"),
                ("pm", _at(day, 18, 5), "metro"),
            ):
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
    if "lin.wei" in people:
        # Its record waits in the review queue of the admin.
        overlap = _at(days[1], 8, 20)
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
    return rides


def _payments(people: dict[str, User], days: list[datetime.date]) -> list[dict]:
    """Utility bills paid online and e-invoices, a few a week per person."""
    records = []
    for day in days:
        for username in people:
            customer = BANK_CUSTOMERS[username]
            roll = _number(username, day, "bank") % 7
            if roll in (0, 3):
                records.append(
                    {
                        "id": f"demo-{customer}-{day.isoformat()}-utility",
                        "customer_reference": customer,
                        "behaviour": "utility_payment",
                        "quantity": "1",
                        "amount": f"{30 + _number(username, day, 'amount') % 200}.50",
                        "occurred_at": _at(day, 12, 30).isoformat(),
                    }
                )
            if roll in (1, 3, 5):
                records.append(
                    {
                        "id": f"demo-{customer}-{day.isoformat()}-invoice",
                        "customer_reference": customer,
                        "behaviour": "e_invoice",
                        "quantity": "1",
                        "occurred_at": _at(day, 19, 45).isoformat(),
                    }
                )
    return records


def load_demo() -> list[str]:
    transit = _partner(
        TRANSIT_PARTNER, "衢州市民卡 (Quzhou transit card)", DataSource.TRANSIT_CARD, ["bus", "metro"]
    )
    bank = _partner(
        BANK_PARTNER,
        "衢州农商银行 (Quzhou rural bank)",
        DataSource.BANK_PAYMENTS,
        ["utility_payment", "e_invoice"],
    )
    now = timezone.now()
    today = local_day_of(now)
    days = [today - datetime.timedelta(days=days_ago) for days_ago in range(DAYS, 0, -1)]
    people = {user.username: user for user in User.objects.filter(username__in=CARDS).order_by("username")}
    for username, user in people.items():
        for source in (DataSource.PHONE_STEPS, DataSource.TRANSIT_CARD, DataSource.BANK_PAYMENTS):
            accounts_services.data_source_authorize(user=user, source=source)
        services.partner_customer_link(partner=transit, customer_reference=CARDS[username], user=user)
        services.partner_customer_link(partner=bank, customer_reference=BANK_CUSTOMERS[username], user=user)
        steps = {day: 2000 + _number(username, day, "steps") % 14_000 for day in days}
        services.steps_sync(user=user, steps_by_day=steps, device_id=f"demo-phone-{username}", now=now)

    accepted = 0
    for partner, records in ((transit, _rides(people, days)), (bank, _payments(people, days))):
        outcomes = services.partner_records_ingest(partner=partner, records=records, now=now)
        accepted += sum(outcome.status == ACCEPTED for outcome in outcomes)
    return [
        f"activities: partners {TRANSIT_PARTNER} (API key {transit.api_key}) and {BANK_PARTNER} "
        f"(API key {bank.api_key}) — rotate a secret in the admin to sign requests; "
        f"{len(people)} citizens with {DAYS} days of steps, rides and payments; {accepted} new records",
    ]
