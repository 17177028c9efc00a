"""Operators and the platform around gamification: admin pages and actions, the nightly chain,
the demo on top of the rewards demo, and the person's rights (export, erasure, merge)."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.demo import load_demo as accounts_demo
from accounts.models import User
from rewards.demo import load_demo
from rewards.gamification.badges import badges_award
from rewards.gamification.leaderboards import leaderboard_rebuild
from rewards.gamification.ratings import ratings_rate_month
from rewards.models import (
    Badge,
    BadgeAward,
    CreditProfileAccess,
    LeaderboardBuild,
    LeaderboardEntry,
    MonthlyRating,
    RatingRun,
    RatingThresholds,
)
from rewards.personal_data import accounts_merge, personal_data_erase, personal_data_export
from rewards.tasks import after_settlement
from tests.accounts.factories import UserFactory
from tests.rewards.factories import carbon_credit
from tests.rewards.gamification import person_with, today, yesterday

pytestmark = pytest.mark.django_db

OCTOBER = datetime.date(2026, 10, 1)


@pytest.fixture
def operator_client() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/admin/rewards/leaderboardbuild/",
        "/admin/rewards/ratingthresholds/",
        "/admin/rewards/ratingthresholds/add/",
        "/admin/rewards/ratingrun/",
        "/admin/rewards/monthlyrating/",
        "/admin/rewards/badge/",
        "/admin/rewards/badgeaward/",
        "/admin/rewards/creditprofileconsent/",
        "/admin/rewards/creditprofileaccess/",
    ],
)
def test_every_gamification_page_opens(operator_client, path):
    person_with(12_000_000, day=datetime.date(2026, 10, 2))
    leaderboard_rebuild(period="week")
    ratings_rate_month(month=OCTOBER)
    badges_award()

    assert operator_client.get(path).status_code == 200


def test_an_operator_sets_new_thresholds_as_a_new_row_and_rerates_a_month(operator_client):
    for carbon in (3_000, 2_000, 1_000):
        person_with(carbon, day=datetime.date(2026, 10, 2))
    ratings_rate_month(month=OCTOBER)

    added = operator_client.post(
        "/admin/rewards/ratingthresholds/add/",
        {
            "dark_green_top_percent": 50,
            "medium_green_next_percent": 10,
            "light_green_minimum_mg": 1,
            "note": "x",
        },
    )
    run = RatingRun.objects.get(month=OCTOBER)
    operator_client.post("/admin/rewards/ratingrun/", {"action": "rerate", "_selected_action": [run.pk]})

    assert added.status_code == 302
    assert RatingThresholds.objects.count() == 2
    assert RatingRun.objects.get(month=OCTOBER).dark_green_top_percent == 50
    assert MonthlyRating.objects.filter(month=OCTOBER, level="dark_green").count() == 2


def test_the_night_after_settlement_rebuilds_boards_rates_the_month_and_awards_badges():
    person_with(12_000_000)

    result = after_settlement()

    assert set(result["leaderboards"]) == {"week", "month", "all_time", "groups"}
    assert LeaderboardBuild.objects.filter(period="all_time").exists()
    assert RatingRun.objects.filter(month=yesterday().replace(day=1)).exists()
    assert result["badges"]["reduced_10kg"] == 1


def test_the_commands_rate_a_month_and_award_badges(capsys):
    person_with(12_000_000, day=datetime.date(2026, 10, 2))

    call_command("rate_month", "2026-10")
    call_command("award_badges")

    output = capsys.readouterr().out
    assert "ratings 2026-10 through 2026-10-31: 1 rated, 1 dark green" in output
    assert "reduced_10kg: 1 awarded" in output


def test_the_demo_has_boards_ratings_badges_and_a_bank_consent():
    accounts_demo()
    citizen = User.objects.get(username="lin.wei")
    for days_ago in (3, 2, 1):
        carbon_credit(citizen, today() - datetime.timedelta(days=days_ago), 40_000)

    lines = load_demo()
    load_demo()

    assert any("leaderboards" in line for line in lines)
    assert LeaderboardEntry.objects.filter(user_id=citizen.pk).exists()
    assert MonthlyRating.objects.filter(user=citizen).exists()
    assert BadgeAward.objects.filter(user=citizen).count() == len(
        set(BadgeAward.objects.filter(user=citizen).values_list("badge", flat=True))
    )


def test_export_erase_and_merge_cover_ratings_badges_places_and_bank_fetches():
    source = person_with(12_000_000, day=datetime.date(2026, 10, 2))
    target = person_with(11_000_000, day=datetime.date(2026, 10, 2))
    ratings_rate_month(month=OCTOBER)
    badges_award()
    leaderboard_rebuild(period="all_time")
    walk = Badge.objects.get(key="first_walk")
    from django.utils import timezone

    BadgeAward.objects.create(user=source, badge=walk, awarded_at=timezone.now())

    exported = personal_data_export(user=source)
    accounts_merge(source_user=source, target_user=target)

    assert exported["monthly_ratings"][0]["level"] == "dark_green"
    assert {badge["badge"] for badge in exported["badges"]} == {"reduced_10kg", "ambassador", "first_walk"}
    assert exported["leaderboard_places"][0]["city_rank"] == 1
    # The target keeps one award per badge; the source's ratings and places are gone.
    assert sorted(BadgeAward.objects.filter(user=target).values_list("badge__key", flat=True)) == [
        "ambassador",
        "first_walk",
        "reduced_10kg",
    ]
    assert not BadgeAward.objects.filter(user=source).exists()
    assert not MonthlyRating.objects.filter(user=source).exists()

    personal_data_erase(user=target)

    assert not BadgeAward.objects.filter(user=target).exists()
    assert not MonthlyRating.objects.filter(user=target).exists()
    assert not LeaderboardEntry.objects.filter(user_id=target.pk).exists()
    assert not CreditProfileAccess.objects.filter(user=target).exists()
