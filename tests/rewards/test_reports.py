"""The personal carbon report against a hand-computed fixture, and its PNG card."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal

import pytest
from PIL import Image

from activities.models import Behaviour, BehaviourDay
from core.local_time import LOCAL_TZ
from rewards.gamification.ratings import ratings_rate_month
from rewards.gamification.reports import carbon_report
from rewards.models import Badge, BadgeAward, LedgerTransactionKind
from rewards.services import coins_issue, donation_make, settlement_run, wallet_account_for_user
from tests.accounts.factories import DistrictFactory
from tests.rewards.factories import WelfareProjectFactory, carbon_credit
from tests.rewards.gamification import person_with, today, yesterday

pytestmark = pytest.mark.django_db

OCTOBER = datetime.date(2026, 10, 1)


def behaviour_day(user, code: str, day: datetime.date, quantity: int, carbon_mg: int) -> None:
    BehaviourDay.objects.create(
        user=user,
        behaviour=Behaviour.objects.get(code=code),
        day=day,
        quantity=quantity,
        record_count=1,
        credited_carbon_mg=carbon_mg,
    )
    carbon_credit(user, day, carbon_mg)


@pytest.fixture
def october(db):
    """Me in the north: walking 160 g on Oct 3, bus 160 g on Oct 5 and 80 g on Oct 6 (400 g);
    250 g in September. A neighbour in the north with 200 g, someone in the south with 600 g,
    someone with nothing. Rated for October; a badge on Oct 15, another in September."""
    north, south = DistrictFactory(code="north"), DistrictFactory(code="south")
    me = person_with(0, district=north, nickname="Ming")
    behaviour_day(me, "walk", datetime.date(2026, 10, 3), 8_000, 160_000)
    behaviour_day(me, "bus", datetime.date(2026, 10, 5), 2, 160_000)
    behaviour_day(me, "bus", datetime.date(2026, 10, 6), 1, 80_000)
    behaviour_day(me, "bus", datetime.date(2026, 9, 10), 3, 250_000)
    person_with(200_000, district=north, day=datetime.date(2026, 10, 9))
    person_with(600_000, district=south, day=datetime.date(2026, 10, 31))
    person_with(0, district=south)
    ratings_rate_month(month=OCTOBER)
    walk, bus = Badge.objects.get(key="first_walk"), Badge.objects.get(key="first_bus_ride")
    BadgeAward.objects.create(
        user=me, badge=walk, awarded_at=datetime.datetime(2026, 10, 15, 9, tzinfo=LOCAL_TZ)
    )
    BadgeAward.objects.create(
        user=me, badge=bus, awarded_at=datetime.datetime(2026, 9, 10, 9, tzinfo=LOCAL_TZ)
    )
    return me


def test_the_monthly_report_matches_the_hand_computed_figures(october):
    report = carbon_report(user=october, period="month", start=OCTOBER)

    assert (report.first_day, report.last_day, report.label) == (
        OCTOBER,
        datetime.date(2026, 10, 31),
        "2026-10",
    )
    assert report.total_carbon_mg == 400_000
    assert [(row["behaviour"], row["carbon_mg"], row["quantity"]) for row in report.behaviours] == [
        ("bus", 240_000, Decimal(3)),
        ("walk", 160_000, Decimal(8_000)),
    ]
    assert (report.previous_total_carbon_mg, report.change_carbon_mg) == (250_000, 150_000)
    assert report.change_percent == Decimal("60.0")
    # City: (400 + 200 + 600) / 3 = 400 g; north: (400 + 200) / 2 = 300 g. Nobody with 0 g counts.
    assert (report.city_average_carbon_mg, report.district_average_carbon_mg) == (400_000, 300_000)
    # One of three rated reduced more: 33 % is under 40 % → medium green.
    assert report.rating["level"] == "medium_green"
    assert report.rating["is_final"] is True
    assert [badge["key"] for badge in report.badges_earned] == ["first_walk"]
    assert report.badges_total == 2
    # 400 g / 22 kg a tree a year = 0.018… → 0.02; 400 g / 249 g per km = 1.606… → 1.6 km.
    assert report.equivalents["trees_yearly_absorption"] == Decimal("0.02")
    assert report.equivalents["car_km_avoided"] == Decimal("1.6")
    assert report.equivalents["tree_co2_mg_per_year"] == 22_000_000
    assert report.equivalents["car_co2_mg_per_km"] == 249_000


def test_the_yearly_report_adds_up_the_months_and_has_no_trend_without_a_previous_year(october):
    report = carbon_report(user=october, period="year", start=datetime.date(2026, 1, 1))

    assert report.total_carbon_mg == 650_000
    assert report.previous_total_carbon_mg == 0
    assert report.change_percent is None
    assert report.rating["dark_green_months"] == 0
    assert {badge["key"] for badge in report.badges_earned} == {"first_walk", "first_bus_ride"}


def test_coins_earned_and_spent_in_the_period_come_from_the_ledger(db):
    person = person_with(35_000)
    settlement_run(day=yesterday(), within_transaction=True)
    donation_make(user=person, project=WelfareProjectFactory(), amount=2)

    report = carbon_report(user=person, period="month", start=today())

    assert report.coins == {"earned": 3, "spent": 2, "expired": 0}


def test_a_challenge_s_reward_and_a_lot_s_proceeds_count_as_coins_earned(db):
    # Only settlements and statements counted: a month of team rewards showed as nothing earned.
    person = person_with(0)
    wallet = wallet_account_for_user(user_id=person.pk)
    for kind, coins in ((LedgerTransactionKind.CHALLENGE_REWARD, 10), (LedgerTransactionKind.ISSUANCE, 4)):
        coins_issue(destination=wallet, amount=coins, kind=kind, idempotency_key=kind, reference="test")

    report = carbon_report(user=person, period="month", start=today())

    assert report.coins == {"earned": 14, "spent": 0, "expired": 0}


def test_the_report_api_answers_json_with_the_card_link(client_for, october):
    response = client_for(october).get("/api/v1/reports/month/2026-10")

    assert response.status_code == 200
    body = response.json()
    assert body["total_carbon_mg"] == 400_000
    assert body["district"] == "north"
    assert body["equivalents"]["trees_yearly_absorption"] == "0.02"
    assert body["card_url"] == "/api/v1/reports/month/2026-10.png"


@pytest.mark.parametrize("label", ["2026-13", "26-10", "2999-01", "abcd"])
def test_malformed_or_future_periods_are_refused(person_client, label):
    response = person_client.get(f"/api/v1/reports/month/{label}")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "report_period_invalid")


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_card_is_a_phone_sized_png_in_either_language(client_for, october, language):
    response = client_for(october).get("/api/v1/reports/month/2026-10.png", HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    image.verify()
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    assert image.size == (750, 1334)
    # The header is painted in the medium green of the rating.
    assert image.convert("RGB").getpixel((5, 5)) == (56, 150, 86)


def test_a_card_with_no_activity_still_draws(person_client):
    response = person_client.get(f"/api/v1/reports/year/{today().year}.png")

    assert Image.open(io.BytesIO(response.content)).size == (750, 1334)
